//! `grpcdoc call`: one call seen whole. Resolves the target, dials its
//! first address with TCP and TLS timed apart (doctor's dialer), reads the
//! descriptors on that connection (or from the files given), makes the
//! call and gathers every step on one clock; on failure, the diagnosis
//! says which catalogue entry explains it. Reaching the server lives in
//! [`connect`], rendering in [`render`].

mod connect;
pub(crate) mod describe;
pub(crate) mod exchange;
pub(crate) mod render;
pub(crate) mod steps;

use std::sync::Arc;
use std::time::{Duration, Instant};

use prost_reflect::DescriptorPool;
use serde::Serialize;

use crate::client::dial::TlsDial;
use crate::diagnose::{Explainer, Note};
use crate::doctor::link::Link;
use crate::event::{CallCause, Event, EventKind};
use crate::rpc::descriptors::{self, Source};
use crate::rpc::MethodPath;
use crate::target::Target;
use exchange::{Recording, Seen};
use steps::{CallStep, Step};

/// What the command line asks, checked.
pub(crate) enum Action {
    Call {
        method: MethodPath,
        /// Where the JSON came from, and its text.
        data: (String, String),
    },
    List(Option<String>),
    Describe(Option<String>),
}

/// One call, lowered from the flags.
pub(crate) struct Plan {
    pub target: Target,
    pub action: Action,
    pub tls: TlsDial,
    /// `-H` and grpc-timeout, sent with every request.
    pub metadata: http::HeaderMap,
    pub deadline: Option<Duration>,
    pub source: Source,
    pub connect_timeout: Duration,
}

/// How the call went: its steps, the status, and what explains a failure.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Record {
    pub target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    pub addresses: Vec<String>,
    pub steps: Vec<Step>,
    pub responses: Vec<serde_json::Value>,
    /// The status the call ended with (UNAVAILABLE when no connection was
    /// made).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusRecord>,
    /// Stopped by Ctrl-C or SIGTERM: what was seen until then.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
    /// What `list` or `describe` printed.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub text: String,
    #[serde(skip)]
    pub notes: Vec<(f64, Option<u64>, Note)>,
    /// What the user gave was wrong, found after connecting (a method the
    /// server does not have, a request that does not fit it): the steps
    /// until then are kept, and the command exits 2 with this.
    #[serde(skip)]
    pub input_error: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct StatusRecord {
    pub code: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// grpc-status-details-bin, read as google.rpc.Status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "cause_key")]
    pub cause: Option<CallCause>,
}

fn cause_key<S: serde::Serializer>(c: &Option<CallCause>, s: S) -> Result<S::Ok, S::Error> {
    match c {
        Some(c) => s.serialize_str(&c.key()),
        None => s.serialize_none(),
    }
}

impl Record {
    /// The call (or list/describe) ended OK.
    pub fn ok(&self) -> bool {
        self.status.as_ref().is_none_or(|s| s.code == "OK")
    }

    fn interrupt(&mut self) {
        self.interrupted = true;
        if self.status.is_none() {
            self.status = Some(StatusRecord {
                code: "CANCELLED".into(),
                message: "interrupted (Ctrl-C or SIGTERM)".into(),
                details: None,
                cause: None,
            });
        }
    }

    fn fail(&mut self, message: String) {
        self.status = Some(StatusRecord {
            code: "UNAVAILABLE".into(),
            message,
            details: None,
            cause: None,
        });
    }
}

/// An error in what the user gave (method, symbol, JSON, protos): exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct InputError(pub String);

/// Resolves once `stop` turns true (never when its sender is gone).
async fn stopped(mut stop: tokio::sync::watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Runs the plan; each response message goes to `each` as it is read.
/// When `stop` turns true the call ends there (CANCELLED) and what was
/// seen so far is returned.
pub(crate) async fn run(
    plan: Plan,
    stop: tokio::sync::watch::Receiver<bool>,
    each: &mut (dyn FnMut(serde_json::Value) + Send),
) -> Result<Record, InputError> {
    let start = Instant::now();
    let seen = Seen::new(start);
    let mut rec = Record {
        target: plan.target.text.clone(),
        ..Record::default()
    };
    let mut explainer = Explainer::new(None);
    let connected = tokio::select! {
        l = connect::connect(&plan, &seen, &mut rec, &mut explainer) => Some(l),
        _ = stopped(stop.clone()) => None,
    };
    let Some(Some(link)) = connected else {
        if connected.is_none() {
            rec.interrupt();
        }
        rec.steps = seen.take();
        return Ok(rec);
    };
    let outcome = work(&plan, &link, &seen, &mut rec, each, stop).await;
    let call_from_ms = outcome.as_ref().map_or(f64::MAX, |o| o.0);
    let events = finish(&link).await;
    rec.steps = steps::merge(seen.take(), &events, call_from_ms);
    for e in &events {
        if let Some(n) = explainer.explain(e) {
            rec.notes.push((e.t_ms, e.conn, n));
        }
    }
    match outcome {
        Ok((_, Some(rpc))) => explain_call(&mut explainer, &mut rec, &rpc),
        Ok((_, None)) => {}
        Err(e) => rec.input_error = Some(e.0),
    }
    Ok(rec)
}

/// The call's end, for the diagnosis.
struct RpcEnd {
    t_ms: f64,
    conn: u64,
    method: String,
    status: tonic::Status,
    latency_ms: f64,
    cause: Option<CallCause>,
}

/// Descriptors, then the action: when the call began (ms) and how it
/// ended, or `None` for list/describe.
async fn work(
    plan: &Plan,
    link: &Link,
    seen: &Arc<Seen>,
    rec: &mut Record,
    each: &mut (dyn FnMut(serde_json::Value) + Send),
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(f64, Option<RpcEnd>), InputError> {
    let from = seen.now_ms();
    let pool = tokio::select! {
        p = read_descriptors(plan, link, seen) => p,
        _ = stopped(stop.clone()) => {
            rec.interrupt();
            return Ok((seen.now_ms(), None));
        }
    };
    let pool = match pool {
        Ok(p) => p,
        Err(Descriptors::Http { status, error }) => {
            // Reflection's streams are the steps of the failure.
            return Ok((from, Some(http_answer(seen, link, rec, status, error))));
        }
        Err(Descriptors::Input(e)) => return Err(e),
    };
    let (method, data) = match &plan.action {
        Action::List(svc) => {
            rec.text = describe::list(&pool, svc.as_deref()).map_err(InputError)?;
            return Ok((seen.now_ms(), None));
        }
        Action::Describe(sym) => {
            rec.text = describe::describe(&pool, sym.as_deref()).map_err(InputError)?;
            return Ok((seen.now_ms(), None));
        }
        Action::Call { method, data } => (method, data),
    };
    rec.method = Some(method.to_string());
    let desc = descriptors::find_method(&pool, &method.path()).map_err(InputError)?;
    let messages = crate::rpc::payload::messages(&desc.input(), &data.0, &data.1)
        .map_err(|e| InputError(e.to_string()))?;
    let messages = messages
        .iter()
        .map(|m| bytes::Bytes::from(prost::Message::encode_to_vec(m)))
        .collect();
    let from = seen.now_ms();
    let req = exchange::Request {
        method: desc,
        messages,
        deadline: plan.deadline,
    };
    let print = |m: prost_reflect::DynamicMessage| {
        each(serde_json::to_value(&m).unwrap_or(serde_json::Value::Null))
    };
    let ending = exchange::call(
        recording(plan, link, seen.clone()),
        req,
        print,
        stopped(stop.clone()),
    )
    .await;
    if *stop.borrow() {
        rec.interrupt();
    }
    let latency_ms = seen.now_ms() - from;
    let code = crate::grpc::code_name(ending.status.code()).to_string();
    seen.push(CallStep::End {
        code: code.clone(),
        message: crate::redact::text(ending.status.message()),
        elapsed_ms: latency_ms,
    });
    rec.status = Some(StatusRecord {
        code,
        message: crate::redact::text(ending.status.message()),
        details: exchange::details_json(ending.status.details(), &pool),
        cause: ending.cause.clone(),
    });
    let end = RpcEnd {
        t_ms: seen.now_ms(),
        conn: link.conn.shared.id,
        method: method.to_string(),
        status: ending.status,
        latency_ms,
        cause: ending.cause,
    };
    Ok((from, Some(end)))
}

fn recording(plan: &Plan, link: &Link, seen: Arc<Seen>) -> Recording {
    Recording {
        conn: link.conn.clone(),
        scheme: link.scheme(),
        authority: link.authority().clone(),
        metadata: plan.metadata.clone(),
        seen,
    }
}

/// Why there are no descriptors.
enum Descriptors {
    /// What the user gave is wrong (or the server has no reflection).
    Input(InputError),
    /// Reflection was answered by an HTTP hop without gRPC (an error
    /// page): a failure of the path, not of the input.
    Http { status: u16, error: String },
}

/// Reflection answered by an HTTP hop: the call's failure, as the call
/// itself would have met it.
fn http_answer(seen: &Seen, link: &Link, rec: &mut Record, status: u16, error: String) -> RpcEnd {
    let status_ = tonic::Status::unavailable(error);
    let cause = CallCause::Http { status };
    rec.status = Some(StatusRecord {
        code: "UNAVAILABLE".into(),
        message: status_.message().to_string(),
        details: None,
        cause: Some(cause.clone()),
    });
    RpcEnd {
        t_ms: seen.now_ms(),
        conn: link.conn.shared.id,
        method: "grpc.reflection.v1.ServerReflection/ServerReflectionInfo".into(),
        status: status_,
        latency_ms: 0.0,
        cause: Some(cause),
    }
}

/// The descriptors, from reflection on the link (its own streams) or from
/// the files given, with a step saying where from.
async fn read_descriptors(
    plan: &Plan,
    link: &Link,
    seen: &Arc<Seen>,
) -> Result<DescriptorPool, Descriptors> {
    let from = seen.now_ms();
    let service = match &plan.action {
        Action::Call { method, .. } => Some(method.service().to_string()),
        Action::List(s) => s.clone(),
        Action::Describe(_) => None,
    };
    // Reflection's requests are recorded apart and left out of the steps.
    let quiet_seen = Seen::new(Instant::now());
    let quiet = recording(plan, link, quiet_seen.clone());
    let pool = descriptors::load(&plan.source, &quiet, service.as_deref())
        .await
        .map_err(|e| match quiet_seen.http_status() {
            Some(status) => Descriptors::Http {
                status,
                error: format!(
                    "server reflection was answered HTTP {status} without a gRPC status ({e})"
                ),
            },
            None => Descriptors::Input(InputError(e.to_string())),
        })?;
    let source = match &plan.source {
        Source::Reflection => "reflection".to_string(),
        Source::Protos { files, .. } => format!("{} .proto file(s)", files.len()),
        Source::Protoset(p) => format!("protoset {}", p.display()),
    };
    seen.push(CallStep::Descriptors {
        source,
        elapsed_ms: seen.now_ms() - from,
        streams: Vec::new(),
    });
    Ok(pool)
}

/// Closes the connection (GOAWAY, then the socket) and returns its
/// events once its close is logged (or after a second).
async fn finish(link: &Link) -> Vec<Event> {
    link.conn.close();
    let _ = tokio::time::timeout(Duration::from_secs(1), link.conn.closed()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    while link.closed().is_none() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    link.log.events()
}

/// What explains the call's failure: the diagnosis of its end, or else the
/// catalogue entry of its cause.
fn explain_call(explainer: &mut Explainer, rec: &mut Record, rpc: &RpcEnd) {
    if rpc.status.code() == tonic::Code::Ok {
        return;
    }
    let e = Event {
        t_ms: rpc.t_ms,
        kind: EventKind::Rpc {
            method: rpc.method.clone(),
            code: rpc.status.code(),
            message: rpc.status.message().to_string(),
            latency_ms: rpc.latency_ms,
            cause: rpc.cause.clone(),
            attempts: Vec::new(),
        },
        conn: Some(rpc.conn),
        addr: None,
    };
    if let Some(n) = explainer.explain(&e) {
        rec.notes.push((e.t_ms, e.conn, n));
        return;
    }
    let Some(cause) = &rpc.cause else { return };
    if let Some(entry) = crate::diagnose::cause_id(cause) {
        let detail = match cause {
            CallCause::Deadline => format!(
                "{} ended DEADLINE_EXCEEDED after {}",
                rpc.method,
                crate::diagnose::dur(rpc.latency_ms)
            ),
            _ => crate::diagnose::cause_detail(cause),
        };
        let n = Note {
            entry: Some(entry),
            also: Vec::new(),
            detail,
        };
        rec.notes.push((e.t_ms, e.conn, n));
    }
}
