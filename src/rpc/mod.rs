//! Calling methods: codecs and call helpers shared by probes and load.

pub mod descriptors;
pub mod payload;
pub mod raw;

pub use crate::grpc::code_name;

/// Parses `pkg.Service/Method`, `pkg.Service.Method` or `/pkg.Service/Method`
/// into the request path `/pkg.Service/Method`.
pub fn method_path(s: &str) -> Result<String, String> {
    let t = s.trim().trim_start_matches('/');
    let (svc, method) = match t.split_once('/') {
        Some(x) => x,
        None => t
            .rsplit_once('.')
            .ok_or_else(|| format!("`{s}` is not a method; expected pkg.Service/Method"))?,
    };
    let ident = |x: &str| {
        !x.is_empty()
            && x.split('.')
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    };
    if !ident(svc) || !ident(method) || method.contains('.') {
        return Err(format!(
            "`{s}` is not a method; expected pkg.Service/Method"
        ));
    }
    Ok(format!("/{svc}/{method}"))
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
        for bad in ["", "Greeter", "a.B/", "/C", "a b/C", "a.B/C.D"] {
            assert!(method_path(bad).is_err(), "{bad}");
        }
    }
}
