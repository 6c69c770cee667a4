//! `--expect 'PATH OP VALUE'`: checks on every response message of the
//! calls that end OK, e.g. `message == "hi"`, `count >= 3`,
//! `items[0].name contains x`, `id matches ^[0-9a-f-]{36}$`. PATH names
//! fields (the proto name or the JSON name) and list items; OP is `==`,
//! `!=`, `>`, `>=`, `<`, `<=`, `contains` or `matches` (a regular
//! expression); VALUE is JSON (`3`, `"a b"`, `true`) or a bare word. The
//! path is checked against the response type before the run. A call that
//! fails makes no check: it is counted as not made, never as passed.

use bytes::Bytes;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, SerializeOptions};
use serde_json::Value;

/// At most this many `--expect` (their results travel as bits).
pub const MAX_CHECKS: usize = 64;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Seg {
    Field(String),
    Index(usize),
}

#[derive(Clone, Debug)]
enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Contains,
    Matches(regex::Regex),
}

/// One `--expect`, as written (its path not yet checked against a type).
#[derive(Clone, Debug)]
pub struct Expect {
    pub text: String,
    path: Vec<Seg>,
    op: Op,
    value: Value,
}

const FORM: &str = "expected PATH OP VALUE, like `message == \"hi\"`; OP is ==, !=, >, >=, <, <=, contains or matches";

fn parse_path(p: &str, text: &str) -> Result<Vec<Seg>, String> {
    let p = p.trim().trim_start_matches("$.").trim_start_matches('.');
    let bad = || format!("`{p}` in `{text}` is not a path like message or items[0].name");
    let mut out = Vec::new();
    for part in p.split('.') {
        let (name, mut rest) = part.split_at(part.find('[').unwrap_or(part.len()));
        let ok = |c: char| c.is_ascii_alphanumeric() || c == '_';
        if name.is_empty() || !name.chars().all(ok) {
            return Err(bad());
        }
        out.push(Seg::Field(name.to_string()));
        while let Some(r) = rest.strip_prefix('[') {
            let (n, after) = r.split_once(']').ok_or_else(bad)?;
            out.push(Seg::Index(n.trim().parse().map_err(|_| bad())?));
            rest = after;
        }
        if !rest.is_empty() {
            return Err(bad());
        }
    }
    Ok(out)
}

impl Expect {
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        const OPS: [(&str, u8); 8] = [
            ("==", 0),
            ("!=", 1),
            (">=", 3),
            ("<=", 5),
            (">", 2),
            ("<", 4),
            (" contains ", 6),
            (" matches ", 7),
        ];
        let (at, sym, which) = OPS
            .iter()
            .filter_map(|(sym, w)| t.find(sym).map(|at| (at, *sym, *w)))
            .min_by_key(|(at, sym, _)| (*at, std::cmp::Reverse(sym.len())))
            .ok_or_else(|| format!("`{t}` has no comparison; {FORM}"))?;
        let (path, raw) = (&t[..at], t[at + sym.len()..].trim());
        if raw.is_empty() {
            return Err(format!("`{t}` has nothing to compare with; {FORM}"));
        }
        let value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
        let text_of = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
        let op = match which {
            0 => Op::Eq,
            1 => Op::Ne,
            2 => Op::Gt,
            3 => Op::Ge,
            4 => Op::Lt,
            5 => Op::Le,
            6 => Op::Contains,
            _ => Op::Matches(
                regex::Regex::new(&text_of(&value))
                    .map_err(|e| format!("`{raw}` in `{t}` is not a regular expression: {e}"))?,
            ),
        };
        if matches!(op, Op::Gt | Op::Ge | Op::Lt | Op::Le) && !value.is_number() {
            return Err(format!("`{raw}` in `{t}` is not a number to compare with"));
        }
        Ok(Self {
            text: t.to_string(),
            path: parse_path(path, t)?,
            op,
            value,
        })
    }

    /// The path with every field named by its proto name, checked against
    /// the response type `desc`.
    fn resolve(&self, desc: &MessageDescriptor) -> Result<Self, String> {
        let mut out = Vec::new();
        let mut msg = Some(desc.clone());
        let mut list: Option<FieldDescriptor> = None;
        for seg in &self.path {
            match seg {
                Seg::Index(i) => {
                    let Some(f) = list.take() else {
                        return Err(format!(
                            "`{}`: [{i}] follows a field that is not a list",
                            self.text
                        ));
                    };
                    msg = f.kind().as_message().cloned();
                    out.push(seg.clone());
                }
                Seg::Field(name) => {
                    let Some(m) = msg.take() else {
                        return Err(format!(
                            "`{}`: `{name}` follows a value that has no fields",
                            self.text
                        ));
                    };
                    let f = m
                        .get_field_by_name(name)
                        .or_else(|| m.get_field_by_json_name(name))
                        .ok_or_else(|| {
                            let fields: Vec<String> =
                                m.fields().map(|f| f.name().to_string()).collect();
                            format!(
                                "`{}`: `{name}` is not a field of {}; its fields: {}",
                                self.text,
                                m.full_name(),
                                fields.join(", ")
                            )
                        })?;
                    out.push(Seg::Field(f.name().to_string()));
                    if f.is_list() {
                        list = Some(f.clone());
                    } else if let Kind::Message(inner) = f.kind() {
                        msg = (!f.is_map()).then_some(inner);
                    }
                }
            }
        }
        Ok(Self {
            path: out,
            ..self.clone()
        })
    }

    fn holds(&self, v: &Value) -> bool {
        let mut cur = Some(v);
        for seg in &self.path {
            cur = match seg {
                Seg::Field(n) => cur.and_then(|c| c.get(n.as_str())),
                Seg::Index(i) => cur.and_then(|c| c.get(*i)),
            };
        }
        let Some(got) = cur else {
            return false;
        };
        let num = |v: &Value| v.as_f64().or_else(|| v.as_str()?.parse().ok());
        let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
        let equal = match (num(got), self.value.as_f64()) {
            (Some(a), Some(b)) => a == b,
            _ => got == &self.value || text(got) == text(&self.value),
        };
        match &self.op {
            Op::Eq => equal,
            Op::Ne => !equal,
            Op::Gt | Op::Ge | Op::Lt | Op::Le => {
                let (Some(a), Some(b)) = (num(got), num(&self.value)) else {
                    return false;
                };
                match self.op {
                    Op::Gt => a > b,
                    Op::Ge => a >= b,
                    Op::Lt => a < b,
                    _ => a <= b,
                }
            }
            Op::Contains => match got {
                Value::Array(items) => items
                    .iter()
                    .any(|i| i == &self.value || text(i) == text(&self.value)),
                other => text(other).contains(&text(&self.value)),
            },
            Op::Matches(re) => re.is_match(&text(got)),
        }
    }
}

/// A run's checks, resolved against its response type.
#[derive(Debug)]
pub(crate) struct Checks {
    list: Vec<Expect>,
    output: MessageDescriptor,
}

impl Checks {
    pub(crate) fn new(list: &[Expect], output: &MessageDescriptor) -> Result<Self, String> {
        if list.len() > MAX_CHECKS {
            return Err(format!("{} --expect; at most {MAX_CHECKS}", list.len()));
        }
        Ok(Self {
            list: list
                .iter()
                .map(|e| e.resolve(output))
                .collect::<Result<_, _>>()?,
            output: output.clone(),
        })
    }

    /// The checks on a call's response (its DATA, gRPC-framed): a bit per
    /// check that held on every message, and one per check that did not.
    /// A response with no message, or one that does not decode, fails
    /// every check.
    pub(crate) fn judge(&self, body: &[u8]) -> (u64, u64) {
        let all = if self.list.len() == MAX_CHECKS {
            u64::MAX
        } else {
            (1u64 << self.list.len()) - 1
        };
        let messages = frames(body);
        if messages.is_empty() {
            return (0, all);
        }
        let opts = SerializeOptions::new()
            .skip_default_fields(false)
            .use_proto_field_name(true)
            .stringify_64_bit_integers(false);
        let mut held = all;
        for m in messages {
            let json = DynamicMessage::decode(self.output.clone(), m)
                .ok()
                .and_then(|d| {
                    d.serialize_with_options(serde_json::value::Serializer, &opts)
                        .ok()
                });
            let Some(json) = json else {
                return (0, all);
            };
            for (i, e) in self.list.iter().enumerate() {
                if !e.holds(&json) {
                    held &= !(1 << i);
                }
            }
        }
        (held, all & !held)
    }
}

/// How many gRPC messages a body holds (what a counted call would say).
pub(crate) fn count(body: &[u8]) -> u64 {
    let mut c = crate::client::wire::MessageCounter::default();
    c.feed(body);
    c.count
}

/// The messages of a gRPC body (uncompressed ones; a compressed message
/// cannot be checked and ends the list empty).
fn frames(mut body: &[u8]) -> Vec<Bytes> {
    let mut out = Vec::new();
    while body.len() >= 5 {
        let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        if body[0] != 0 || body.len() < 5 + len {
            return Vec::new();
        }
        out.push(Bytes::copy_from_slice(&body[5..5 + len]));
        body = &body[5 + len..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn echo_response() -> MessageDescriptor {
        prost_reflect::DescriptorPool::decode(crate::pb::FILE_DESCRIPTOR_SET)
            .unwrap()
            .get_message_by_name("grpcdoc.echo.v1.EchoResponse")
            .unwrap()
    }

    fn body(messages: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for m in messages {
            let r = crate::pb::echo::EchoResponse {
                message: m.to_string(),
                ..Default::default()
            };
            out.extend_from_slice(&crate::rpc::payload::frame(&r.encode_to_vec()));
        }
        out
    }

    fn checks(exprs: &[&str]) -> Checks {
        let list: Vec<Expect> = exprs.iter().map(|e| Expect::parse(e).unwrap()).collect();
        Checks::new(&list, &echo_response()).unwrap()
    }

    #[test]
    fn checks_every_message() {
        let c = checks(&[
            r#"message == "hi""#,
            "message != bye",
            "message matches ^h",
            "message contains i",
            "message == hello",
        ]);
        assert_eq!(c.judge(&body(&["hi"])), (0b01111, 0b10000));
        // A stream: a check holds when it holds on every message.
        assert_eq!(c.judge(&body(&["hi", "ho"])), (0b00110, 0b11001));
        // No message, or one that does not decode: every check fails.
        assert_eq!(c.judge(&[]), (0, 0b11111));
        assert_eq!(c.judge(&[0, 0, 0, 0, 2, 0xff, 0xff]), (0, 0b11111));
    }

    #[test]
    fn numbers_compare_as_numbers() {
        let e = Expect::parse("n >= 3").unwrap();
        assert!(e.holds(&serde_json::json!({"n": 3})));
        assert!(
            e.holds(&serde_json::json!({"n": "12"})),
            "int64 as a string"
        );
        assert!(!e.holds(&serde_json::json!({"n": 2.5})));
        assert!(!e.holds(&serde_json::json!({})), "absent");
        let e = Expect::parse("items[1].id == 7").unwrap();
        assert!(e.holds(&serde_json::json!({"items": [{"id": 1}, {"id": 7}]})));
    }

    #[test]
    fn mistakes_are_found_before_the_run() {
        for (bad, says) in [
            ("message", "has no comparison"),
            ("message ==", "nothing to compare with"),
            ("message > fast", "not a number"),
            ("mess age == 1", "is not a path"),
            ("a[x] == 1", "is not a path"),
            ("message matches (", "not a regular expression"),
        ] {
            let e = Expect::parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        let list = [Expect::parse("mesage == hi").unwrap()];
        let e = Checks::new(&list, &echo_response()).unwrap_err();
        assert!(
            e.contains(
                "`mesage` is not a field of grpcdoc.echo.v1.EchoResponse; its fields: message"
            ),
            "{e}"
        );
        let list = [Expect::parse("message[0] == hi").unwrap()];
        assert!(Checks::new(&list, &echo_response())
            .unwrap_err()
            .contains("not a list"));
    }
}
