//! HTTP/2 header blocks read for the call tap (HPACK, RFC 7541): the
//! dynamic table kept in step with every block, and each field handed over
//! as it lies in the block - a string is Huffman-decoded only when the tap
//! asks for it, into a buffer it reuses. (A general decoder decodes every
//! Huffman string of every block, and the one at hand builds its code table
//! anew for each: that cost two thirds of the proxy's throughput.)

use std::collections::VecDeque;
use std::sync::OnceLock;

/// The static table (RFC 7541 Appendix A).
const STATIC: [(&[u8], &[u8]); 61] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

/// The Huffman code's lengths in bits, by symbol (RFC 7541 Appendix B; the
/// code is canonical: within a length, codes rise with the symbol).
const HUFFMAN_BITS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28,
    28, 28, 28, 28, 28, 28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5,
    5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6,
    6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23, 22,
    23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22,
    21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20,
    22, 22, 22, 23, 22, 22, 23, 26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19,
    21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22,
    22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, 30,
];

/// The canonical code's decoding tables: per length, the first code and
/// where its symbols start in `syms`.
struct Huffman {
    first: [u32; 31],
    count: [u32; 31],
    start: [usize; 31],
    syms: Vec<u16>,
}

fn huffman() -> &'static Huffman {
    static H: OnceLock<Huffman> = OnceLock::new();
    H.get_or_init(|| {
        let mut syms: Vec<u16> = (0..257).collect();
        syms.sort_by_key(|s| (HUFFMAN_BITS[*s as usize], *s));
        let mut h = Huffman {
            first: [0; 31],
            count: [0; 31],
            start: [0; 31],
            syms,
        };
        let (mut code, mut at) = (0u32, 0usize);
        for len in 1..=30 {
            let n = HUFFMAN_BITS
                .iter()
                .filter(|b| usize::from(**b) == len)
                .count();
            h.first[len] = code;
            h.count[len] = n as u32;
            h.start[len] = at;
            at += n;
            code = (code + n as u32) << 1;
        }
        h
    })
}

/// Decodes Huffman-coded `src` into `out` (cleared first).
fn huffman_decode(src: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
    let h = huffman();
    out.clear();
    let (mut code, mut len) = (0u32, 0usize);
    for byte in src {
        for i in (0..8).rev() {
            code = (code << 1) | u32::from((byte >> i) & 1);
            len += 1;
            if len > 30 {
                return Err(Error);
            }
            let k = code.wrapping_sub(h.first[len]);
            if k < h.count[len] {
                match h.syms[h.start[len] + k as usize] {
                    256 => return Err(Error), // EOS inside a string
                    s => out.push(s as u8),
                }
                code = 0;
                len = 0;
            }
        }
    }
    // What is left is padding: fewer than 8 bits, all ones.
    if len >= 8 || code != (1 << len) - 1 {
        return Err(Error);
    }
    Ok(())
}

/// A header block that does not decode.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Error;

/// A field's value as it lies in the block (or the table).
pub(crate) struct Str<'a> {
    bytes: &'a [u8],
    huffman: bool,
}

impl<'a> Str<'a> {
    /// The value, decoded into `buf` when it is Huffman-coded.
    pub fn get<'b>(&self, buf: &'b mut Vec<u8>) -> Option<&'b [u8]>
    where
        'a: 'b,
    {
        if !self.huffman {
            return Some(self.bytes);
        }
        huffman_decode(self.bytes, buf).ok()?;
        Some(&buf[..])
    }

    /// The bytes as sent and whether they are Huffman-coded: equal raw
    /// forms are equal values (a cache key).
    pub fn raw(&self) -> (&'a [u8], bool) {
        (self.bytes, self.huffman)
    }
}

/// A dynamic table entry: name and value.
type Entry = (Box<[u8]>, Box<[u8]>);

/// One direction's HPACK context.
pub(crate) struct Decoder {
    table: VecDeque<Entry>,
    size: usize,
    max: usize,
    /// A literal name, decoded.
    name: Vec<u8>,
}

impl Default for Decoder {
    fn default() -> Self {
        Self {
            table: VecDeque::new(),
            size: 0,
            max: 4096,
            name: Vec::new(),
        }
    }
}

/// An integer with an `n`-bit prefix at `buf[*at]`.
fn integer(buf: &[u8], at: &mut usize, n: u32) -> Result<usize, Error> {
    let mask = (1usize << n) - 1;
    let mut v = usize::from(*buf.get(*at).ok_or(Error)?) & mask;
    *at += 1;
    if v < mask {
        return Ok(v);
    }
    let mut shift = 0;
    loop {
        let b = *buf.get(*at).ok_or(Error)?;
        *at += 1;
        v = v
            .checked_add(usize::from(b & 0x7f).checked_shl(shift).ok_or(Error)?)
            .ok_or(Error)?;
        if b & 0x80 == 0 {
            return Ok(v);
        }
        shift += 7;
        if shift > 28 {
            return Err(Error);
        }
    }
}

/// A string literal at `buf[*at]`.
fn string<'a>(buf: &'a [u8], at: &mut usize) -> Result<Str<'a>, Error> {
    let huffman = buf.get(*at).ok_or(Error)? & 0x80 != 0;
    let len = integer(buf, at, 7)?;
    let bytes = buf.get(*at..*at + len).ok_or(Error)?;
    *at += len;
    Ok(Str { bytes, huffman })
}

impl Decoder {
    fn entry(&self, index: usize) -> Result<(&[u8], &[u8]), Error> {
        match index {
            0 => Err(Error),
            1..=61 => Ok(STATIC[index - 1]),
            i => self
                .table
                .get(i - 62)
                .map(|(n, v)| (&n[..], &v[..]))
                .ok_or(Error),
        }
    }

    fn evict(&mut self) {
        while self.size > self.max {
            match self.table.pop_back() {
                Some((n, v)) => self.size -= n.len() + v.len() + 32,
                None => break,
            }
        }
    }

    fn insert(&mut self, name: &[u8], value: &[u8]) {
        let size = name.len() + value.len() + 32;
        self.size += size;
        self.table.push_front((name.into(), value.into()));
        self.evict();
    }

    /// Reads a whole header block, calling `field` with each field's name
    /// and value.
    pub fn decode(
        &mut self,
        block: &[u8],
        mut field: impl FnMut(&[u8], Str<'_>),
    ) -> Result<(), Error> {
        let mut at = 0;
        let mut value_buf = Vec::new();
        while at < block.len() {
            let b = block[at];
            if b & 0x80 != 0 {
                let i = integer(block, &mut at, 7)?;
                let (n, v) = self.entry(i)?;
                field(
                    n,
                    Str {
                        bytes: v,
                        huffman: false,
                    },
                );
            } else if b & 0xe0 == 0x20 {
                self.max = integer(block, &mut at, 5)?;
                self.evict();
            } else {
                // A literal: with incremental indexing (01), else without
                // or never indexed (0000, 0001).
                let indexed = b & 0xc0 == 0x40;
                let i = integer(block, &mut at, if indexed { 6 } else { 4 })?;
                let mut name = std::mem::take(&mut self.name);
                if i == 0 {
                    let s = string(block, &mut at)?;
                    if s.huffman {
                        huffman_decode(s.bytes, &mut name)?;
                    } else {
                        name.clear();
                        name.extend_from_slice(s.bytes);
                    }
                } else {
                    let (n, _) = self.entry(i)?;
                    name.clear();
                    name.extend_from_slice(n);
                }
                let value = string(block, &mut at)?;
                if indexed {
                    let v = value.get(&mut value_buf).ok_or(Error)?.to_vec();
                    field(
                        &name,
                        Str {
                            bytes: &v,
                            huffman: false,
                        },
                    );
                    self.insert(&name, &v);
                } else {
                    field(&name, value);
                }
                self.name = name;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(d: &mut Decoder, block: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        let mut buf = Vec::new();
        d.decode(block, |n, v| {
            out.push((n.to_vec(), v.get(&mut buf).unwrap().to_vec()))
        })
        .unwrap();
        out
    }

    /// RFC 7541 C.4: requests with Huffman coding, three blocks in one
    /// context (the dynamic table in step).
    #[test]
    fn the_rfc_examples_decode() {
        let mut d = Decoder::default();
        let hex = |s: &str| -> Vec<u8> {
            let s: String = s.split_whitespace().collect();
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        };
        let one = fields(&mut d, &hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"));
        assert_eq!(
            one[3],
            (b":authority".to_vec(), b"www.example.com".to_vec())
        );
        let two = fields(&mut d, &hex("8286 84be 5886 a8eb 1064 9cbf"));
        assert_eq!(
            two[3],
            (b":authority".to_vec(), b"www.example.com".to_vec())
        );
        assert_eq!(two[4], (b"cache-control".to_vec(), b"no-cache".to_vec()));
        let three = fields(
            &mut d,
            &hex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"),
        );
        assert_eq!(three[1], (b":scheme".to_vec(), b"https".to_vec()));
        assert_eq!(three[2], (b":path".to_vec(), b"/index.html".to_vec()));
        assert_eq!(three[4], (b"custom-key".to_vec(), b"custom-value".to_vec()));
        assert_eq!(d.size, 164);
    }

    /// The same blocks decode to the same fields as a general decoder's,
    /// for every byte value Huffman-coded.
    #[test]
    fn agrees_with_a_general_decoder() {
        let mut general = loona_hpack::Decoder::new();
        let mut ours = Decoder::default();
        let mut enc = loona_hpack::Encoder::new();
        let all: Vec<u8> = (0..=255u8).collect();
        let block = enc.encode([(&b"x-all"[..], &all[..]), (b":path", b"/a.B/C")]);
        let want: Vec<(Vec<u8>, Vec<u8>)> = general.decode(&block).unwrap();
        assert_eq!(fields(&mut ours, &block), want);
        // Huffman: every symbol, coded by the canonical code.
        let h = huffman();
        let mut bits: Vec<u8> = Vec::new();
        for (s, bits_of) in HUFFMAN_BITS.iter().enumerate().take(256) {
            let len = *bits_of as usize;
            let pos = h.syms[h.start[len]..h.start[len] + h.count[len] as usize]
                .iter()
                .position(|x| *x as usize == s)
                .unwrap();
            let code = h.first[len] + pos as u32;
            bits.extend((0..len).rev().map(|i| ((code >> i) & 1) as u8));
        }
        while !bits.len().is_multiple_of(8) {
            bits.push(1);
        }
        let bytes: Vec<u8> = bits
            .chunks(8)
            .map(|c| c.iter().fold(0, |a, b| (a << 1) | b))
            .collect();
        let mut out = Vec::new();
        huffman_decode(&bytes, &mut out).unwrap();
        assert_eq!(out, all);
        let theirs = loona_hpack::huffman::HuffmanDecoder::new()
            .decode(&bytes)
            .unwrap();
        assert_eq!(theirs, all);
    }
}
