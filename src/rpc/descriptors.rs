//! Where method descriptors come from: server reflection (v1, falling back
//! to v1alpha, which older servers such as grpc-go 1.33 serve), `.proto`
//! files compiled in-process by protox (no `protoc`), or a protoset file.

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;

use prost::Message;
use prost_reflect::{DescriptorPool, MethodDescriptor};

/// What reflection calls go over: grpcdoc's channel, or one connection
/// (`client::health::ConnService`), as `grpcdoc call` asks on the
/// connection it calls on.
pub trait Transport:
    tonic::client::GrpcService<
        tonic::body::Body,
        Error: Into<tonic::codegen::StdError>,
        ResponseBody: http_body::Body<
            Data = bytes::Bytes,
            Error: Into<tonic::codegen::StdError> + Send,
        > + Send
                          + 'static,
        Future: Send,
    > + Clone
    + Send
    + Sync
    + 'static
{
}

impl<T> Transport for T where
    T: tonic::client::GrpcService<
            tonic::body::Body,
            Error: Into<tonic::codegen::StdError>,
            ResponseBody: http_body::Body<
                Data = bytes::Bytes,
                Error: Into<tonic::codegen::StdError> + Send,
            > + Send
                              + 'static,
            Future: Send,
        > + Clone
        + Send
        + Sync
        + 'static
{
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Reflection,
    Protos {
        files: Vec<PathBuf>,
        includes: Vec<PathBuf>,
    },
    Protoset(PathBuf),
}

#[derive(Debug, thiserror::Error)]
pub enum DescError {
    #[error("cannot compile the .proto files: {0}")]
    Proto(String),
    #[error("{0}")]
    ProtoFile(String),
    #[error("cannot read the protoset {path}: {reason}")]
    Protoset { path: String, reason: String },
    #[error("server reflection failed: {0}; pass --proto FILE or --protoset FILE instead")]
    Reflection(String),
    #[error("the descriptors do not fit together: {0}")]
    Pool(String),
    #[error("the server has no service `{service}`; its services (by reflection): {}{}", .services.join(", "), closest_text(.service, .services))]
    UnknownService {
        service: String,
        services: Vec<String>,
    },
}

fn closest_text(wanted: &str, services: &[String]) -> String {
    match closest(wanted, services) {
        Some(c) => format!(". Did you mean `{c}`?"),
        None => String::new(),
    }
}

/// The service a user most likely meant: the one whose last part is
/// `wanted` when it has no package (`Greeter`), else the nearest by edit
/// distance (a typo), if near enough.
pub fn closest<'a>(wanted: &str, services: &'a [String]) -> Option<&'a str> {
    let by_name: Vec<&String> = services
        .iter()
        .filter(|s| s.rsplit('.').next() == Some(wanted) || s.eq_ignore_ascii_case(wanted))
        .collect();
    if let [one] = by_name.as_slice() {
        return Some(one.as_str());
    }
    let (best, d) = services
        .iter()
        .map(|s| {
            (
                s,
                edit_distance(&s.to_ascii_lowercase(), &wanted.to_ascii_lowercase()),
            )
        })
        .min_by_key(|(_, d)| *d)?;
    (d <= (wanted.len() / 3).max(2)).then_some(best.as_str())
}

/// Levenshtein distance, on chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Loads the descriptors; with reflection, only what `service` needs (all
/// services when `None`, to list them).
pub async fn load(
    source: &Source,
    channel: &impl Transport,
    service: Option<&str>,
) -> Result<DescriptorPool, DescError> {
    match source {
        Source::Protos { files, includes } => {
            let (names, includes) = resolve_protos(files, includes)?;
            let mut c =
                protox::Compiler::new(&includes).map_err(|e| DescError::Proto(format!("{e:?}")))?;
            c.include_imports(true);
            c.open_files(&names)
                .map_err(|e| DescError::Proto(protox_error(&e)))?;
            DescriptorPool::from_file_descriptor_set(c.file_descriptor_set())
                .map_err(|e| DescError::Pool(e.to_string()))
        }
        Source::Protoset(path) => {
            let err = |reason: String| DescError::Protoset {
                path: path.display().to_string(),
                reason,
            };
            let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
            DescriptorPool::decode(bytes.as_slice()).map_err(|e| err(e.to_string()))
        }
        Source::Reflection => reflect(channel, service).await,
    }
}

/// The names to compile and the import paths, as protoc and grpcurl take
/// `--proto` files: a relative name is looked for under each import path
/// first, then as a path from the current directory; a file found as a
/// path is named relative to the import path it lies in, or else its own
/// folder becomes an import path.
fn resolve_protos(
    files: &[PathBuf],
    includes: &[PathBuf],
) -> Result<(Vec<PathBuf>, Vec<PathBuf>), DescError> {
    let mut includes = includes.to_vec();
    let mut names = Vec::new();
    for f in files {
        if f.is_relative() && includes.iter().any(|i| i.join(f).is_file()) {
            names.push(f.clone());
            continue;
        }
        if !f.is_file() {
            let looked = if includes.is_empty() {
                String::new()
            } else {
                format!(
                    " (looked in the current directory and in -I {})",
                    includes
                        .iter()
                        .map(|i| i.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            let why = match std::fs::metadata(f) {
                Ok(m) if m.is_dir() => "it is a directory".to_string(),
                Ok(_) => "it is not a regular file".to_string(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => "no such file".to_string(),
                Err(e) => e.to_string(),
            };
            return Err(DescError::ProtoFile(format!(
                "cannot read --proto {}: {why}{looked}",
                f.display()
            )));
        }
        let full = std::fs::canonicalize(f).unwrap_or_else(|_| f.clone());
        let inside = includes.iter().find_map(|i| {
            let i = std::fs::canonicalize(i).ok()?;
            full.strip_prefix(&i).ok().map(PathBuf::from)
        });
        if let Some(rel) = inside {
            names.push(rel);
            continue;
        }
        let dir = match f.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !includes.contains(&dir) {
            includes.push(dir);
        }
        names.push(
            f.file_name()
                .map(PathBuf::from)
                .unwrap_or_else(|| f.clone()),
        );
    }
    Ok((names, includes))
}

fn protox_error(e: &protox::Error) -> String {
    // protox's Display names the file, line and column of a syntax error.
    let text = e.to_string();
    match e.file() {
        Some(f) if !text.contains(f) => format!("{f}: {text}"),
        _ => text,
    }
}

/// Serialized FileDescriptorProtos from one reflection call.
enum Answer {
    Files(Vec<Vec<u8>>),
    Services(Vec<String>),
    Error(String),
}

macro_rules! reflection_client {
    ($name:ident, $m:ident) => {
        /// One request on a reflection stream of this version.
        async fn $name(channel: &impl Transport, req: RefRequest) -> Result<Answer, tonic::Status> {
            use tonic_reflection::pb::$m::server_reflection_client::ServerReflectionClient;
            use tonic_reflection::pb::$m::server_reflection_request::MessageRequest;
            use tonic_reflection::pb::$m::server_reflection_response::MessageResponse;
            use tonic_reflection::pb::$m::ServerReflectionRequest;
            let message_request = Some(match req {
                RefRequest::List => MessageRequest::ListServices(String::new()),
                RefRequest::Symbol(s) => MessageRequest::FileContainingSymbol(s),
                RefRequest::File(f) => MessageRequest::FileByFilename(f),
            });
            let mut client = ServerReflectionClient::new(channel.clone());
            let mut req = tonic::Request::new(tokio_stream::iter([ServerReflectionRequest {
                host: String::new(),
                message_request,
            }]));
            req.set_timeout(std::time::Duration::from_secs(10));
            let mut stream = client.server_reflection_info(req).await?.into_inner();
            let resp = stream
                .message()
                .await?
                .ok_or_else(|| tonic::Status::unknown("empty reflection answer"))?;
            Ok(match resp.message_response {
                Some(MessageResponse::FileDescriptorResponse(f)) => {
                    Answer::Files(f.file_descriptor_proto)
                }
                Some(MessageResponse::ListServicesResponse(l)) => {
                    Answer::Services(l.service.into_iter().map(|s| s.name).collect())
                }
                Some(MessageResponse::ErrorResponse(e)) => Answer::Error(e.error_message),
                _ => Answer::Error("unexpected reflection answer".into()),
            })
        }
    };
}

#[derive(Clone)]
enum RefRequest {
    List,
    Symbol(String),
    File(String),
}

reflection_client!(ask_v1, v1);
reflection_client!(ask_v1alpha, v1alpha);

/// One reflection request; a request the server never processed (a GOAWAY
/// crossed it) is sent again, as gRPC clients retry such calls, a few times.
async fn ask(channel: &impl Transport, v1: bool, req: RefRequest) -> Result<Answer, tonic::Status> {
    let mut attempt = 0u32;
    loop {
        let r = if v1 {
            ask_v1(channel, req.clone()).await
        } else {
            ask_v1alpha(channel, req.clone()).await
        };
        match r {
            Err(s) if crate::client::conn::never_processed(&s) && attempt < 5 => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(10 << attempt)).await;
            }
            r => return r,
        }
    }
}

async fn reflect(
    channel: &impl Transport,
    service: Option<&str>,
) -> Result<DescriptorPool, DescError> {
    let fail = |e: String| DescError::Reflection(e);
    // v1 first; UNIMPLEMENTED -> v1alpha.
    let (v1, services) = match ask(channel, true, RefRequest::List).await {
        Ok(Answer::Services(s)) => (true, s),
        Err(s) if s.code() == tonic::Code::Unimplemented => {
            match ask(channel, false, RefRequest::List).await {
                Ok(Answer::Services(s)) => (false, s),
                Ok(Answer::Error(e)) => return Err(fail(e)),
                Ok(Answer::Files(_)) => return Err(fail("unexpected answer".into())),
                Err(s) if s.code() == tonic::Code::Unimplemented => {
                    return Err(fail(
                        "the server does not offer reflection (v1 or v1alpha)".into(),
                    ))
                }
                Err(s) => return Err(fail(format!("{:?}: {}", s.code(), s.message()))),
            }
        }
        Ok(Answer::Error(e)) => return Err(fail(e)),
        Ok(Answer::Files(_)) => return Err(fail("unexpected answer".into())),
        Err(s) => return Err(fail(format!("{:?}: {}", s.code(), s.message()))),
    };
    let wanted: Vec<String> = match service {
        // The server lists its services: a name it does not have is a
        // user's mistake, said with the names it has.
        Some(s) if !services.iter().any(|x| x == s) => {
            return Err(DescError::UnknownService {
                service: s.to_string(),
                services: services
                    .into_iter()
                    .filter(|s| !s.starts_with("grpc.reflection."))
                    .collect(),
            })
        }
        Some(s) => vec![s.to_string()],
        None => services
            .into_iter()
            .filter(|s| !s.starts_with("grpc.reflection."))
            .collect(),
    };
    let mut files: Vec<prost_types::FileDescriptorProto> = Vec::new();
    let mut have: HashSet<String> = HashSet::new();
    let mut queue: Vec<RefRequest> = wanted.into_iter().map(RefRequest::Symbol).collect();
    while let Some(req) = queue.pop() {
        let what = match &req {
            RefRequest::Symbol(s) => format!("symbol {s}"),
            RefRequest::File(f) => format!("file {f}"),
            RefRequest::List => String::new(),
        };
        let answer = ask(channel, v1, req)
            .await
            .map_err(|s| fail(format!("{what}: {:?}: {}", s.code(), s.message())))?;
        let protos = match answer {
            Answer::Files(f) => f,
            Answer::Error(e) => return Err(fail(format!("{what}: {e}"))),
            Answer::Services(_) => return Err(fail("unexpected answer".into())),
        };
        for bytes in protos {
            let fd = prost_types::FileDescriptorProto::decode(bytes.as_slice())
                .map_err(|e| fail(format!("bad descriptor for {what}: {e}")))?;
            if !have.insert(fd.name().to_string()) {
                continue;
            }
            for dep in &fd.dependency {
                if !have.contains(dep) {
                    queue.push(RefRequest::File(dep.clone()));
                }
            }
            files.push(fd);
        }
    }
    let mut pool = DescriptorPool::new();
    pool.add_file_descriptor_protos(files)
        .map_err(|e| DescError::Pool(e.to_string()))?;
    Ok(pool)
}

fn kind(m: &MethodDescriptor) -> &'static str {
    match (m.is_client_streaming(), m.is_server_streaming()) {
        (false, false) => "unary",
        (false, true) => "server streaming",
        (true, false) => "client streaming",
        (true, true) => "bidi streaming",
    }
}

/// Every method, one per line, for error messages.
pub fn list_methods(pool: &DescriptorPool) -> String {
    let mut lines = BTreeSet::new();
    for s in pool.services() {
        if s.full_name().starts_with("grpc.reflection.") {
            continue;
        }
        for m in s.methods() {
            lines.insert(format!("  {}/{} ({})", s.full_name(), m.name(), kind(&m)));
        }
    }
    if lines.is_empty() {
        return "  (no services)".into();
    }
    lines.into_iter().collect::<Vec<_>>().join("\n")
}

/// The method named by `path` (`/pkg.Service/Method`), or an error that
/// lists what there is.
pub fn find_method(pool: &DescriptorPool, path: &str) -> Result<MethodDescriptor, String> {
    let (svc, method) = path
        .trim_start_matches('/')
        .split_once('/')
        .ok_or_else(|| format!("`{path}` is not pkg.Service/Method"))?;
    let found = pool
        .get_service_by_name(svc)
        .and_then(|s| s.methods().find(|m| m.name() == method));
    found.ok_or_else(|| {
        format!(
            "no method {svc}/{method}; the methods found are:\n{}",
            list_methods(pool)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> DescriptorPool {
        DescriptorPool::decode(crate::pb::FILE_DESCRIPTOR_SET).unwrap()
    }

    #[test]
    fn the_closest_service_is_suggested() {
        let svcs: Vec<String> = [
            "grpc.health.v1.Health",
            "helloworld.Greeter",
            "grpcdoc.echo.v1.Echo",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            closest("helloworld.Greter", &svcs),
            Some("helloworld.Greeter")
        );
        assert_eq!(closest("Greeter", &svcs), Some("helloworld.Greeter"));
        assert_eq!(closest("Echo", &svcs), Some("grpcdoc.echo.v1.Echo"));
        assert_eq!(closest("payments.Ledger", &svcs), None);
    }

    #[test]
    fn finds_methods_and_lists_them_when_missing() {
        let p = pool();
        let m = find_method(&p, "/grpcdoc.echo.v1.Echo/ServerStream").unwrap();
        assert!(m.is_server_streaming() && !m.is_client_streaming());
        let e = find_method(&p, "/grpcdoc.echo.v1.Echo/Nope").unwrap_err();
        assert!(e.contains("no method grpcdoc.echo.v1.Echo/Nope"), "{e}");
        assert!(e.contains("helloworld.Greeter/SayHello (unary)"), "{e}");
        assert!(
            e.contains("grpcdoc.echo.v1.Echo/BidiStream (bidi streaming)"),
            "{e}"
        );
    }
}
