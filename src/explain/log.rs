//! A log as records: a line and the lines that continue it (a stack
//! trace's `at ...` and `Caused by:` lines, indented lines), read in
//! bounded memory; and the timestamp a record starts with.

use std::io::BufRead;
use std::sync::OnceLock;

use regex::Regex;

/// The longest record kept: a runaway stack trace is cut, not buffered.
const MAX_RECORD: usize = 64 * 1024;

/// Whether `line` continues the record before it.
fn continues(line: &str) -> bool {
    line.starts_with([' ', '\t'])
        || line.starts_with("Caused by:")
        || line.starts_with("at ")
        || line.starts_with("---")
        || line.starts_with("...")
        || line.starts_with("Traceback")
}

/// Records from a reader: each call to `next` returns one record (a line
/// and its continuation lines) and the number of lines it took.
pub struct Records<R> {
    reader: R,
    /// The line read ahead that starts the next record.
    pending: Option<String>,
    buf: Vec<u8>,
}

impl<R: BufRead> Records<R> {
    pub fn new(reader: R) -> Self {
        Self {
            reader,
            pending: None,
            buf: Vec::new(),
        }
    }

    fn line(&mut self) -> std::io::Result<Option<String>> {
        self.buf.clear();
        if self.reader.read_until(b'\n', &mut self.buf)? == 0 {
            return Ok(None);
        }
        let text = String::from_utf8_lossy(&self.buf);
        Ok(Some(text.trim_end_matches(['\n', '\r']).to_string()))
    }

    /// The next record and its line count; None at the end.
    pub fn next_record(&mut self) -> std::io::Result<Option<(String, u64)>> {
        let first = match self.pending.take() {
            Some(l) => l,
            None => match self.line()? {
                Some(l) => l,
                None => return Ok(None),
            },
        };
        // In a log whose records start with a time, a line without one
        // continues the record before it (an exception under its message).
        let timed = starts_with_time(&first);
        let mut record = first;
        let mut lines = 1u64;
        while let Some(l) = self.line()? {
            let more = continues(&l) || (timed && !l.trim().is_empty() && !starts_with_time(&l));
            if more && !record.is_empty() {
                lines += 1;
                if record.len() < MAX_RECORD {
                    record.push('\n');
                    record.push_str(&l);
                }
            } else {
                self.pending = Some(l);
                break;
            }
        }
        Ok(Some((record, lines)))
    }
}

/// Whether a line starts with a time in one of the shapes [`timestamp`]
/// reads (or is a JSON log line with a time field): a look at a few
/// bytes, for every line of a log.
pub fn starts_with_time(line: &str) -> bool {
    let b = line.trim_start_matches([' ', '[']).as_bytes();
    let d = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    let is = |i: usize, c: &[u8]| b.get(i).is_some_and(|x| c.contains(x));
    let iso = (0..4).all(d) && is(4, b"-/") && d(5) && d(6) && is(7, b"-/") && d(8) && d(9);
    let glog = is(0, b"IWEF") && (1..5).all(d) && is(5, b" ");
    let syslog = b.first().is_some_and(u8::is_ascii_uppercase)
        && b.get(1).is_some_and(u8::is_ascii_lowercase)
        && b.get(2).is_some_and(u8::is_ascii_lowercase)
        && is(3, b" ")
        && (is(4, b" ") || d(4))
        && d(5)
        && is(6, b" ");
    let json = b.first() == Some(&b'{')
        && [
            "\"ts\"",
            "\"time",
            "\"timestamp\"",
            "\"@timestamp\"",
            "\"t\":",
        ]
        .iter()
        .any(|k| line.contains(k));
    iso || glog || syslog || json
}

/// The timestamp a record carries, as written: at the start of the line
/// (ISO 8601, `2006/01/02 15:04:05`, glog's `I1202 10:00:01.123`, syslog's
/// `Dec  6 20:49:55`) or in a JSON log's `ts`/`time`/`timestamp` field.
pub fn timestamp(record: &str) -> Option<&str> {
    static START: OnceLock<Regex> = OnceLock::new();
    static FIELD: OnceLock<Regex> = OnceLock::new();
    let start = START.get_or_init(|| {
        Regex::new(
            r"^\s*\[?((?:\d{4}[-/]\d{2}[-/]\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)|(?:[IWEF]\d{4} \d{2}:\d{2}:\d{2}(?:\.\d+)?)|(?:[A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2}))",
        )
        .unwrap_or_else(|e| panic!("timestamp pattern: {e}"))
    });
    let field = FIELD.get_or_init(|| {
        Regex::new(
            r#""(?:ts|time|timestamp|@timestamp|t)"\s*:\s*"?([0-9][0-9T:.+\-Z ]{6,35}?)"?\s*[,}]"#,
        )
        .unwrap_or_else(|e| panic!("timestamp field pattern: {e}"))
    });
    let line = record.lines().next().unwrap_or(record);
    // Cheap looks first: every shape starts with a digit, a level letter,
    // a month or `[`; a JSON log line with `{`.
    let first = line.trim_start().chars().next()?;
    if first == '{' {
        return field
            .captures(line)
            .and_then(|c| c.get(1))
            .map(|m| m.as_str().trim());
    }
    if !(first.is_ascii_digit() || first.is_ascii_uppercase() || first == '[') {
        return None;
    }
    start
        .captures(line)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_traces_are_one_record() {
        let log = "\
2026-12-01 10:00:00 INFO start
2026-12-01 10:00:01 ERROR call failed
io.grpc.StatusRuntimeException: UNAVAILABLE: io exception
\tat io.grpc.stub.ClientCalls.toStatusRuntimeException(ClientCalls.java:262)
Caused by: java.net.ConnectException: Connection refused
\t... 12 more
2026-12-01 10:00:02 INFO next
";
        let mut r = Records::new(log.as_bytes());
        let mut got = Vec::new();
        while let Some((rec, n)) = r.next_record().unwrap() {
            got.push((rec, n));
        }
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[1].1, 5);
        assert!(got[1].0.contains("Caused by: java.net.ConnectException"));
        assert_eq!(got.iter().map(|g| g.1).sum::<u64>(), 7);
    }

    #[test]
    fn timestamps_in_common_shapes() {
        assert_eq!(
            timestamp("2026-12-01T10:00:01.123Z error x"),
            Some("2026-12-01T10:00:01.123Z")
        );
        assert_eq!(
            timestamp("2026/12/01 10:00:01 rpc error"),
            Some("2026/12/01 10:00:01")
        );
        assert_eq!(
            timestamp("I1202 10:00:01.123456 12 x.cc:1] y"),
            Some("I1202 10:00:01.123456")
        );
        assert_eq!(
            timestamp("Dec  6 20:49:55 host app: x"),
            Some("Dec  6 20:49:55")
        );
        assert_eq!(
            timestamp(r#"{"level":"error","ts":"2026-12-01T10:00:01.5Z","msg":"x"}"#),
            Some("2026-12-01T10:00:01.5Z")
        );
        assert_eq!(timestamp("no time here"), None);
    }
}
