//! Text as users paste it, made comparable: JSON escapes undone (log lines
//! from zap, logrus, pino, serilog; twice-escaped ones too), the text cut
//! into causes (`Caused by:`, .NET's ` ---> `), and each piece normalised
//! to lowercase words separated by single spaces, camelCase split
//! (`DeadlineExceeded` -> `deadline exceeded`, `RpcException` -> `rpc
//! exception`, `too_many_pings` -> `too many pings`).

/// Undoes JSON string escapes (`\"`, `\\`, `\n`, `\t`, `\uXXXX`) until none
/// are left, at most three rounds (a JSON log line holding a JSON string).
pub fn unescape(text: &str) -> String {
    let mut s = text.to_string();
    for _ in 0..3 {
        if !s.contains('\\') {
            break;
        }
        let next = unescape_once(&s);
        if next == s {
            break;
        }
        s = next;
    }
    s
}

fn unescape_once(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.peek().copied() {
            Some('n') => {
                chars.next();
                out.push('\n');
            }
            Some('r') | Some('t') => {
                chars.next();
                out.push(' ');
            }
            Some('"') | Some('\\') | Some('/') | Some('\'') => {
                out.push(chars.next().unwrap_or('\\'));
            }
            Some('u') => {
                chars.next();
                let hex: String = chars.clone().take(4).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(ch) if hex.len() == 4 => {
                        for _ in 0..4 {
                            chars.next();
                        }
                        out.push(ch);
                    }
                    _ => out.push_str("\\u"),
                }
            }
            _ => out.push('\\'),
        }
    }
    out
}

/// The pieces of a message, outermost first: a Java `Caused by:` chain, a
/// .NET inner exception (` ---> `), each piece one level deeper.
pub fn causes(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    loop {
        // Envoy's `transport failure reason:` says why its connection failed.
        let next = [
            find_ci(rest, "caused by:"),
            rest.find(" ---> "),
            find_ci(rest, "transport failure reason:"),
        ]
        .into_iter()
        .flatten()
        .min();
        match next {
            Some(at) if at > 0 => {
                out.push(&rest[..at]);
                let skip = marker_len(&rest[at..]);
                rest = &rest[(at + skip).min(rest.len())..];
            }
            Some(_) => {
                rest = &rest[marker_len(rest).min(rest.len())..];
            }
            None => {
                out.push(rest);
                return out;
            }
        }
    }
}

/// The length of the cause marker `text` starts with.
fn marker_len(text: &str) -> usize {
    if text.starts_with(" ---> ") {
        6
    } else if text
        .get(..10)
        .is_some_and(|t| t.eq_ignore_ascii_case("caused by:"))
    {
        10
    } else {
        "transport failure reason:".len()
    }
}

/// Where `needle` (lowercase ASCII) occurs in `hay`, any case.
fn find_ci(hay: &str, needle: &str) -> Option<usize> {
    let h = hay.as_bytes();
    let n = needle.as_bytes();
    if n.is_empty() || h.len() < n.len() {
        return None;
    }
    (0..=h.len() - n.len()).find(|&i| {
        h[i..i + n.len()]
            .iter()
            .zip(n)
            .all(|(a, b)| a.to_ascii_lowercase() == *b)
    })
}

/// Lowercase words separated by single spaces, with a space at each end,
/// so a phrase ` a b ` matches only on word boundaries. Letters and digits
/// make words; everything else separates them; camelCase is split where a
/// lowercase run of two or more meets an uppercase letter, and before the
/// last capital of an acronym followed by lowercase (`HTTPStatus`).
pub fn words(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push(' ');
    let chars: Vec<char> = text.chars().collect();
    // Length of the lowercase run just before, and whether a capital
    // started it (`Io` in `NativeIoException`).
    let mut lower_run = 0usize;
    let mut capitalised = false;
    for (i, &c) in chars.iter().enumerate() {
        if c.is_alphanumeric() {
            if c.is_uppercase() {
                let acronym_end = i >= 2
                    && chars[i - 1].is_uppercase()
                    && chars[i - 2].is_uppercase()
                    && chars.get(i + 1).is_some_and(|n| n.is_lowercase())
                    && chars.get(i + 2).is_some_and(|n| n.is_lowercase());
                let split = lower_run >= 2 || (lower_run >= 1 && capitalised) || acronym_end;
                if split && !out.ends_with(' ') {
                    out.push(' ');
                }
                lower_run = 0;
                capitalised = true;
            } else if c.is_lowercase() {
                if lower_run == 0 && !(i > 0 && chars[i - 1].is_uppercase()) {
                    capitalised = false;
                }
                lower_run += 1;
            } else {
                lower_run = 0;
                capitalised = false;
            }
            out.extend(c.to_lowercase());
        } else {
            lower_run = 0;
            capitalised = false;
            if !out.ends_with(' ') {
                out.push(' ');
            }
        }
    }
    if !out.ends_with(' ') {
        out.push(' ');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_status_become_the_same_words() {
        for s in [
            "DEADLINE_EXCEEDED",
            "DeadlineExceeded",
            "Deadline Exceeded",
            "deadline-exceeded",
            "StatusCode.DEADLINE_EXCEEDED",
            "code = DeadlineExceeded",
        ] {
            assert!(
                words(s).contains(" deadline exceeded "),
                "{s}: {}",
                words(s)
            );
        }
        assert_eq!(words("gRPC RpcException"), " grpc rpc exception ");
        assert_eq!(words("HTTPStatus code"), " http status code ");
        assert_eq!(words("too_many_pings"), " too many pings ");
        assert_eq!(
            words("ECONNREFUSED 127.0.0.1:50051"),
            " econnrefused 127 0 0 1 50051 "
        );
        assert_eq!(words("x509: certificate"), " x509 certificate ");
        assert_eq!(
            words("Errors$NativeIoException"),
            " errors native io exception "
        );
        assert_eq!(words("IOException iOS"), " io exception ios ");
        assert_eq!(words("any IP SANs, IDs"), " any ip sans ids ");
    }

    #[test]
    fn json_log_lines_are_unescaped() {
        let line = r#"{"msg":"rpc error: code = Unavailable desc = \"transport: Error while dialing\"\nCaused by: x","level":"error"}"#;
        let u = unescape(line);
        assert!(
            u.contains(r#"desc = "transport: Error while dialing""#),
            "{u}"
        );
        assert!(u.contains("\nCaused by: x"));
        // Twice escaped: a JSON string inside a JSON log line.
        assert_eq!(unescape(r#"a \\\"b\\\" c"#), r#"a "b" c"#);
        assert_eq!(unescape(r"\u003chtml\u003e"), "<html>");
        assert_eq!(unescape(r"C:\path"), r"C:\path");
    }

    #[test]
    fn a_cause_chain_is_cut_deepest_last() {
        let t = "io.grpc.StatusRuntimeException: UNAVAILABLE: io exception\n\tat x\nCaused by: io.netty...: Connection refused: /1.2.3.4:5\nCaused by: java.net.ConnectException: Connection refused";
        let c = causes(t);
        assert_eq!(c.len(), 3);
        assert!(c[0].contains("io exception"));
        assert!(c[2].contains("java.net.ConnectException"));
        let n = causes("HttpRequestException: x ---> IOException: y ---> SocketException: z");
        assert_eq!(n.len(), 3);
        assert!(n[2].contains("SocketException"));
        assert_eq!(causes("plain").len(), 1);
    }
}
