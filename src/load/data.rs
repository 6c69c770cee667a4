//! The request messages of a run. Fixed data (`-d JSON`, an array, a file)
//! is checked and encoded once; data that varies - placeholders in `-d`
//! ([`super::template`]), or `-d @FILE.jsonl` (one message a line, used in
//! turn) - is checked before the run (every line, every placeholder, a
//! sample of each template against the request type) and encoded per call.

use std::sync::Arc;

use bytes::Bytes;
use prost_reflect::MessageDescriptor;

use super::template::{Fill, Template};
use crate::rpc::payload::{self, PayloadError};

/// One message source of varying data.
#[derive(Clone, Debug)]
enum Item {
    Fixed(Bytes),
    Template { t: Template, origin: String },
}

/// What a call sends.
#[derive(Clone, Debug)]
pub(crate) enum Data {
    /// Framed messages, encoded once: used in turn by call (unary, server
    /// streaming) or all in order (a client stream's messages).
    Fixed(Arc<Vec<Bytes>>),
    /// Messages made per call, used as [`Data::Fixed`]'s are.
    Varying(Arc<Varying>),
}

#[derive(Debug)]
pub(crate) struct Varying {
    items: Vec<Item>,
    input: MessageDescriptor,
}

/// Why the data cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DataError {
    #[error(transparent)]
    Payload(#[from] PayloadError),
    #[error("{0}")]
    Template(String),
}

/// A JSONL file: one message a line.
fn is_lines(origin: &str) -> bool {
    origin.ends_with(".jsonl") || origin.ends_with(".ndjson")
}

/// A payload error on line `line` of its origin (serde_json counts the
/// line it was given as 1).
fn on_line(e: PayloadError, line: usize) -> PayloadError {
    match e {
        PayloadError::Json {
            origin,
            line: l,
            column,
            reason,
            message,
        } => PayloadError::Json {
            origin,
            line: l + line - 1,
            column,
            reason,
            message,
        },
        other => other,
    }
}

/// One template or fixed message, checked: a template is filled for call
/// 0 and must make exactly one message of the request type.
fn item(
    input: &MessageDescriptor,
    origin: &str,
    text: &str,
    line: usize,
) -> Result<Item, DataError> {
    let Some(t) = Template::parse_at(origin, text, line).map_err(DataError::Template)? else {
        let mut m = payload::encode(input, origin, text).map_err(|e| on_line(e, line))?;
        return match m.len() {
            1 => Ok(Item::Fixed(m.remove(0))),
            n => Err(DataError::Template(format!(
                "{origin}:{line}: a line of a JSONL file is one message (an object), not {n}"
            ))),
        };
    };
    let mut rng = fastrand::Rng::with_seed(0);
    let sample = t.render(&mut Fill {
        call: 0,
        worker: 0,
        rng: &mut rng,
    });
    let n = payload::encode(input, origin, &sample)
        .map_err(|e| {
            DataError::Template(format!(
                "{} (with the placeholders filled for the first call: {sample})",
                on_line(e, line)
            ))
        })?
        .len();
    if n != 1 {
        return Err(DataError::Template(format!(
            "{origin}:{line}: a template makes one message (an object), not {n}; for several, one a line: -d @FILE.jsonl"
        )));
    }
    Ok(Item::Template {
        t,
        origin: origin.to_string(),
    })
}

impl Data {
    /// The data of `text` (from `origin`: `-d`, a file, `data`) for
    /// requests of type `input`; empty text is one empty message.
    pub(crate) fn read(
        input: &MessageDescriptor,
        origin: &str,
        text: &str,
    ) -> Result<Self, DataError> {
        let varying = |items: Vec<Item>| {
            Self::Varying(Arc::new(Varying {
                items,
                input: input.clone(),
            }))
        };
        if is_lines(origin) {
            let items = text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
                .map(|(i, l)| item(input, origin, l, i + 1))
                .collect::<Result<Vec<_>, _>>()?;
            if items.is_empty() {
                return Err(DataError::Template(format!("{origin} has no message")));
            }
            if items.iter().all(|i| matches!(i, Item::Fixed(_))) {
                let fixed = items.into_iter().filter_map(|i| match i {
                    Item::Fixed(b) => Some(b),
                    Item::Template { .. } => None,
                });
                return Ok(Self::Fixed(Arc::new(fixed.collect())));
            }
            return Ok(varying(items));
        }
        if Template::parse(origin, text)
            .map_err(DataError::Template)?
            .is_some()
        {
            return Ok(varying(vec![item(input, origin, text, 1)?]));
        }
        Ok(Self::Fixed(Arc::new(payload::encode(input, origin, text)?)))
    }

    /// How many messages it cycles through.
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Fixed(m) => m.len(),
            Self::Varying(v) => v.items.len(),
        }
    }

    /// Message `i` of the cycle (a call number, or a message's place in a
    /// client stream), made for the call `f` describes; an error when
    /// varying data does not make a message of the request type.
    pub(crate) fn message(&self, i: u64, f: &mut Fill<'_>) -> Result<Bytes, String> {
        let n = self.len().max(1) as u64;
        let at = (i % n) as usize;
        match self {
            Self::Fixed(m) => m.get(at).cloned().ok_or_else(|| "no message".into()),
            Self::Varying(v) => match &v.items[at] {
                Item::Fixed(b) => Ok(b.clone()),
                Item::Template { t, origin } => {
                    let text = t.render(f);
                    let mut m = payload::encode(&v.input, origin, &text)
                        .map_err(|e| format!("the request data of call {}: {e}", f.call))?;
                    m.pop().ok_or_else(|| "no message".into())
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> MessageDescriptor {
        prost_reflect::DescriptorPool::decode(crate::pb::FILE_DESCRIPTOR_SET)
            .unwrap()
            .get_message_by_name("helloworld.HelloRequest")
            .unwrap()
    }

    fn name(b: &Bytes) -> String {
        use prost::Message;
        crate::pb::helloworld::HelloRequest::decode(&b[5..])
            .unwrap()
            .name
    }

    fn message(d: &Data, i: u64) -> Result<Bytes, String> {
        let mut rng = fastrand::Rng::with_seed(9);
        d.message(
            i,
            &mut Fill {
                call: i,
                worker: 1,
                rng: &mut rng,
            },
        )
    }

    #[test]
    fn lines_cycle_and_templates_fill() {
        let d = Data::read(
            &input(),
            "reqs.jsonl",
            "{\"name\": \"a\"}\n\n{\"name\": \"b{{call}}\"}\n",
        )
        .unwrap();
        assert_eq!(d.len(), 2);
        let names: Vec<String> = (0..4).map(|i| name(&message(&d, i).unwrap())).collect();
        assert_eq!(names, ["a", "b1", "a", "b3"]);
        let fixed = Data::read(&input(), "-d", r#"[{"name": "x"}, {"name": "y"}]"#).unwrap();
        assert!(matches!(fixed, Data::Fixed(_)));
        assert_eq!(name(&message(&fixed, 3).unwrap()), "y");
    }

    #[test]
    fn mistakes_are_found_before_the_run() {
        let e = Data::read(&input(), "reqs.jsonl", "{\"name\": \"a\"}\n{\"nam\": 1}\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("reqs.jsonl:2:"), "{e}");
        let e = Data::read(&input(), "-d", r#"{"name": {{call}}}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("with the placeholders filled for the first call"),
            "{e}"
        );
        let e = Data::read(&input(), "-d", r#"[{"name": "{{call}}"}, {"name": "x"}]"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("a template makes one message"), "{e}");
        let e = Data::read(&input(), "r.jsonl", "{\"name\": \"{{cal}}\"}")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("r.jsonl:1:11: unknown placeholder"), "{e}");
    }
}
