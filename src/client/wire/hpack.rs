//! Request header blocks for the lean client, HPACK (RFC 7541) without
//! Huffman coding: a load run's request head is encoded once per connection
//! into two blocks, the first adding its fields to the server's dynamic
//! table and every later one naming them by index (a few bytes a call, as
//! nghttp2 and grpc-go send them); other requests go out as literals that
//! leave the table alone. Responses are decoded with `loona-hpack`.

use bytes::Bytes;

/// The fields of a request, pseudo-headers first, names in lower case.
#[derive(Clone, Debug)]
pub struct RequestHead {
    pub https: bool,
    pub authority: Bytes,
    pub path: Bytes,
    /// Regular fields: content-type, te, user-agent, metadata, grpc-timeout.
    pub fields: Vec<(Bytes, Bytes)>,
}

/// Static-table indices (RFC 7541 appendix A).
const AUTHORITY: usize = 1;
const METHOD_POST: usize = 3;
const PATH: usize = 4;
const SCHEME_HTTP: usize = 6;
const SCHEME_HTTPS: usize = 7;
const STATIC_LEN: usize = 61;

/// An integer with an `n`-bit prefix; `first` holds the pattern bits.
fn integer(out: &mut Vec<u8>, first: u8, n: u8, mut v: usize) {
    let max = (1usize << n) - 1;
    if v < max {
        out.push(first | v as u8);
        return;
    }
    out.push(first | max as u8);
    v -= max;
    while v >= 128 {
        out.push((v % 128) as u8 | 0x80);
        v /= 128;
    }
    out.push(v as u8);
}

fn string(out: &mut Vec<u8>, s: &[u8]) {
    integer(out, 0, 7, s.len());
    out.extend_from_slice(s);
}

/// Literal field without indexing, the name by static index or new.
fn literal(out: &mut Vec<u8>, name_index: usize, name: &[u8], value: &[u8]) {
    integer(out, 0x00, 4, name_index);
    if name_index == 0 {
        string(out, name);
    }
    string(out, value);
}

/// Literal field with incremental indexing (added to the dynamic table).
fn literal_indexed(out: &mut Vec<u8>, name_index: usize, name: &[u8], value: &[u8]) {
    integer(out, 0x40, 6, name_index);
    if name_index == 0 {
        string(out, name);
    }
    string(out, value);
}

/// Bytes a field takes in a dynamic table (RFC 7541 section 4.1).
fn entry_size(name: &[u8], value: &[u8]) -> usize {
    name.len() + value.len() + 32
}

impl RequestHead {
    /// Fields other than `:method` and `:scheme` (static entries), with the
    /// static index of their name where there is one.
    fn entries(&self) -> impl Iterator<Item = (usize, &[u8], &[u8])> {
        [
            (PATH, &b":path"[..], &self.path[..]),
            (AUTHORITY, b":authority", &self.authority[..]),
        ]
        .into_iter()
        .chain(self.fields.iter().map(|(n, v)| (0, &n[..], &v[..])))
    }

    fn prefix(&self, out: &mut Vec<u8>) {
        integer(out, 0x80, 7, METHOD_POST);
        let scheme = if self.https {
            SCHEME_HTTPS
        } else {
            SCHEME_HTTP
        };
        integer(out, 0x80, 7, scheme);
    }

    /// Dynamic-table bytes the head takes when indexed.
    pub fn table_size(&self) -> usize {
        self.entries().map(|(_, n, v)| entry_size(n, v)).sum()
    }

    /// The block that leaves the dynamic table alone.
    pub fn literal_block(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        self.prefix(&mut out);
        for (i, n, v) in self.entries() {
            literal(&mut out, i, n, v);
        }
        out
    }

    /// The first block (adds every field to an empty-of-ours dynamic table)
    /// and the block for every later request (indices only). Valid only
    /// while nothing else is added to the table.
    pub fn indexed_blocks(&self) -> (Vec<u8>, Vec<u8>) {
        let mut first = Vec::with_capacity(64);
        let mut then = Vec::with_capacity(16);
        self.prefix(&mut first);
        self.prefix(&mut then);
        let k = self.entries().count();
        for (j, (i, n, v)) in self.entries().enumerate() {
            literal_indexed(&mut first, i, n, v);
            // The newest entry is STATIC_LEN + 1; earlier ones follow it.
            integer(&mut then, 0x80, 7, STATIC_LEN + k - j);
        }
        (first, then)
    }
}

/// Headers of a generic request as literals (reflection, health checks).
pub fn request_block(
    https: bool,
    authority: &[u8],
    path: &[u8],
    fields: &http::HeaderMap,
) -> Vec<u8> {
    let head = RequestHead {
        https,
        authority: Bytes::copy_from_slice(authority),
        path: Bytes::copy_from_slice(path),
        fields: Vec::new(),
    };
    let mut out = head.literal_block();
    for (n, v) in fields {
        literal(&mut out, 0, n.as_str().as_bytes(), v.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head() -> RequestHead {
        RequestHead {
            https: false,
            authority: Bytes::from_static(b"127.0.0.1:50051"),
            path: Bytes::from_static(b"/helloworld.Greeter/SayHello"),
            fields: vec![
                (
                    Bytes::from_static(b"content-type"),
                    Bytes::from_static(b"application/grpc"),
                ),
                (Bytes::from_static(b"te"), Bytes::from_static(b"trailers")),
            ],
        }
    }

    fn decode(d: &mut loona_hpack::Decoder, block: &[u8]) -> Vec<(String, String)> {
        let mut got = Vec::new();
        d.decode_with_cb(block, |n, v| {
            got.push((
                String::from_utf8_lossy(&n).into_owned(),
                String::from_utf8_lossy(&v).into_owned(),
            ))
        })
        .expect("a valid block");
        got
    }

    #[test]
    fn indexed_blocks_decode_to_the_same_fields_as_literals() {
        let h = head();
        let want = vec![
            (":method".to_string(), "POST".to_string()),
            (":scheme".into(), "http".into()),
            (":path".into(), "/helloworld.Greeter/SayHello".into()),
            (":authority".into(), "127.0.0.1:50051".into()),
            ("content-type".into(), "application/grpc".into()),
            ("te".into(), "trailers".into()),
        ];
        let mut d = loona_hpack::Decoder::new();
        assert_eq!(decode(&mut d, &h.literal_block()), want);
        let (first, then) = h.indexed_blocks();
        assert_eq!(decode(&mut d, &first), want);
        for _ in 0..3 {
            assert_eq!(decode(&mut d, &then), want);
        }
        assert!(then.len() <= 6, "{then:?}");
        assert_eq!(
            h.table_size(),
            want[2..]
                .iter()
                .map(|(n, v)| n.len() + v.len() + 32)
                .sum::<usize>()
        );
    }

    #[test]
    fn long_values_use_continued_integers() {
        let mut h = head();
        h.fields
            .push((Bytes::from_static(b"x-big"), Bytes::from(vec![b'a'; 300])));
        let mut d = loona_hpack::Decoder::new();
        let got = decode(&mut d, &h.literal_block());
        assert_eq!(got.last().map(|(_, v)| v.len()), Some(300));
        let mut fields = http::HeaderMap::new();
        fields.insert(
            "grpc-accept-encoding",
            http::HeaderValue::from_static("identity"),
        );
        let got = decode(&mut d, &request_block(true, b"h:1", b"/a/b", &fields));
        assert_eq!(got[1], (":scheme".into(), "https".into()));
        assert_eq!(got[4], ("grpc-accept-encoding".into(), "identity".into()));
    }
}
