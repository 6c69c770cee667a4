//! toxiproxy's HTTP API (version 2), served by grpcdoc's proxy, so the
//! toxiproxy client libraries that integration tests already use drive
//! grpcdoc's faults unchanged: `/version`, `/proxies` (list, create, show,
//! update, delete), `/proxies/{name}/toxics` (list, create, show, update,
//! delete), `/reset`, `/populate`, with toxiproxy's JSON shapes, status codes
//! and error bodies (`{"error": ..., "status": ...}`).
//!
//! A toxic is a fault of the registry ([`super::fault`]): toxiproxy's types
//! (latency, bandwidth, slow_close, timeout, reset_peer, slicer,
//! limit_data) with toxiproxy's attributes and units and its per-connection
//! behaviour, and every grpcdoc fault (`drop_ping`, `inject_goaway`,
//! `idle_expiry`, ... also spelt with `-`), its parameters given as
//! `attributes`. `stream` is the direction (`both` too, for grpcdoc's
//! faults that act both ways), `toxicity` the chance it acts on a
//! connection. `enabled: false` refuses new connections and closes those
//! open.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use tokio::sync::Mutex;

use super::fault::ToxicError;
use super::{Direction, FaultSpec, ProxyOptions, RunningProxy};
use crate::event::EventSink;

/// The version `/version` reports: toxiproxy's API generation, and ours.
pub const VERSION: &str = concat!("2.9.0-grpcdoc-", env!("CARGO_PKG_VERSION"));

/// An API error: toxiproxy's message and status.
#[derive(Debug)]
struct ApiError(String, u16);

impl ApiError {
    fn new(msg: impl Into<String>, status: u16) -> Self {
        Self(msg.into(), status)
    }
    fn not_found_proxy() -> Self {
        Self::new("proxy not found", 404)
    }
    fn not_found_toxic() -> Self {
        Self::new("toxic not found", 404)
    }
    fn bad_body(e: impl std::fmt::Display) -> Self {
        Self::new(format!("bad request body: {e}"), 400)
    }
}

struct Toxic {
    name: String,
    kind: String,
    stream: String,
    toxicity: f64,
    attributes: serde_json::Map<String, Value>,
    /// The grpcdoc faults that play it.
    faults: Vec<u64>,
}

impl Toxic {
    fn json(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.kind,
            "stream": self.stream,
            "toxicity": self.toxicity,
            "attributes": self.attributes,
        })
    }
}

struct Proxy {
    name: String,
    listen: SocketAddr,
    upstream: String,
    enabled: bool,
    running: RunningProxy,
    toxics: Vec<Toxic>,
}

impl Proxy {
    /// A running proxy, enabled, without toxics.
    fn new(name: &str, upstream: &str, running: RunningProxy) -> Self {
        Proxy {
            name: name.to_string(),
            listen: running.addr,
            upstream: upstream.to_string(),
            enabled: true,
            running,
            toxics: Vec::new(),
        }
    }

    fn toxic_index(&self, name: &str) -> Result<usize, ApiError> {
        self.toxics
            .iter()
            .position(|t| t.name == name)
            .ok_or_else(ApiError::not_found_toxic)
    }

    fn json(&self) -> Value {
        json!({
            "name": self.name,
            "listen": self.listen.to_string(),
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": self.toxics.iter().map(Toxic::json).collect::<Vec<_>>(),
        })
    }

    fn set_enabled(&mut self, on: bool) {
        if on != self.enabled {
            self.enabled = on;
            self.running.set_enabled(on);
        }
    }
}

/// The proxies the API manages.
pub struct Api {
    proxies: Mutex<BTreeMap<String, Proxy>>,
    events: EventSink,
    options: ProxyOptions,
}

fn number(v: &Value) -> Option<f64> {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

/// The grpcdoc fault that plays a toxic.
fn faults_for(
    kind: &str,
    stream: &str,
    toxicity: f64,
    attrs: &serde_json::Map<String, Value>,
) -> Result<Vec<FaultSpec>, ApiError> {
    let dir = match stream {
        "upstream" => Direction::Upstream,
        "both" => Direction::Both,
        _ => Direction::Downstream,
    };
    match FaultSpec::from_toxic(kind, dir, toxicity, attrs) {
        Ok(spec) => Ok(vec![spec]),
        Err(ToxicError::UnknownType) => Err(ApiError::new("invalid toxic type", 400)),
        Err(ToxicError::Bad(e)) => Err(ApiError::new(format!("bad toxic attributes: {e}"), 400)),
    }
}

async fn listen_addr(listen: &str) -> Result<SocketAddr, ApiError> {
    let l = listen.trim();
    let l = if l.is_empty() {
        "127.0.0.1:0".to_string()
    } else if l.starts_with(':') {
        format!("127.0.0.1{l}")
    } else {
        l.to_string()
    };
    tokio::net::lookup_host(l.as_str())
        .await
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| ApiError::new(format!("listen {listen}: not an address"), 400))
}

async fn upstream_addr(upstream: &str) -> Result<SocketAddr, ApiError> {
    tokio::net::lookup_host(upstream)
        .await
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| ApiError::new(format!("upstream {upstream}: not an address"), 400))
}

impl Api {
    pub fn new(events: EventSink, options: ProxyOptions) -> Arc<Self> {
        Arc::new(Self {
            proxies: Mutex::new(BTreeMap::new()),
            events,
            options,
        })
    }

    async fn start(
        &self,
        name: &str,
        listen: &str,
        upstream: &str,
        enabled: bool,
    ) -> Result<Proxy, ApiError> {
        let up = upstream_addr(upstream).await?;
        let at = listen_addr(listen).await?;
        let running = RunningProxy::start_with(
            at,
            up,
            Vec::new(),
            self.events.clone(),
            self.options.clone(),
        )
        .await
        .map_err(|e| ApiError::new(format!("listen {listen}: {e}"), 500))?;
        let mut p = Proxy::new(name, upstream, running);
        p.set_enabled(enabled);
        Ok(p)
    }

    /// Registers a proxy started elsewhere (the command line's).
    pub async fn adopt(&self, name: &str, upstream: &str, running: RunningProxy) {
        let p = Proxy::new(name, upstream, running);
        self.proxies.lock().await.insert(name.to_string(), p);
    }

    async fn create(&self, body: &Value) -> Result<Value, ApiError> {
        let name = body["name"].as_str().unwrap_or_default();
        if name.is_empty() {
            return Err(ApiError::new("missing required field: name", 400));
        }
        let upstream = body["upstream"].as_str().unwrap_or_default();
        if upstream.is_empty() {
            return Err(ApiError::new("missing required field: upstream", 400));
        }
        if self.proxies.lock().await.contains_key(name) {
            return Err(ApiError::new("proxy already exists", 409));
        }
        let listen = body["listen"].as_str().unwrap_or_default();
        let enabled = body["enabled"].as_bool().unwrap_or(true);
        let p = self.start(name, listen, upstream, enabled).await?;
        let out = p.json();
        let mut all = self.proxies.lock().await;
        if all.contains_key(name) {
            p.running.shutdown().await;
            return Err(ApiError::new("proxy already exists", 409));
        }
        all.insert(name.to_string(), p);
        Ok(out)
    }

    async fn update(&self, name: &str, body: &Value) -> Result<Value, ApiError> {
        let mut all = self.proxies.lock().await;
        let p = all.get_mut(name).ok_or_else(ApiError::not_found_proxy)?;
        let listen = body["listen"].as_str();
        let upstream = body["upstream"].as_str();
        let moved = listen.is_some_and(|l| l != p.listen.to_string())
            || upstream.is_some_and(|u| u != p.upstream);
        if moved {
            // A new listener or upstream: the proxy starts anew, its toxics kept.
            let old = all.remove(name).ok_or_else(ApiError::not_found_proxy)?;
            let listen = listen.map_or(old.listen.to_string(), str::to_string);
            let upstream = upstream.map_or(old.upstream.clone(), str::to_string);
            let enabled = body["enabled"].as_bool().unwrap_or(old.enabled);
            let Proxy {
                running, toxics, ..
            } = old;
            running.shutdown().await;
            let mut p = self.start(name, &listen, &upstream, enabled).await?;
            for mut t in toxics {
                t.faults = faults_for(&t.kind, &t.stream, t.toxicity, &t.attributes)?
                    .into_iter()
                    .map(|f| p.running.add(f))
                    .collect();
                p.toxics.push(t);
            }
            let out = p.json();
            all.insert(name.to_string(), p);
            return Ok(out);
        }
        if let Some(on) = body["enabled"].as_bool() {
            p.set_enabled(on);
        }
        Ok(p.json())
    }

    async fn delete(&self, name: &str) -> Result<(), ApiError> {
        let p = self
            .proxies
            .lock()
            .await
            .remove(name)
            .ok_or_else(ApiError::not_found_proxy)?;
        p.running.shutdown().await;
        Ok(())
    }

    async fn add_toxic(&self, name: &str, body: &Value) -> Result<Value, ApiError> {
        let mut all = self.proxies.lock().await;
        let p = all.get_mut(name).ok_or_else(ApiError::not_found_proxy)?;
        let kind = body["type"].as_str().unwrap_or_default().to_string();
        let stream = body["stream"].as_str().unwrap_or("downstream").to_string();
        if !matches!(stream.as_str(), "upstream" | "downstream" | "both") {
            return Err(ApiError::new(
                "stream was invalid, can be either upstream or downstream",
                400,
            ));
        }
        let tname = body["name"]
            .as_str()
            .filter(|n| !n.is_empty())
            .map_or_else(|| format!("{kind}_{stream}"), str::to_string);
        if p.toxics.iter().any(|t| t.name == tname) {
            return Err(ApiError::new("toxic already exists", 409));
        }
        let toxicity = body.get("toxicity").and_then(number).unwrap_or(1.0);
        if !(0.0..=1.0).contains(&toxicity) {
            return Err(ApiError::new("toxicity is between 0 and 1", 400));
        }
        let attributes = body["attributes"].as_object().cloned().unwrap_or_default();
        let faults = faults_for(&kind, &stream, toxicity, &attributes)?
            .into_iter()
            .map(|f| p.running.add(f))
            .collect();
        let t = Toxic {
            name: tname,
            kind,
            stream,
            toxicity,
            attributes,
            faults,
        };
        let out = t.json();
        p.toxics.push(t);
        Ok(out)
    }

    async fn update_toxic(&self, name: &str, tname: &str, body: &Value) -> Result<Value, ApiError> {
        let mut all = self.proxies.lock().await;
        let p = all.get_mut(name).ok_or_else(ApiError::not_found_proxy)?;
        let i = p.toxic_index(tname)?;
        let t = &p.toxics[i];
        let mut attributes = t.attributes.clone();
        if let Some(a) = body["attributes"].as_object() {
            for (k, v) in a {
                attributes.insert(k.clone(), v.clone());
            }
        }
        let toxicity = body.get("toxicity").and_then(number).unwrap_or(t.toxicity);
        let faults = faults_for(&t.kind, &t.stream, toxicity, &attributes)?;
        for id in &t.faults {
            p.running.remove(*id);
        }
        let ids = faults.into_iter().map(|f| p.running.add(f)).collect();
        let t = &mut p.toxics[i];
        t.attributes = attributes;
        t.toxicity = toxicity;
        t.faults = ids;
        Ok(t.json())
    }

    async fn remove_toxic(&self, name: &str, tname: &str) -> Result<(), ApiError> {
        let mut all = self.proxies.lock().await;
        let p = all.get_mut(name).ok_or_else(ApiError::not_found_proxy)?;
        let t = p.toxics.remove(p.toxic_index(tname)?);
        for id in t.faults {
            p.running.remove(id);
        }
        Ok(())
    }

    async fn reset(&self) {
        let mut all = self.proxies.lock().await;
        for p in all.values_mut() {
            p.set_enabled(true);
            for t in p.toxics.drain(..) {
                for id in t.faults {
                    p.running.remove(id);
                }
            }
        }
    }

    /// Creates the proxies given, or replaces those whose listen or
    /// upstream differ; keeps those that are the same.
    async fn populate(&self, body: &Value) -> Result<Value, ApiError> {
        let list = body
            .as_array()
            .ok_or_else(|| ApiError::bad_body("expected a list of proxies"))?;
        let mut out = Vec::new();
        for item in list {
            let name = item["name"].as_str().unwrap_or_default().to_string();
            let same = {
                let all = self.proxies.lock().await;
                all.get(&name).map(|p| {
                    item["upstream"].as_str() == Some(p.upstream.as_str())
                        && item["listen"]
                            .as_str()
                            .is_none_or(|l| l == p.listen.to_string())
                })
            };
            match same {
                Some(true) => {
                    let all = self.proxies.lock().await;
                    if let Some(p) = all.get(&name) {
                        out.push(p.json());
                    }
                }
                Some(false) => {
                    self.delete(&name).await?;
                    out.push(self.create(item).await?);
                }
                None => out.push(self.create(item).await?),
            }
        }
        Ok(json!({ "proxies": out }))
    }

    async fn route(
        &self,
        method: &http::Method,
        path: &str,
        body: &[u8],
    ) -> Result<(u16, Option<Value>), ApiError> {
        let json_body = || -> Result<Value, ApiError> {
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(json!({}));
            }
            serde_json::from_slice(body).map_err(ApiError::bad_body)
        };
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        use http::Method as M;
        match (method, parts.as_slice()) {
            (&M::GET, ["version"]) => Ok((200, Some(json!({ "version": VERSION })))),
            (&M::POST, ["reset"]) => {
                self.reset().await;
                Ok((204, None))
            }
            (&M::POST, ["populate"]) => Ok((201, Some(self.populate(&json_body()?).await?))),
            (&M::GET, ["proxies"]) => {
                let all = self.proxies.lock().await;
                let map: serde_json::Map<String, Value> =
                    all.iter().map(|(k, p)| (k.clone(), p.json())).collect();
                Ok((200, Some(Value::Object(map))))
            }
            (&M::POST, ["proxies"]) => Ok((201, Some(self.create(&json_body()?).await?))),
            (&M::GET, ["proxies", name]) => {
                let all = self.proxies.lock().await;
                let p = all.get(*name).ok_or_else(ApiError::not_found_proxy)?;
                Ok((200, Some(p.json())))
            }
            (&M::POST | &M::PATCH, ["proxies", name]) => {
                Ok((200, Some(self.update(name, &json_body()?).await?)))
            }
            (&M::DELETE, ["proxies", name]) => {
                self.delete(name).await?;
                Ok((204, None))
            }
            (&M::GET, ["proxies", name, "toxics"]) => {
                let all = self.proxies.lock().await;
                let p = all.get(*name).ok_or_else(ApiError::not_found_proxy)?;
                Ok((
                    200,
                    Some(Value::Array(p.toxics.iter().map(Toxic::json).collect())),
                ))
            }
            (&M::POST, ["proxies", name, "toxics"]) => {
                Ok((200, Some(self.add_toxic(name, &json_body()?).await?)))
            }
            (&M::GET, ["proxies", name, "toxics", tname]) => {
                let all = self.proxies.lock().await;
                let p = all.get(*name).ok_or_else(ApiError::not_found_proxy)?;
                let t = p
                    .toxics
                    .iter()
                    .find(|t| t.name == *tname)
                    .ok_or_else(ApiError::not_found_toxic)?;
                Ok((200, Some(t.json())))
            }
            (&M::POST | &M::PATCH, ["proxies", name, "toxics", tname]) => Ok((
                200,
                Some(self.update_toxic(name, tname, &json_body()?).await?),
            )),
            (&M::DELETE, ["proxies", name, "toxics", tname]) => {
                self.remove_toxic(name, tname).await?;
                Ok((204, None))
            }
            _ => Err(ApiError::new("404 page not found", 404)),
        }
    }

    async fn handle(
        self: Arc<Self>,
        req: http::Request<hyper::body::Incoming>,
    ) -> Result<http::Response<Full<Bytes>>, Infallible> {
        let (head, body) = req.into_parts();
        // toxiproxy refuses browsers (a page could drive the API).
        let browser = head
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ua| ua.starts_with("Mozilla/"));
        let bytes = match body.collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => Bytes::new(),
        };
        let path = crate::grpc::percent_decode(head.uri.path());
        let (status, value) = if browser {
            (
                403,
                Some(json!({"error": "User agent not allowed", "status": 403})),
            )
        } else {
            match self.route(&head.method, &path, &bytes).await {
                Ok(r) => r,
                Err(ApiError(msg, status)) => {
                    (status, Some(json!({"error": msg, "status": status})))
                }
            }
        };
        let mut resp = http::Response::builder().status(status);
        let body = match value {
            Some(v) => {
                resp = resp.header(http::header::CONTENT_TYPE, "application/json");
                Bytes::from(format!("{v}\n"))
            }
            None => Bytes::new(),
        };
        Ok(resp
            .body(Full::new(body))
            .unwrap_or_else(|_| http::Response::new(Full::new(Bytes::new()))))
    }

    /// Serves the API on `listener` until `stop` turns true; then every
    /// proxy it has is stopped. Returns each one's summary, by name.
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> Vec<(String, super::Summary)> {
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((tcp, _)) = accepted else { continue };
                    let api = self.clone();
                    tokio::spawn(async move {
                        let svc = hyper::service::service_fn(move |req| api.clone().handle(req));
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                            .await;
                    });
                }
                changed = stop.changed() => if changed.is_err() || *stop.borrow() { break },
            }
        }
        let all = std::mem::take(&mut *self.proxies.lock().await);
        let mut summaries = Vec::new();
        for (name, p) in all {
            summaries.push((name, p.running.shutdown().await));
        }
        summaries
    }
}
