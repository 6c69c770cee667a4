//! A scenario file as a tree of YAML nodes with their places (line,
//! column, and the characters they span): what the checks point at, so an
//! error's caret stands under the offending value.

use serde_saphyr::granit_parser::{Event, Parser};

/// A node and where it stands.
#[derive(Clone, Debug)]
pub struct Node {
    pub kind: Kind,
    /// 1-based line and column of its first character.
    pub at: (u32, u32),
    /// Character offsets: first, and one past the last.
    pub span: (usize, usize),
}

#[derive(Clone, Debug)]
pub enum Kind {
    Map(Vec<Entry>),
    Seq(Vec<Node>),
    Scalar(String),
    /// `*name`: checked where the anchor is defined.
    Alias,
}

#[derive(Clone, Debug)]
pub struct Entry {
    pub key: String,
    pub key_at: (u32, u32),
    pub key_start: usize,
    pub value: Node,
}

impl Node {
    /// The value of `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            Kind::Map(es) => es.iter().find(|e| e.key == key).map(|e| &e.value),
            _ => None,
        }
    }

    /// The node that starts at `at`, here or below.
    pub fn at(&self, at: (u32, u32)) -> Option<&Node> {
        if self.at == at {
            return Some(self);
        }
        match &self.kind {
            Kind::Map(es) => es.iter().find_map(|e| e.value.at(at)),
            Kind::Seq(items) => items.iter().find_map(|n| n.at(at)),
            _ => None,
        }
    }

    /// The first value of a key named `key`, here or below (depth first).
    pub fn find(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            Kind::Map(es) => es.iter().find_map(|e| {
                if e.key == key {
                    Some(&e.value)
                } else {
                    e.value.find(key)
                }
            }),
            Kind::Seq(items) => items.iter().find_map(|n| n.find(key)),
            _ => None,
        }
    }
}

/// Reads the first document of `text`; `None` when it is not YAML (the
/// deserializer then says why, and where).
pub fn read(text: &str) -> Option<Node> {
    let mut events = Parser::new_from_str(text).map(|r| {
        r.ok().map(|(e, span)| {
            let at = (span.start.line() as u32, span.start.col() as u32 + 1);
            (e, at, (span.start.index(), span.end.index()))
        })
    });
    loop {
        match events.next()?? {
            (Event::StreamStart | Event::DocumentStart(..), ..) => continue,
            first => return node(first, &mut events),
        }
    }
}

type Ev<'a> = (Event<'a>, (u32, u32), (usize, usize));

fn node<'a>(first: Ev<'a>, events: &mut impl Iterator<Item = Option<Ev<'a>>>) -> Option<Node> {
    let (e, at, span) = first;
    let mut n = Node {
        kind: Kind::Alias,
        at,
        span,
    };
    match e {
        Event::Scalar(v, ..) => n.kind = Kind::Scalar(v.into_owned()),
        Event::Alias(_) => {}
        Event::SequenceStart(..) => {
            let mut items = Vec::new();
            loop {
                let ev = events.next()??;
                if let Event::SequenceEnd = ev.0 {
                    n.span.1 = ev.2 .1;
                    break;
                }
                items.push(node(ev, events)?);
            }
            n.kind = Kind::Seq(items);
        }
        Event::MappingStart(..) => {
            let mut entries = Vec::new();
            loop {
                let ev = events.next()??;
                if let Event::MappingEnd = ev.0 {
                    n.span.1 = ev.2 .1;
                    break;
                }
                let (key_at, key_start) = (ev.1, ev.2 .0);
                let key = match node(ev, events)?.kind {
                    Kind::Scalar(k) => k,
                    _ => String::new(),
                };
                let value = node(events.next()??, events)?;
                entries.push(Entry {
                    key,
                    key_at,
                    key_start,
                    value,
                });
            }
            n.kind = Kind::Map(entries);
        }
        _ => return None,
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_know_their_line_and_column() {
        let t = read("name: x\nload: { rps: 0, concurrency: 5 }\nlist:\n  - a: 1\n").unwrap();
        let load = t.get("load").unwrap();
        assert_eq!(load.at, (2, 7));
        assert_eq!(load.get("rps").unwrap().at, (2, 14));
        assert_eq!(t.find("a").unwrap().at, (4, 8));
        assert!(matches!(t.get("list").unwrap().kind, Kind::Seq(_)));
    }
}
