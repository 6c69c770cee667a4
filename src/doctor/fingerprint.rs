//! Who answers the connection: the HTTP/2 implementations known by the
//! SETTINGS they send first (each captured on loopback from the real
//! server, see below), and the evidence that a proxy answers for the
//! gRPC server.

use std::collections::BTreeMap;

use super::model::{Intermediary, Setup};

/// A known first SETTINGS frame: every parameter, exactly.
struct Known {
    name: &'static str,
    /// A gRPC server (true) or an HTTP proxy (false).
    grpc: bool,
    settings: &'static [(&'static str, u32)],
}

/// Captured with tcpdump on loopback and decoded with tshark, from the
/// servers of `../shared/peers` and grpcdoc's own.
static KNOWN: &[Known] = &[
    Known {
        name: "grpc-go",
        grpc: true,
        settings: &[("max_frame_size", 16_384)],
    },
    Known {
        name: "gRPC C-core",
        grpc: true,
        settings: &[
            ("0xfe03", 1),
            ("initial_window_size", 4_194_304),
            ("max_frame_size", 4_194_304),
            ("max_header_list_size", 16_384),
        ],
    },
    Known {
        name: "grpcdoc serve",
        grpc: true,
        settings: &[
            ("initial_window_size", 1_048_576),
            ("max_frame_size", 16_384),
            ("max_header_list_size", 16_384),
        ],
    },
    Known {
        name: "nginx",
        grpc: false,
        settings: &[
            ("initial_window_size", 65_536),
            ("max_concurrent_streams", 128),
            ("max_frame_size", 16_777_215),
        ],
    },
    Known {
        name: "HAProxy",
        grpc: false,
        settings: &[
            ("enable_connect_protocol", 1),
            ("max_concurrent_streams", 100),
        ],
    },
];

fn known(settings: &BTreeMap<String, u32>) -> Option<&'static Known> {
    KNOWN.iter().find(|k| {
        k.settings.len() == settings.len()
            && k.settings.iter().all(|(n, v)| settings.get(*n) == Some(v))
    })
}

/// The implementation whose first SETTINGS these are, if known.
pub fn settings_like(settings: &BTreeMap<String, u32>) -> Option<&'static str> {
    known(settings).map(|k| k.name)
}

/// Proxies known by their `server` header.
fn proxy_by_header(server: &str) -> Option<&'static str> {
    let s = server.to_ascii_lowercase();
    [
        ("nginx", "nginx"),
        ("envoy", "envoy"),
        ("haproxy", "HAProxy"),
        ("traefik", "Traefik"),
        ("caddy", "Caddy"),
        ("istio", "Istio (envoy)"),
        ("linkerd", "Linkerd"),
        ("awselb", "AWS ELB"),
        ("google frontend", "Google Front End"),
        ("gfe", "Google Front End"),
        ("cloudflare", "Cloudflare"),
    ]
    .iter()
    .find(|(k, _)| s.contains(k))
    .map(|(_, n)| *n)
}

/// Weighs the evidence: strong evidence alone, or two weak ones, say a
/// proxy answers for the server.
pub fn assess(s: &Setup) -> Intermediary {
    let mut strong = Vec::new();
    let mut weak = Vec::new();
    let mut kind = None;
    if let Some(server) = &s.server_header {
        match proxy_by_header(server) {
            Some(p) => {
                kind = Some(p.to_string());
                strong.push(format!("responses carry `server: {server}`"));
            }
            // grpc-go and C-core send no `server` header.
            None => weak.push(format!(
                "responses carry `server: {server}` (gRPC servers send none)"
            )),
        }
    }
    if let Some(k) = known(&s.settings) {
        if k.grpc {
            // Evidence against an HTTP/2 proxy; said in the summary.
        } else {
            kind.get_or_insert_with(|| k.name.to_string());
            strong.push(format!(
                "the server's SETTINGS are {}'s ({})",
                k.name,
                settings_text(&s.settings)
            ));
        }
    }
    if let Some(u) = &s.unknown_method {
        if u.starts_with("HTTP ") {
            strong.push(format!(
                "an unknown method got {u}: an HTTP hop answered, not a gRPC server"
            ));
        }
    }
    if let (Some(p), Some(c)) = (s.ping_rtt_ms, s.call_rtt_ms) {
        if c > 5.0 * p && c - p > 1.0 {
            weak.push(format!(
                "a PING is answered in {p:.2} ms, a call in {c:.2} ms: PINGs are answered nearer than calls"
            ));
        }
    }
    if let (Some(p), Some(t)) = (s.ping_rtt_ms, s.timing.tcp_connect_ms) {
        if p > 3.0 * t && p - t > 1.0 {
            weak.push(format!(
                "TCP connects in {t:.2} ms, a PING takes {p:.2} ms: TCP is answered nearer than HTTP/2 (an L4 proxy)"
            ));
        }
    }
    let proxy = !strong.is_empty() || weak.len() >= 2;
    let summary = if proxy {
        format!(
            "a proxy answers for the server{}: the policy measured is the proxy's where it answers (PINGs, idle), the server's behind it is not visible",
            kind.as_deref().map(|k| format!(" ({k})")).unwrap_or_default()
        )
    } else if let Some(k) = known(&s.settings).filter(|k| k.grpc) {
        format!(
            "no sign of a proxy: the HTTP/2 peer sends {}'s SETTINGS",
            k.name
        )
    } else {
        "no sign of a proxy".to_string()
    };
    let mut evidence = strong;
    evidence.extend(weak);
    Intermediary {
        proxy,
        kind,
        summary,
        evidence,
    }
}

pub fn settings_text(s: &BTreeMap<String, u32>) -> String {
    if s.is_empty() {
        return "none".into();
    }
    s.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(p: &[(&str, u32)]) -> BTreeMap<String, u32> {
        p.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn settings_match_exactly() {
        assert_eq!(
            settings_like(&map(&[("max_frame_size", 16_384)])),
            Some("grpc-go")
        );
        assert_eq!(
            settings_like(&map(&[
                ("max_frame_size", 16_384),
                ("max_concurrent_streams", 100)
            ])),
            None
        );
    }

    #[test]
    fn a_proxy_header_alone_is_enough() {
        let s = Setup {
            server_header: Some("nginx/1.22.1".into()),
            ..Setup::default()
        };
        let i = assess(&s);
        assert!(i.proxy);
        assert_eq!(i.kind.as_deref(), Some("nginx"));
        let s = Setup {
            ping_rtt_ms: Some(0.1),
            call_rtt_ms: Some(0.3),
            ..Setup::default()
        };
        assert!(!assess(&s).proxy);
    }
}
