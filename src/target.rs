//! Target syntax: what the user dials.
//!
//! - `host:port`, `[v6]:port`: every A/AAAA record of host, resolved again
//!   when a connection is lost.
//! - `http://host:port` (plaintext), `https://host[:port]` (TLS, default 443).
//! - `dns:///host:port` (also `dns://authority/host:port`): as `host:port`, and
//!   re-resolved every `--resolve-interval`, as grpc's DNS resolver does.
//! - `a:1,b:2`: a fixed list of addresses.
//! - `unix:/path`, `unix:///path`: a Unix domain socket.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoints {
    /// Names or addresses, resolved when needed.
    Hosts(Vec<HostPort>),
    /// Like `Hosts`, and re-resolved periodically (`dns:///`).
    Dns(Vec<HostPort>),
    Unix(PathBuf),
    /// A name service in the process (a scenario's): asked like DNS, on a
    /// timer and whenever a connection is lost.
    Named(NameService),
}

/// The addresses a name currently resolves to, shared by whoever changes
/// them (a scenario scaling its backends) and the channels that ask.
#[derive(Clone, Debug, Default)]
pub struct NameService(std::sync::Arc<std::sync::RwLock<Vec<SocketAddr>>>);

impl NameService {
    pub fn new(addrs: Vec<SocketAddr>) -> Self {
        Self(std::sync::Arc::new(std::sync::RwLock::new(addrs)))
    }

    pub fn set(&self, addrs: Vec<SocketAddr>) {
        if let Ok(mut a) = self.0.write() {
            *a = addrs;
        }
    }

    pub fn get(&self) -> Vec<SocketAddr> {
        self.0.read().map(|a| a.clone()).unwrap_or_default()
    }
}

impl PartialEq for NameService {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for NameService {}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// What the user wrote.
    pub text: String,
    pub tls: bool,
    /// `:authority` of requests and the default TLS server name.
    pub authority: String,
    pub endpoints: Endpoints,
}

/// One address a subchannel connects to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Address {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp(a) => a.fmt(f),
            Address::Unix(p) => match p.to_str().and_then(|p| p.strip_prefix('\0')) {
                Some(name) => write!(f, "unix-abstract:{name}"),
                None => write!(f, "unix:{}", p.display()),
            },
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid target `{target}`: {reason}; expected HOST:PORT, http://HOST:PORT, https://HOST[:PORT], dns:[//AUTHORITY/]HOST[:PORT], ipv4:ADDR[:PORT], ipv6:[ADDR]:PORT, A:1,B:2, unix:PATH or unix-abstract:NAME")]
pub struct TargetError {
    pub target: String,
    pub reason: String,
}

fn host_port(s: &str, default_port: Option<u16>) -> Result<HostPort, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("an address is empty".into());
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("`{s}` opens [ but does not close it"))?;
        match after.strip_prefix(':') {
            Some(p) => (host, Some(p)),
            None if after.is_empty() => (host, None),
            None => return Err(format!("unexpected `{after}` after `[{host}]`")),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => {
                return Err(format!("IPv6 address `{s}` needs brackets: [ADDR]:PORT"))
            }
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err(format!("no host in `{s}`"));
    }
    if host.contains('/') {
        return Err(format!("`{host}` is not a host name"));
    }
    let port = match (port, default_port) {
        (Some(p), _) => p
            .parse::<u16>()
            .map_err(|_| format!("`{p}` is not a port (0-65535)"))?,
        (None, Some(d)) => d,
        (None, None) => return Err(format!("no port in `{s}`: add :PORT")),
    };
    Ok(HostPort {
        host: host.to_string(),
        port,
    })
}

impl Target {
    pub fn parse(text: &str) -> Result<Self, TargetError> {
        let err = |reason: String| TargetError {
            target: text.to_string(),
            reason,
        };
        let t = text.trim();
        let unix = |path: PathBuf| Target {
            text: text.to_string(),
            tls: false,
            authority: "localhost".into(),
            endpoints: Endpoints::Unix(path),
        };
        // gRPC's naming (doc/naming.md): unix:path, unix:///abs/path,
        // unix-abstract:name (a Linux abstract socket, kept as "\0name").
        if let Some(name) = t.strip_prefix("unix-abstract:") {
            if name.is_empty() {
                return Err(err("unix-abstract: needs a name".into()));
            }
            return Ok(unix(PathBuf::from(format!("\0{name}"))));
        }
        if let Some(path) = t.strip_prefix("unix:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(err("unix: needs a socket path (unix:/PATH)".into()));
            }
            return Ok(unix(PathBuf::from(path)));
        }
        // ipv4:ADDR[:PORT][,...] and ipv6:ADDR or ipv6:[ADDR]:PORT, port 443
        // by default.
        if let Some(list) = t.strip_prefix("ipv4:").or_else(|| t.strip_prefix("ipv6:")) {
            let v6 = t.starts_with("ipv6:");
            let hosts = list
                .split(',')
                .map(|a| {
                    let a = a.trim();
                    let hp = if v6 && !a.starts_with('[') {
                        host_port(&format!("[{a}]"), Some(443))?
                    } else {
                        host_port(a, Some(443))?
                    };
                    match hp.host.parse::<std::net::IpAddr>() {
                        Ok(ip) if ip.is_ipv6() == v6 => Ok(hp),
                        _ => Err(format!(
                            "`{}` is not an IPv{} address",
                            hp.host,
                            if v6 { 6 } else { 4 }
                        )),
                    }
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(err)?;
            return Ok(Target {
                text: text.to_string(),
                tls: false,
                authority: hosts[0].to_string(),
                endpoints: Endpoints::Hosts(hosts),
            });
        }
        let (tls, dns, rest, default_port) = if let Some(r) = t.strip_prefix("https://") {
            (true, false, r, Some(443))
        } else if let Some(r) = t.strip_prefix("http://") {
            (false, false, r, Some(80))
        } else if let Some(r) = t.strip_prefix("dns://") {
            // dns://[authority]/host[:port]: the DNS server authority is ignored.
            let (_, r) = r
                .split_once('/')
                .ok_or_else(|| err("dns targets are dns:///HOST:PORT".into()))?;
            (false, true, r, Some(443))
        } else if let Some(r) = t.strip_prefix("dns:") {
            (false, true, r, Some(443))
        } else if let Some(scheme) = t.split_once("://").map(|(s, _)| s) {
            return Err(err(format!("unknown scheme `{scheme}`")));
        } else {
            (false, false, t, None)
        };
        let rest = rest.trim_end_matches('/');
        let hosts = rest
            .split(',')
            .map(|hp| host_port(hp, default_port))
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?;
        let authority = hosts[0].to_string();
        Ok(Target {
            text: text.to_string(),
            tls,
            authority,
            endpoints: if dns {
                Endpoints::Dns(hosts)
            } else {
                Endpoints::Hosts(hosts)
            },
        })
    }

    /// A plaintext target that asks `names` for its addresses; requests
    /// carry `authority`.
    pub fn named(names: NameService, authority: &str) -> Self {
        Target {
            text: authority.to_string(),
            tls: false,
            authority: authority.to_string(),
            endpoints: Endpoints::Named(names),
        }
    }

    /// The host to check a TLS certificate against.
    pub fn server_name(&self) -> &str {
        match &self.endpoints {
            Endpoints::Hosts(h) | Endpoints::Dns(h) => h[0].host.as_str(),
            Endpoints::Unix(_) | Endpoints::Named(_) => "localhost",
        }
    }

    /// Whether the address list should be resolved again on a timer.
    pub fn periodic_resolution(&self) -> bool {
        matches!(self.endpoints, Endpoints::Dns(_) | Endpoints::Named(_))
    }

    /// Resolves every name to all its addresses (deduplicated, in order).
    pub async fn resolve(&self) -> Result<Vec<Address>, String> {
        let hosts = match &self.endpoints {
            Endpoints::Unix(p) => return Ok(vec![Address::Unix(p.clone())]),
            Endpoints::Named(n) => {
                let a = n.get();
                if a.is_empty() {
                    return Err("the name service has no address for this name".into());
                }
                return Ok(a.into_iter().map(Address::Tcp).collect());
            }
            Endpoints::Hosts(h) | Endpoints::Dns(h) => h,
        };
        let mut out = Vec::new();
        let mut errors = Vec::new();
        for hp in hosts {
            match tokio::net::lookup_host((hp.host.as_str(), hp.port)).await {
                Ok(addrs) => {
                    for a in addrs {
                        let a = Address::Tcp(a);
                        if !out.contains(&a) {
                            out.push(a);
                        }
                    }
                }
                Err(e) => errors.push(format!("cannot resolve {}: {e}", hp.host)),
            }
        }
        if out.is_empty() {
            return Err(errors.join("; "));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(t: &Target) -> Vec<String> {
        match &t.endpoints {
            Endpoints::Hosts(h) | Endpoints::Dns(h) => h.iter().map(|h| h.to_string()).collect(),
            Endpoints::Unix(p) => vec![p.display().to_string()],
            Endpoints::Named(n) => n.get().iter().map(|a| a.to_string()).collect(),
        }
    }

    #[tokio::test]
    async fn a_name_service_answers_with_what_it_holds_now() {
        let names = NameService::new(vec!["127.0.0.1:1".parse().unwrap()]);
        let t = Target::named(names.clone(), "127.0.0.1:1");
        assert!(t.periodic_resolution());
        assert_eq!(hosts(&t), ["127.0.0.1:1"]);
        names.set(vec![
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
        ]);
        let got = t.resolve().await.unwrap();
        assert_eq!(got.len(), 2);
        names.set(vec![]);
        assert!(t.resolve().await.is_err());
    }

    #[test]
    fn forms() {
        let t = Target::parse("127.0.0.1:50051").unwrap();
        assert!(!t.tls && !t.periodic_resolution());
        assert_eq!(hosts(&t), ["127.0.0.1:50051"]);
        assert_eq!(t.authority, "127.0.0.1:50051");

        let t = Target::parse("https://api.example.com").unwrap();
        assert!(t.tls);
        assert_eq!(hosts(&t), ["api.example.com:443"]);
        assert_eq!(t.server_name(), "api.example.com");

        let t = Target::parse("dns:///svc.local:9000").unwrap();
        assert!(t.periodic_resolution());
        assert_eq!(hosts(&t), ["svc.local:9000"]);
        assert!(Target::parse("dns://8.8.8.8/svc:1")
            .unwrap()
            .periodic_resolution());

        let t = Target::parse("127.0.0.1:1,[::1]:2,localhost:3").unwrap();
        assert_eq!(hosts(&t), ["127.0.0.1:1", "[::1]:2", "localhost:3"]);

        let t = Target::parse("unix:///tmp/s.sock").unwrap();
        assert_eq!(t.endpoints, Endpoints::Unix("/tmp/s.sock".into()));
        assert!(Target::parse("unix:/tmp/s.sock").is_ok());
    }

    /// Every form of gRPC's naming doc.
    #[test]
    fn grpc_naming_forms() {
        let t = Target::parse("dns:127.0.0.1:50051").unwrap();
        assert!(t.periodic_resolution());
        assert_eq!(hosts(&t), ["127.0.0.1:50051"]);
        assert_eq!(
            hosts(&Target::parse("dns:svc.local").unwrap()),
            ["svc.local:443"]
        );
        assert_eq!(
            hosts(&Target::parse("dns://8.8.8.8/svc.local").unwrap()),
            ["svc.local:443"]
        );
        assert_eq!(
            hosts(&Target::parse("ipv4:10.0.0.1:5,10.0.0.2").unwrap()),
            ["10.0.0.1:5", "10.0.0.2:443"]
        );
        assert_eq!(hosts(&Target::parse("ipv6:[::1]:5").unwrap()), ["[::1]:5"]);
        assert_eq!(hosts(&Target::parse("ipv6:::1").unwrap()), ["[::1]:443"]);
        assert!(Target::parse("ipv4:[::1]:5")
            .unwrap_err()
            .to_string()
            .contains("not an IPv4"));
        assert_eq!(
            Target::parse("unix:relative.sock").unwrap().endpoints,
            Endpoints::Unix("relative.sock".into())
        );
        let t = Target::parse("unix-abstract:grpcdoc").unwrap();
        assert_eq!(t.endpoints, Endpoints::Unix("\0grpcdoc".into()));
        assert_eq!(
            Address::Unix("\0grpcdoc".into()).to_string(),
            "unix-abstract:grpcdoc"
        );
    }

    #[test]
    fn errors_say_what_is_wrong() {
        for (t, says) in [
            ("localhost", "no port"),
            ("localhost:http", "not a port"),
            ("::1:50051", "needs brackets"),
            ("ftp://x:1", "unknown scheme `ftp`"),
            ("unix:", "needs a socket path"),
            ("a:1,,b:2", "empty"),
            ("[::1:5", "does not close"),
            (":50051", "no host"),
        ] {
            let e = Target::parse(t).unwrap_err().to_string();
            assert!(e.contains(says), "{t}: {e}");
            assert!(e.contains("expected HOST:PORT"), "{e}");
        }
    }

    #[tokio::test]
    async fn resolves_all_addresses() {
        let t = Target::parse("127.0.0.1:5,127.0.0.1:5,[::1]:6").unwrap();
        let a = t.resolve().await.unwrap();
        assert_eq!(a.len(), 2);
        let e = Target::parse("no-such-host.invalid:1")
            .unwrap()
            .resolve()
            .await
            .unwrap_err();
        assert!(e.contains("cannot resolve no-such-host.invalid"), "{e}");
    }
}
