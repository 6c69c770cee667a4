//! `grpcdoc proxy ctl`: a client of a running proxy's API (grpcdoc's
//! `--api`, or toxiproxy itself), as toxiproxy-cli is. Faults are given in
//! grpcdoc's `NAME:KEY=VALUE` form, turned into the API's toxic by the
//! fault registry, and listed back in that form. Errors from the API are
//! shown as the API gave them.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};

use super::fault::Direction;
use super::FaultSpec;

/// One request to the API.
pub enum Request {
    List,
    Add {
        proxy: String,
        fault: FaultSpec,
        name: Option<String>,
    },
    Remove {
        proxy: String,
        name: String,
    },
    Enable {
        proxy: String,
        on: bool,
    },
    Reset,
}

/// Why a request did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    #[error(
        "cannot reach the proxy API at {api}: {why} (is `grpcdoc proxy --api {api}` running?)"
    )]
    Unreachable { api: String, why: String },
    /// The API answered with an error: its status and body as it gave them.
    #[error("the proxy API answered {status}: {message}")]
    Api {
        status: u16,
        message: String,
        body: Value,
    },
}

/// A path segment, percent-encoded.
fn seg(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Request {
    fn http(&self) -> (http::Method, String, Option<Value>) {
        use http::Method as M;
        match self {
            Request::List => (M::GET, "/proxies".into(), None),
            Request::Add { proxy, fault, name } => {
                let mut body = fault.toxic();
                if let Some(n) = name {
                    body["name"] = Value::String(n.clone());
                }
                (
                    M::POST,
                    format!("/proxies/{}/toxics", seg(proxy)),
                    Some(body),
                )
            }
            Request::Remove { proxy, name } => (
                M::DELETE,
                format!("/proxies/{}/toxics/{}", seg(proxy), seg(name)),
                None,
            ),
            Request::Enable { proxy, on } => (
                M::POST,
                format!("/proxies/{}", seg(proxy)),
                Some(json!({ "enabled": on })),
            ),
            Request::Reset => (M::POST, "/reset".into(), None),
        }
    }
}

/// Sends `req` to the API at `api` (HOST:PORT); the API's JSON answer
/// (`null` for none).
pub async fn send(api: &str, req: &Request) -> Result<Value, CtlError> {
    let unreachable = |why: String| CtlError::Unreachable {
        api: api.to_string(),
        why,
    };
    let (method, path, body) = req.http();
    let exchange = async {
        let tcp = tokio::net::TcpStream::connect(api)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let (mut send, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
                .await
                .map_err(|e| unreachable(e.to_string()))?;
        let driver = tokio::spawn(conn);
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        let request = http::Request::builder()
            .method(method)
            .uri(&path)
            .header(http::header::HOST, api)
            .header(
                http::header::USER_AGENT,
                concat!("grpcdoc/", env!("CARGO_PKG_VERSION")),
            )
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(bytes)))
            .map_err(|e| unreachable(e.to_string()))?;
        let resp = send
            .send_request(request)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| unreachable(e.to_string()))?
            .to_bytes();
        driver.abort();
        Ok::<_, CtlError>((status, body))
    };
    let (status, body) = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| unreachable("no answer within 10s".into()))??;
    let value: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).trim().to_string()))
    };
    if (200..300).contains(&status) {
        return Ok(value);
    }
    let message = value["error"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| match &value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
    Err(CtlError::Api {
        status,
        message,
        body: value,
    })
}

/// A toxic in grpcdoc's form, when this grpcdoc knows its type.
fn fault_text(t: &Value) -> String {
    let kind = t["type"].as_str().unwrap_or_default();
    let stream = match t["stream"].as_str() {
        Some("upstream") => Direction::Upstream,
        Some("both") => Direction::Both,
        _ => Direction::Downstream,
    };
    let toxicity = t["toxicity"].as_f64().unwrap_or(1.0);
    let attrs = t["attributes"].as_object().cloned().unwrap_or_default();
    match FaultSpec::from_toxic(kind, stream, toxicity, &attrs) {
        Ok(spec) => spec.render(),
        Err(_) => format!("{kind} {}", t["attributes"]),
    }
}

/// The answer for people: proxies and their faults, or what was done.
pub fn human(req: &Request, answer: &Value) -> String {
    match req {
        Request::List => {
            let Some(map) = answer.as_object() else {
                return format!("{answer}\n");
            };
            if map.is_empty() {
                return "no proxies\n".into();
            }
            let mut out = String::new();
            for (name, p) in map {
                let state = if p["enabled"].as_bool() == Some(false) {
                    "disabled"
                } else {
                    "enabled"
                };
                out.push_str(&format!(
                    "{name}  {} -> {}  {state}\n",
                    p["listen"].as_str().unwrap_or("?"),
                    p["upstream"].as_str().unwrap_or("?")
                ));
                let toxics = p["toxics"].as_array().cloned().unwrap_or_default();
                if toxics.is_empty() {
                    out.push_str("  no faults\n");
                }
                for t in toxics {
                    out.push_str(&format!(
                        "  {:<24} {}\n",
                        t["name"].as_str().unwrap_or("?"),
                        fault_text(&t)
                    ));
                }
            }
            out
        }
        Request::Add { proxy, .. } => format!(
            "added {} to {proxy}: {}\n",
            answer["name"].as_str().unwrap_or("?"),
            fault_text(answer)
        ),
        Request::Remove { proxy, name } => format!("removed {name} from {proxy}\n"),
        Request::Enable { proxy, on } => {
            format!("{proxy} {}\n", if *on { "enabled" } else { "disabled" })
        }
        Request::Reset => "every proxy enabled, every fault removed\n".into(),
    }
}
