//! Request payloads: `-d JSON` (inline, `@file` or `@-` for stdin), one
//! message or an array of them, checked against the method's input type
//! (errors name the line and column), encoded once and framed for gRPC.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor};
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};

#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("cannot read {origin}: {reason}")]
    Read { origin: String, reason: String },
    #[error("{origin}:{line}:{column}: {reason} (the request type is {message})")]
    Json {
        origin: String,
        line: usize,
        column: usize,
        reason: String,
        message: String,
    },
}

/// Where `-d` comes from and its text.
pub fn read_data(arg: &str) -> Result<(String, String), PayloadError> {
    match arg.strip_prefix('@') {
        Some("-") => {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map_err(|e| {
                PayloadError::Read {
                    origin: "stdin".into(),
                    reason: e.to_string(),
                }
            })?;
            Ok(("stdin".into(), s))
        }
        Some(path) => std::fs::read_to_string(path)
            .map(|s| (path.to_string(), s))
            .map_err(|e| PayloadError::Read {
                origin: path.to_string(),
                reason: e.to_string(),
            }),
        None => Ok(("-d".into(), arg.to_string())),
    }
}

/// One message (an object) or several (an array of objects).
struct OneOrMany(MessageDescriptor);

impl<'de> DeserializeSeed<'de> for OneOrMany {
    type Value = Vec<DynamicMessage>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for OneOrMany {
    type Value = Vec<DynamicMessage>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a JSON object for {} or an array of them",
            self.0.full_name()
        )
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let m = self
            .0
            .deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
        Ok(vec![m])
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(m) = seq.next_element_seed(self.0.clone())? {
            out.push(m);
        }
        Ok(out)
    }
}

/// The messages of `json` as gRPC length-prefixed frames, each encoded once:
/// one JSON object or an array of them. Empty text means one empty message.
pub fn encode(
    desc: &MessageDescriptor,
    origin: &str,
    json: &str,
) -> Result<Vec<Bytes>, PayloadError> {
    let messages = parse(desc, origin, json, false)?;
    Ok(messages.iter().map(|m| frame(&m.encode_to_vec())).collect())
}

/// The messages of `json` as grpcurl reads `-d`: JSON objects one after
/// another (whitespace between; each one message of a stream), or an
/// array of them. Empty text means one empty message.
pub fn messages(
    desc: &MessageDescriptor,
    origin: &str,
    json: &str,
) -> Result<Vec<DynamicMessage>, PayloadError> {
    parse(desc, origin, json, true)
}

/// One JSON value (an object or an array of them), or with `one_after_another`
/// several such values in a row; never no message.
fn parse(
    desc: &MessageDescriptor,
    origin: &str,
    json: &str,
    one_after_another: bool,
) -> Result<Vec<DynamicMessage>, PayloadError> {
    if json.trim().is_empty() {
        return Ok(vec![DynamicMessage::new(desc.clone())]);
    }
    let error = |line, column, reason| PayloadError::Json {
        origin: origin.to_string(),
        line,
        column,
        reason,
        message: desc.full_name().to_string(),
    };
    let err = |e: serde_json::Error| error(e.line(), e.column(), json_reason(&e));
    let mut de = serde_json::Deserializer::from_str(json);
    let mut out = Vec::new();
    loop {
        out.extend(OneOrMany(desc.clone()).deserialize(&mut de).map_err(err)?);
        if !one_after_another {
            de.end().map_err(err)?;
            break;
        }
        // Only whitespace left: the last message was read.
        if de.end().is_ok() {
            break;
        }
    }
    if out.is_empty() {
        return Err(error(1, 1, "the array has no message".into()));
    }
    Ok(out)
}

/// serde_json's message without its " at line L column C" (the caller
/// names the place as file:line:column).
pub fn json_reason(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// A gRPC length-prefixed message (uncompressed).
pub fn frame(msg: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(5 + msg.len());
    b.put_u8(0);
    b.put_u32(u32::try_from(msg.len()).unwrap_or(u32::MAX));
    b.put_slice(msg);
    b.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_reflect::DescriptorPool;

    fn echo_request() -> MessageDescriptor {
        DescriptorPool::decode(crate::pb::FILE_DESCRIPTOR_SET)
            .unwrap()
            .get_message_by_name("grpcdoc.echo.v1.EchoRequest")
            .unwrap()
    }

    #[test]
    fn one_or_many() {
        let d = echo_request();
        let one = encode(&d, "-d", r#"{"message": "hi", "delay": "1.5s"}"#).unwrap();
        assert_eq!(one.len(), 1);
        let msg = crate::pb::echo::EchoRequest::decode(&one[0][5..]).unwrap();
        assert_eq!(msg.message, "hi");
        assert_eq!(msg.delay.unwrap().seconds, 1);
        let many = encode(&d, "-d", r#"[{"message": "a"}, {"message": "b"}]"#).unwrap();
        assert_eq!(many.len(), 2);
        assert_eq!(encode(&d, "-d", "  ").unwrap()[0].len(), 5);
    }

    #[test]
    fn messages_follow_one_another_as_grpcurl_reads_them() {
        let d = echo_request();
        let m = messages(&d, "-d", "{\"message\": \"a\"}\n {\"message\": \"b\"}{}").unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(messages(&d, "-d", "[{}, {}]").unwrap().len(), 2);
        assert_eq!(messages(&d, "-d", "").unwrap().len(), 1);
        let e = messages(&d, "-d", "{} {\n \"nope\": 1}")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("-d:2:"), "{e}");
        assert!(messages(&d, "-d", "{} x").is_err());
    }

    #[test]
    fn errors_name_line_and_column() {
        let d = echo_request();
        let e = encode(&d, "req.json", "{\n  \"message\": \"a\",\n  \"nope\": 1\n}").unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("req.json:3:"), "{text}");
        assert!(text.contains("nope"), "{text}");
        assert!(text.contains("grpcdoc.echo.v1.EchoRequest"), "{text}");
        let e = encode(&d, "-d", r#"{"response_size": "lots"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("-d:1:"), "{e}");
        let e = encode(&d, "-d", r#"{"message": "a"} trailing"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("trailing"), "{e}");
        let e = encode(&d, "-d", "[]").unwrap_err().to_string();
        assert!(e.contains("no message"), "{e}");
    }
}
