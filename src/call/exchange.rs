//! The call itself, on one connection: a tower service that records the
//! request's headers, the response's headers and its trailers as they pass
//! (with their times), tonic's client over it with the raw codec, and each
//! response message decoded by its descriptor as it is read.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame};
use prost_reflect::{DynamicMessage, MethodDescriptor};

use super::steps::{CallStep, Field, Step, What};
use crate::client::body::StreamBody;
use crate::client::conn::{set_origin, stream_status, Conn};
use crate::client::wire::StreamError;
use crate::event::CallCause;
use crate::h2wire::Dir;

/// What the call saw, with times on the command's clock.
pub(crate) struct Seen {
    start: Instant,
    steps: Mutex<Vec<Step>>,
    /// An HTTP status that came without gRPC (an error page of a hop).
    http: Mutex<Option<u16>>,
    /// grpc-status came from the server (in trailers, or trailers-only).
    grpc_status: Mutex<bool>,
}

impl Seen {
    pub fn new(start: Instant) -> Arc<Self> {
        Arc::new(Self {
            start,
            steps: Mutex::default(),
            http: Mutex::default(),
            grpc_status: Mutex::default(),
        })
    }

    /// The clock every step counts from.
    pub fn start(&self) -> Instant {
        self.start
    }

    pub fn now_ms(&self) -> f64 {
        self.start.elapsed().as_secs_f64() * 1e3
    }

    pub fn push(&self, step: CallStep) {
        self.push_at(self.now_ms(), step);
    }

    /// Records a step that happened at `t_ms`.
    pub fn push_at(&self, t_ms: f64, step: CallStep) {
        if let Ok(mut s) = self.steps.lock() {
            s.push(Step {
                t_ms,
                what: What::Call(step),
            });
        }
    }

    pub fn take(&self) -> Vec<Step> {
        self.steps
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default()
    }

    /// The HTTP status of an answer that was not gRPC, if one came.
    pub fn http_status(&self) -> Option<u16> {
        self.http.lock().ok().and_then(|h| *h)
    }

    fn saw_grpc_status(&self, h: &http::HeaderMap) {
        if h.contains_key("grpc-status") {
            if let Ok(mut g) = self.grpc_status.lock() {
                *g = true;
            }
        }
    }
}

/// Sends requests on one connection and records what passes.
#[derive(Clone)]
pub(crate) struct Recording {
    pub conn: Arc<Conn>,
    pub scheme: http::uri::Scheme,
    pub authority: http::uri::Authority,
    /// Sent with every request (`-H`, grpc-timeout): reflection's too.
    pub metadata: http::HeaderMap,
    pub seen: Arc<Seen>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The request's pseudo-headers and headers, as they go out.
fn request_fields(req: &http::Request<tonic::body::Body>) -> Vec<Field> {
    let uri = req.uri();
    let mut fields = vec![
        Field::new(":method", req.method().as_str().as_bytes()),
        Field::new(":scheme", uri.scheme_str().unwrap_or("http").as_bytes()),
        Field::new(":path", uri.path().as_bytes()),
        Field::new(
            ":authority",
            uri.authority().map_or("", |a| a.as_str()).as_bytes(),
        ),
    ];
    fields.extend(Field::all(req.headers()));
    fields
}

impl tower_service::Service<http::Request<tonic::body::Body>> for Recording {
    type Response = http::Response<RecordedBody>;
    type Error = tonic::Status;
    type Future = BoxFuture<Result<Self::Response, tonic::Status>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), tonic::Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: http::Request<tonic::body::Body>) -> Self::Future {
        set_origin(&mut req, &self.scheme, &self.authority);
        for (k, v) in &self.metadata {
            req.headers_mut().append(k.clone(), v.clone());
        }
        self.seen.push(CallStep::RequestHeaders {
            fields: request_fields(&req),
        });
        let conn = self.conn.clone();
        let seen = self.seen.clone();
        let sent = conn.send(req);
        Box::pin(async move {
            match sent.await {
                Ok(resp) => {
                    seen.saw_grpc_status(resp.headers());
                    seen.push(CallStep::ResponseHeaders {
                        status: resp.status().as_u16(),
                        fields: Field::all(resp.headers()),
                    });
                    Ok(resp.map(|inner| RecordedBody { inner, seen }))
                }
                Err(e) => {
                    if let StreamError::Foreign(f) = &e {
                        // An HTTP hop's answer without gRPC (an error page).
                        let fields = f
                            .content_type
                            .iter()
                            .map(|c| Field::new("content-type", c.as_bytes()))
                            .collect();
                        seen.push(CallStep::ResponseHeaders {
                            status: f.status,
                            fields,
                        });
                        if let Ok(mut h) = seen.http.lock() {
                            *h = Some(f.status);
                        }
                    }
                    Err(stream_status(&e, conn.shared.goaway()))
                }
            }
        })
    }
}

pin_project_lite::pin_project! {
    /// A response body that records its trailers as they arrive.
    pub(crate) struct RecordedBody {
        #[pin]
        inner: StreamBody,
        seen: Arc<Seen>,
    }
}

impl Body for RecordedBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(t) = frame.trailers_ref() {
                    this.seen.saw_grpc_status(t);
                    this.seen.push(CallStep::Trailers {
                        fields: Field::all(t),
                    });
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(stream_status(&e, None)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
}

/// What one call is: the method, its request messages (encoded), and its
/// deadline (the metadata is the [`Recording`]'s).
pub(crate) struct Request {
    pub method: MethodDescriptor,
    pub messages: Vec<Bytes>,
    pub deadline: Option<Duration>,
}

/// How the call ended.
pub(crate) struct Ending {
    pub status: tonic::Status,
    pub cause: Option<CallCause>,
}

/// Makes the call over `rec`, handing each decoded response message to
/// `each` as it is read; gives up at the deadline, or when `stop` resolves
/// (CANCELLED). Either way the stream is reset.
pub(crate) async fn call(
    rec: Recording,
    req: Request,
    each: impl FnMut(DynamicMessage),
    stop: impl Future<Output = ()>,
) -> Ending {
    let seen = rec.seen.clone();
    let deadline = req.deadline;
    let run = exchange(rec, req, each);
    let timed = async {
        match deadline {
            Some(d) => tokio::time::timeout(d, run).await.map_err(|_| d),
            None => Ok(run.await),
        }
    };
    let ended = tokio::select! {
        r = timed => r,
        _ = stop => {
            return Ending {
                status: tonic::Status::cancelled("interrupted (Ctrl-C or SIGTERM)"),
                cause: None,
            }
        }
    };
    match ended {
        Ok(result) => {
            let status = result.err().unwrap_or_else(|| tonic::Status::ok(""));
            let cause = cause(&seen, &status);
            Ending { status, cause }
        }
        Err(d) => Ending {
            status: tonic::Status::deadline_exceeded(format!(
                "no answer within the deadline of {}",
                humantime::format_duration(d)
            )),
            cause: Some(CallCause::Deadline),
        },
    }
}

/// The request messages as a stream that records each as it goes out.
fn outgoing(seen: Arc<Seen>, messages: Vec<Bytes>) -> impl tokio_stream::Stream<Item = Bytes> {
    tokio_stream::StreamExt::map(
        tokio_stream::iter(messages.into_iter().enumerate()),
        move |(i, m)| {
            seen.push(CallStep::Message {
                dir: Dir::Sent,
                index: i + 1,
                bytes: m.len(),
            });
            m
        },
    )
}

/// The call on the wire, to its end: OK, or the status it ended with.
async fn exchange(
    rec: Recording,
    req: Request,
    mut each: impl FnMut(DynamicMessage),
) -> Result<(), tonic::Status> {
    let seen = rec.seen.clone();
    let output = req.method.output();
    let path = format!(
        "/{}/{}",
        req.method.parent_service().full_name(),
        req.method.name()
    );
    let path = http::uri::PathAndQuery::try_from(path)
        .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
    let mut grpc = tonic::client::Grpc::new(rec);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let request = tonic::Request::new(outgoing(seen.clone(), req.messages));
    let mut stream = grpc
        .streaming(request, path, crate::rpc::raw::RawCodec)
        .await?
        .into_inner();
    let mut index = 0;
    while let Some(bytes) = stream.message().await? {
        index += 1;
        seen.push(CallStep::Message {
            dir: Dir::Received,
            index,
            bytes: bytes.len(),
        });
        let m = DynamicMessage::decode(output.clone(), bytes).map_err(|e| {
            tonic::Status::internal(format!(
                "response {index} is not a {}: {e}",
                output.full_name()
            ))
        })?;
        each(m);
    }
    Ok(())
}

/// Why the call failed, from what was seen (never from message text).
fn cause(seen: &Seen, status: &tonic::Status) -> Option<CallCause> {
    if status.code() == tonic::Code::Ok {
        return None;
    }
    if let Some(c) = crate::diagnose::probe_cause(status) {
        return Some(c);
    }
    if let Some(status) = seen.http_status() {
        return Some(CallCause::Http { status });
    }
    let from_server = seen.grpc_status.lock().map(|g| *g).unwrap_or(false);
    if from_server && status.code() == tonic::Code::DeadlineExceeded {
        return Some(CallCause::Deadline);
    }
    from_server.then_some(CallCause::Status {
        code: status.code(),
    })
}

/// `google.rpc.Status`, as grpc-status-details-bin carries it.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<prost_types::Any>,
}

/// The status details as JSON: code, message, and each detail as JSON
/// when `pool` knows its type, else its type and size.
pub(crate) fn details_json(
    bytes: &[u8],
    pool: &prost_reflect::DescriptorPool,
) -> Option<serde_json::Value> {
    use prost::Message;
    if bytes.is_empty() {
        return None;
    }
    let s = match RpcStatus::decode(bytes) {
        Ok(s) => s,
        Err(e) => {
            return Some(serde_json::json!({ "error": format!("not a google.rpc.Status: {e}") }))
        }
    };
    let details: Vec<serde_json::Value> = s
        .details
        .iter()
        .map(|any| {
            let name = any.type_url.rsplit('/').next().unwrap_or_default();
            let known = pool
                .get_message_by_name(name)
                .and_then(|d| DynamicMessage::decode(d, any.value.as_slice()).ok())
                .and_then(|m| serde_json::to_value(&m).ok());
            match known {
                Some(v) => serde_json::json!({ "@type": any.type_url, "value": v }),
                None => serde_json::json!({ "@type": any.type_url, "bytes": any.value.len() }),
            }
        })
        .collect();
    Some(serde_json::json!({
        "code": crate::grpc::code_name(tonic::Code::from_i32(s.code)),
        "message": s.message,
        "details": details,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn status_details_decode_as_google_rpc_status() {
        let pool = prost_reflect::DescriptorPool::decode(crate::pb::FILE_DESCRIPTOR_SET).unwrap();
        let reply = crate::pb::helloworld::HelloReply {
            message: "why".into(),
        };
        let s = RpcStatus {
            code: 5,
            message: "no such thing".into(),
            details: vec![
                prost_types::Any {
                    type_url: "type.googleapis.com/helloworld.HelloReply".into(),
                    value: reply.encode_to_vec(),
                },
                prost_types::Any {
                    type_url: "type.googleapis.com/google.rpc.ErrorInfo".into(),
                    value: vec![1, 2, 3],
                },
            ],
        };
        let v = details_json(&s.encode_to_vec(), &pool).unwrap();
        assert_eq!(v["code"], "NOT_FOUND");
        assert_eq!(v["message"], "no such thing");
        assert_eq!(v["details"][0]["value"]["message"], "why");
        assert_eq!(v["details"][1]["bytes"], 3);
        assert!(details_json(&[], &pool).is_none());
        assert!(details_json(&[0xff, 0xff], &pool).unwrap()["error"].is_string());
    }
}
