//! Calling methods: codecs and call helpers shared by probes and load.

pub mod descriptors;
pub mod payload;
pub mod raw;

pub use crate::grpc::code_name;

/// A gRPC method as a request names it: service `pkg.Service` and method
/// `Method`, on the wire as the path `/pkg.Service/Method`. Checked once
/// where it is read; nothing after that splits strings.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MethodPath {
    service: String,
    method: String,
}

impl MethodPath {
    /// Parses `pkg.Service/Method`, `pkg.Service.Method` or
    /// `/pkg.Service/Method`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim().trim_start_matches('/');
        let (svc, method) = match t.split_once('/') {
            Some(x) => x,
            None => t
                .rsplit_once('.')
                .ok_or_else(|| format!("`{s}` is not a method; expected pkg.Service/Method"))?,
        };
        let ident = |x: &str| {
            !x.is_empty()
                && x.split('.').all(|p| {
                    !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                })
        };
        if !ident(svc) || !ident(method) || method.contains('.') {
            return Err(format!(
                "`{s}` is not a method; expected pkg.Service/Method"
            ));
        }
        Ok(Self {
            service: svc.to_string(),
            method: method.to_string(),
        })
    }

    /// `pkg.Service`.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// `Method`.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The request path, `/pkg.Service/Method`.
    pub fn path(&self) -> String {
        format!("/{}/{}", self.service, self.method)
    }
}

/// `pkg.Service/Method`, as users write it and reports show it.
impl std::fmt::Display for MethodPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.service, self.method)
    }
}

impl std::str::FromStr for MethodPath {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::parse(s)
    }
}

/// Parses `pkg.Service/Method`, `pkg.Service.Method` or `/pkg.Service/Method`
/// into the request path `/pkg.Service/Method`.
pub fn method_path(s: &str) -> Result<String, String> {
    MethodPath::parse(s).map(|m| m.path())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_paths() {
        assert_eq!(
            method_path("helloworld.Greeter/SayHello").unwrap(),
            "/helloworld.Greeter/SayHello"
        );
        assert_eq!(
            method_path("helloworld.Greeter.SayHello").unwrap(),
            "/helloworld.Greeter/SayHello"
        );
        assert_eq!(method_path("/a.B/C").unwrap(), "/a.B/C");
        let m = MethodPath::parse("pkg.v1.Svc.Do").unwrap();
        assert_eq!((m.service(), m.method()), ("pkg.v1.Svc", "Do"));
        assert_eq!(m.to_string(), "pkg.v1.Svc/Do");
        for bad in ["", "Greeter", "a.B/", "/C", "a b/C", "a.B/C.D"] {
            assert!(method_path(bad).is_err(), "{bad}");
        }
    }
}
