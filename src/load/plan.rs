//! The one way to a [`LoadPlan`]: `grpcdoc load`'s flags and a scenario
//! client's `load:` both lower into a [`LoadRequest`], and [`prepare`]
//! turns it, with the client's [`ClientSettings`] and the method's
//! descriptor, into the plan the engine runs (payload encoded, service
//! config applied, request head built once).

use std::sync::Arc;
use std::time::Duration;

use prost_reflect::MethodDescriptor;

use super::call::{request_head, request_headers, CallTemplate};
use super::data::{Data, DataError};
use super::expect::{Checks, Expect};
use super::retry::{self, RetryPolicy, ServiceConfigError};
use super::stages::{Level, Schedule};
use crate::client::{ChannelConfig, ClientSettings};
use crate::event::EventSink;
use crate::rpc::MethodPath;
use crate::target::Target;

/// How long a run lasts when neither a count nor a duration is given.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(10);

/// Calls in flight when the user does not say (`-c`, scenario `concurrency`).
pub const DEFAULT_CONCURRENCY: u32 = 50;

/// The four kinds of gRPC call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallKind {
    Unary,
    ServerStreaming,
    ClientStreaming,
    Bidi,
}

impl CallKind {
    pub fn of(m: &MethodDescriptor) -> Self {
        match (m.is_client_streaming(), m.is_server_streaming()) {
            (false, false) => Self::Unary,
            (false, true) => Self::ServerStreaming,
            (true, false) => Self::ClientStreaming,
            (true, true) => Self::Bidi,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Unary => "unary",
            Self::ServerStreaming => "server streaming",
            Self::ClientStreaming => "client streaming",
            Self::Bidi => "bidi streaming",
        }
    }
}

/// What a load asks for, whoever describes it.
#[derive(Clone, Debug)]
pub(crate) struct LoadRequest {
    pub method: MethodPath,
    /// The request JSON and where it came from (`-d`, a file, `data`);
    /// `None`: one empty message.
    pub data: Option<(String, String)>,
    pub metadata: Vec<(String, String)>,
    pub concurrency: usize,
    pub total: Option<u64>,
    /// Without `total` or `duration` a run lasts [`DEFAULT_DURATION`].
    pub duration: Option<Duration>,
    pub rps: Option<f64>,
    /// Checks on every response (`--expect`).
    pub expect: Vec<Expect>,
    /// The calls in flight or the rate over time (`--stages`): the run
    /// lasts as long as they do.
    pub stages: Option<Schedule>,
    /// Each call's deadline; without it, the service config's.
    pub timeout: Option<Duration>,
    /// Client and bidi streaming: messages per call and the time between.
    pub stream_messages: usize,
    pub stream_interval: Duration,
    /// See [`LoadPlan::sticky`].
    pub sticky: bool,
    /// See [`LoadPlan::redial_unready`].
    pub redial_unready: bool,
}

impl LoadRequest {
    /// A closed-loop load of `method` with the defaults.
    pub(crate) fn new(method: MethodPath) -> Self {
        Self {
            method,
            data: None,
            metadata: Vec::new(),
            concurrency: DEFAULT_CONCURRENCY as usize,
            total: None,
            duration: None,
            rps: None,
            stages: None,
            expect: Vec::new(),
            timeout: None,
            stream_messages: 1,
            stream_interval: Duration::ZERO,
            sticky: true,
            redial_unready: false,
        }
    }
}

#[derive(Clone)]
pub struct LoadPlan {
    pub template: CallTemplate,
    pub kind: CallKind,
    pub concurrency: usize,
    pub total: Option<u64>,
    pub duration: Option<Duration>,
    pub rps: Option<f64>,
    pub stages: Option<Arc<Schedule>>,
    pub timeout: Option<Duration>,
    pub retry: Option<RetryPolicy>,
    pub transparent_retry: bool,
    pub wait_for_ready: bool,
    pub method: MethodPath,
    /// Emit an `rpc` event per call here (scenarios; not for heavy load).
    pub events: Option<EventSink>,
    /// Each worker keeps the connection of its last call while the READY
    /// set is unchanged and the connection takes new streams without
    /// waiting: the calls of a connection then go out together (as h2load's
    /// and ghz's workers own a connection), while any connection joining or
    /// leaving makes every worker pick again by the channel's policy.
    pub sticky: bool,
    /// The fixed go-micro pool: a channel that is not READY when a call
    /// needs it is dialed anew at once (its reconnect backoff cut short),
    /// instead of being handed out to fail fast until its backoff ends.
    pub redial_unready: bool,
}

/// Why a load cannot be prepared.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PrepareError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    ServiceConfig(#[from] ServiceConfigError),
    #[error("--expect {0}")]
    Expect(String),
    #[error("cannot make a request URI for {0}")]
    Uri(String),
}

/// The channel of a client: its settings, and the health checking its
/// service config asks for (`healthCheckConfig`) unless a health service
/// was given.
pub(crate) fn channel_config(
    settings: &ClientSettings,
    target: Target,
) -> Result<ChannelConfig, ServiceConfigError> {
    let mut cfg = settings.channel_config(target, false);
    if let Some(sc) = &settings.service_config {
        retry::validate(sc)?;
        if let Some(service) = retry::health_check_service(sc)? {
            cfg.health_service.get_or_insert(service);
        }
    }
    Ok(cfg)
}

/// Builds the plan for calls of `method` (the request's method, found in
/// the descriptors) to `origin` (`http://host:port`); `events` gets an
/// `rpc` event per call.
pub(crate) fn prepare(
    req: LoadRequest,
    client: &ClientSettings,
    method: &MethodDescriptor,
    origin: &str,
    events: Option<EventSink>,
) -> Result<LoadPlan, PrepareError> {
    let (from, json) = req.data.unwrap_or_else(|| ("-d".into(), String::new()));
    let data = Data::read(&method.input(), &from, &json)?;
    let checks = match req.expect.as_slice() {
        [] => None,
        list => Some(Arc::new(
            Checks::new(list, &method.output()).map_err(PrepareError::Expect)?,
        )),
    };
    let policy = match &client.service_config {
        Some(j) => retry::method_policy(j, req.method.service(), req.method.method())?,
        None => retry::MethodPolicy::default(),
    };
    let timeout = req.timeout.or(policy.timeout);
    let path = req.method.path();
    let uri: http::Uri = format!("{origin}{path}")
        .parse()
        .map_err(|_| PrepareError::Uri(path.clone()))?;
    let headers = request_headers(&req.metadata, timeout);
    let duration = match (&req.stages, req.total, req.duration) {
        (Some(s), _, _) => Some(s.total()),
        (None, None, None) => Some(DEFAULT_DURATION),
        (None, _, d) => d,
    };
    // Stages of calls in flight need as many workers as their most.
    let concurrency = match &req.stages {
        Some(s) if s.level == Level::Concurrency => s.max().ceil() as usize,
        _ => req.concurrency,
    };
    Ok(LoadPlan {
        template: CallTemplate {
            head: Arc::new(request_head(&uri, &headers)),
            uri,
            headers,
            data,
            client_streaming: method.is_client_streaming(),
            stream_messages: req.stream_messages,
            stream_interval: req.stream_interval,
            checks,
        },
        kind: CallKind::of(method),
        concurrency: concurrency.max(1),
        total: req.total,
        duration,
        rps: req.rps,
        stages: req.stages.map(Arc::new),
        timeout,
        retry: policy.retry,
        transparent_retry: client.transparent_retry,
        wait_for_ready: client.wait_for_ready || policy.wait_for_ready == Some(true),
        method: req.method,
        events,
        sticky: req.sticky,
        redial_unready: req.redial_unready,
    })
}
