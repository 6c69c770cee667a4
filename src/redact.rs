//! Secrets in metadata never reach an output: values of credential-bearing
//! keys (authorization, cookies, API keys, tokens) are replaced by
//! `[redacted]` wherever grpcdoc shows metadata, including its own error
//! messages and the lines of files it quotes.

/// Keys whose values are secrets, compared without case.
const SECRET_KEYS: [&str; 6] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "api-key",
];

/// Fragments that make any key a secret (`x-auth-token`, `client-secret`).
const SECRET_PARTS: [&str; 4] = ["token", "secret", "password", "passwd"];

pub const REDACTED: &str = "[redacted]";

/// Whether the value of metadata key `key` is a secret.
pub fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    SECRET_KEYS.contains(&k.as_str()) || SECRET_PARTS.iter().any(|p| k.contains(p))
}

/// A metadata value as grpcdoc shows it: `[redacted]` for a secret key.
pub fn value<'a>(key: &str, value: &'a str) -> &'a str {
    if is_secret(key) {
        REDACTED
    } else {
        value
    }
}

/// Redacts `key: value` and `key=value` pairs with a secret key inside free
/// text (an error message, a quoted line of a file): the value runs to the
/// end of the line or to a closing quote, bracket or comma.
pub fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let lower = s.to_ascii_lowercase();
    let mut i = 0;
    while i < s.len() {
        let hit = SECRET_KEYS
            .iter()
            .chain(SECRET_PARTS.iter())
            .filter_map(|k| lower[i..].find(k).map(|at| (i + at, k.len())))
            .min();
        let Some((at, len)) = hit else { break };
        // Extend over the rest of the key (`x-auth-token-v2`).
        let mut key_end = at + len;
        while key_end < s.len()
            && s.as_bytes()[key_end].is_ascii_alphanumeric()
                | matches!(s.as_bytes()[key_end], b'-' | b'_')
        {
            key_end += 1;
        }
        let rest = &s[key_end..];
        let sep = rest
            .char_indices()
            .take_while(|(_, c)| matches!(c, ' ' | '"' | '\'' | '\t'))
            .last()
            .map_or(0, |(j, c)| j + c.len_utf8());
        let after_quotes = &rest[sep..];
        if !(after_quotes.starts_with(':') || after_quotes.starts_with('=')) {
            out.push_str(&s[i..key_end]);
            i = key_end;
            continue;
        }
        let value_start = key_end + sep + 1;
        let value = &s[value_start..];
        let lead = value.len() - value.trim_start_matches([' ', '\t', '"', '\'']).len();
        let body = &value[lead..];
        // Already redacted text stays as it is.
        let end = if body.starts_with(REDACTED) {
            REDACTED.len()
        } else {
            body.find(['\n', '"', '\'', '}', ',', ']'])
                .unwrap_or(body.len())
        };
        out.push_str(&s[i..value_start + lead]);
        if end > 0 {
            out.push_str(REDACTED);
        }
        i = value_start + lead + end;
    }
    out.push_str(&s[i.min(s.len())..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        for key in [
            "Authorization",
            "x-api-key",
            "x-auth-token",
            "cookie",
            "client-secret",
        ] {
            assert_eq!(text(&format!("{key}: v")), format!("{key}: {REDACTED}"));
        }
        assert_eq!(text("x-delay-ms: 5"), "x-delay-ms: 5");
    }

    #[test]
    fn values_of_secret_keys() {
        assert_eq!(value("Authorization", "Bearer x"), REDACTED);
        assert_eq!(value("x-session-token", "t"), REDACTED);
        assert_eq!(value("x-delay-ms", "5"), "5");
    }

    #[test]
    fn free_text() {
        assert_eq!(
            text("invalid value 'authorization: Bearer s3cr3t\u{7f}' for '--metadata'"),
            "invalid value 'authorization: [redacted]' for '--metadata'"
        );
        assert_eq!(
            text("  metadata: { Authorization: \"Bearer abc\", x-delay-ms: \"5\" }"),
            "  metadata: { Authorization: \"[redacted]\", x-delay-ms: \"5\" }"
        );
        assert_eq!(text("cookie=a=b; c=d\nnext"), "cookie=[redacted]\nnext");
        assert_eq!(
            text("x-api-key:k1,other: 2"),
            "x-api-key:[redacted],other: 2"
        );
        // Words that only contain a key are left alone.
        assert_eq!(text("tokens are counted"), "tokens are counted");
        assert_eq!(text("the authorization failed"), "the authorization failed");
        assert_eq!(
            text("load: { metadata: { authorization: \"Bearer s3cr3t\" }, rps: -1 }"),
            "load: { metadata: { authorization: \"[redacted]\" }, rps: -1 }"
        );
        assert_eq!(
            text(
                "  load: { call: a.B/C, metadata: { authorization: \"Bearer s3cr3t\" }, rps: -1 }"
            ),
            "  load: { call: a.B/C, metadata: { authorization: \"[redacted]\" }, rps: -1 }"
        );
        let once = text("authorization: \"Bearer x\" ]");
        assert_eq!(text(&once), once, "idempotent");
        assert_eq!(text(""), "");
        assert_eq!(text("naïve ünïcode: ok"), "naïve ünïcode: ok");
    }
}
