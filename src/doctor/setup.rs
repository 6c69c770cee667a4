//! The first connection: what the server announces and answers (SETTINGS,
//! reflection, health, the `server` header, an unknown method), round
//! trips of PINGs and of calls, and a method to hold open for the other
//! measurements.

use std::time::Duration;

use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use super::link::{ms, Link};
use super::model::Setup;
use super::Budget;
use crate::client::health::ConnService;

/// A method no server has: its answer shows who answers calls.
pub const UNKNOWN_METHOD: &str = "/grpcdoc.doctor.v1.Probe/NoSuchMethod";

const HEALTH_CHECK: &str = "/grpc.health.v1.Health/Check";
/// A server stream every health service keeps open after its first answer.
pub(super) const HEALTH_WATCH: &str = "/grpc.health.v1.Health/Watch";

fn service(link: &Link) -> ConnService {
    ConnService {
        conn: link.conn.clone(),
        scheme: link.scheme(),
        authority: link.authority().clone(),
    }
}

fn request<T>(link: &Link, msg: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    *req.metadata_mut() = tonic::metadata::MetadataMap::from_headers(link.metadata().clone());
    req.set_timeout(Duration::from_secs(5));
    req
}

macro_rules! list_services {
    ($name:ident, $m:ident) => {
        /// The services reflection of this version lists.
        async fn $name(link: &Link) -> Result<Vec<String>, tonic::Status> {
            use tonic_reflection::pb::$m::server_reflection_client::ServerReflectionClient;
            use tonic_reflection::pb::$m::server_reflection_request::MessageRequest;
            use tonic_reflection::pb::$m::server_reflection_response::MessageResponse;
            use tonic_reflection::pb::$m::ServerReflectionRequest;
            let mut client = ServerReflectionClient::new(service(link));
            let req = request(
                link,
                tokio_stream::iter([ServerReflectionRequest {
                    host: String::new(),
                    message_request: Some(MessageRequest::ListServices(String::new())),
                }]),
            );
            let mut stream = client.server_reflection_info(req).await?.into_inner();
            match stream.message().await?.and_then(|r| r.message_response) {
                Some(MessageResponse::ListServicesResponse(l)) => {
                    Ok(l.service.into_iter().map(|s| s.name).collect())
                }
                Some(MessageResponse::ErrorResponse(e)) => {
                    Err(tonic::Status::unknown(e.error_message))
                }
                _ => Err(tonic::Status::unknown("unexpected reflection answer")),
            }
        }
    };
}

list_services!(list_v1, v1);
list_services!(list_v1alpha, v1alpha);

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

/// Looks at the connection; `hold` is the user's method to hold open.
pub async fn inspect(link: &Link, hold: Option<&str>, budget: &Budget) -> Setup {
    let mut s = Setup {
        timing: link.timing.clone(),
        ..Setup::default()
    };

    // Round trips: a call to an unknown method, then a PING, five times.
    // Each call's answer (HEADERS) resets the server's ping strikes, so
    // these PINGs never count against its keepalive enforcement.
    let (mut calls, mut pings) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        if budget.over() {
            break;
        }
        let c = link.call(UNKNOWN_METHOD, &[], Duration::from_secs(5)).await;
        if c.answered() {
            calls.push(ms(c.rtt));
        }
        if s.server_header.is_none() {
            s.server_header = c.server.clone();
        }
        s.unknown_method.get_or_insert_with(|| c.describe());
        if let Some(rtt) = link.ping(Duration::from_secs(5)).await {
            pings.push(ms(rtt));
        }
    }
    s.call_rtt_ms = median(calls);
    s.ping_rtt_ms = median(pings);

    // Reflection: v1, then v1alpha (grpc-go 1.33, grpcio serve only that).
    match list_v1(link).await {
        Ok(list) => {
            s.reflection = Some("v1".into());
            s.services = list;
        }
        Err(e) if e.code() == tonic::Code::Unimplemented => {
            if let Ok(list) = list_v1alpha(link).await {
                s.reflection = Some("v1alpha".into());
                s.services = list;
            }
        }
        Err(_) => {}
    }
    s.services.sort();

    let health = HealthClient::new(service(link))
        .check(request(link, HealthCheckRequest::default()))
        .await;
    s.health = Some(match health {
        Ok(r) => ServingStatus::try_from(r.get_ref().status)
            .map(|st| st.as_str_name().to_string())
            .unwrap_or_else(|_| format!("status {}", r.get_ref().status)),
        Err(e) => crate::grpc::code_name(e.code()).to_string(),
    });

    s.held_method = choose_hold(link, hold, &s).await;
    // Read last: the connection's log has caught up by now.
    s.settings = link.settings();
    s.settings_like = super::fingerprint::settings_like(&s.settings).map(str::to_string);
    s
}

/// A method whose call the server keeps open while no request arrives:
/// the user's, else health Check, else reflection. Tried on `link`: a
/// method is taken when its call is still open after a moment.
async fn choose_hold(link: &Link, hold: Option<&str>, s: &Setup) -> Option<String> {
    let mut candidates: Vec<String> = Vec::new();
    if let Some(h) = hold {
        candidates.push(h.to_string());
    }
    if s.health.as_deref().is_some_and(|h| h != "UNIMPLEMENTED") {
        candidates.push(HEALTH_CHECK.into());
        // A server-streaming call: kept open by servers that end a unary
        // call still waiting for its request.
        candidates.push(HEALTH_WATCH.into());
    }
    match s.reflection.as_deref() {
        Some("v1") => {
            candidates.push("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo".into())
        }
        Some(_) => {
            candidates.push("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo".into())
        }
        None => {}
    }
    let wait = Duration::from_secs_f64((s.call_rtt_ms.unwrap_or(10.0) * 5.0 / 1e3).clamp(0.2, 2.0));
    for c in candidates {
        let Ok(stream) = link.hold(&c) else { continue };
        tokio::time::sleep(wait).await;
        let open = !stream.is_end();
        drop(stream);
        if open {
            return Some(c);
        }
    }
    None
}
