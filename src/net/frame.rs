//! The frame format carried inside box-stream: every message (a request or a response) is cut
//! into chunks of at most [`CHUNK_MAX`] bytes so that a large message never delays a small one.
//!
//! ```text
//! chunk = id: u32 BE ‖ flags: u8 ‖ len: u16 BE ‖ data (len ≤ 16384)
//! flags = priority (bits 0-1: 0 high, 1 normal, 2 background)
//!       | kind (bits 2-4: 0 head, 1 body data, 2 body end, 3 body error, 4 cancel)
//!       | FINAL (bit 5: last chunk of the head) | HAS_BODY (bit 6: on the last head chunk,
//!         a streamed body follows)
//! ```
//!
//! A message is its head (request: `path_len: u8 ‖ path ‖ payload`; response: `0 ‖ payload`
//! or `1 ‖ error text`), then, if announced, a body of data chunks ended by a body-end or
//! body-error chunk. A cancel chunk (client → server) abandons a request; the server answers a
//! cancel with a cancel chunk of its own when it had started sending the response, so that the
//! client forgets the unfinished response too.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::box_stream::{BoxStreamError, BoxStreamReader};

/// Largest data part of one chunk.
pub const CHUNK_MAX: usize = 16 * 1024;
/// Size of a chunk header.
pub const CHUNK_HEADER_LEN: usize = 7;
/// Largest head (request or response metadata) accepted; bodies are streamed instead.
pub const HEAD_MAX: usize = 32 * 1024 * 1024;

/// Scheduling class of a message: a higher class is always sent first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// Pings, layout and admin traffic.
    High = 0,
    /// Metadata on the path of API requests.
    Normal = 1,
    /// Sync, resync and offload.
    Background = 2,
}

impl Priority {
    fn from_bits(b: u8) -> Option<Self> {
        match b & PRIO_MASK {
            0 => Some(Self::High),
            1 => Some(Self::Normal),
            2 => Some(Self::Background),
            _ => None,
        }
    }
}

const PRIO_MASK: u8 = 0b11;
const KIND_SHIFT: u8 = 2;
const KIND_MASK: u8 = 0b111 << KIND_SHIFT;
const FLAG_FINAL: u8 = 1 << 5;
const FLAG_HAS_BODY: u8 = 1 << 6;

/// What a chunk carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkKind {
    /// Part of the head; `last` on its final part, `has_body` if a body follows.
    Head {
        last: bool,
        has_body: bool,
    },
    BodyData,
    BodyEnd,
    BodyError,
    Cancel,
}

/// One decoded chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    pub id: u32,
    pub prio: Priority,
    pub kind: ChunkKind,
    pub data: Bytes,
}

/// Protocol violations: any of them closes the connection.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error(transparent)]
    Stream(#[from] BoxStreamError),
    #[error("peer closed the connection")]
    Closed,
    #[error("invalid chunk header (flags {flags:#04x}, length {len})")]
    BadHeader { flags: u8, len: usize },
    #[error("message {id}: head larger than {HEAD_MAX} bytes")]
    HeadTooLarge { id: u32 },
    #[error("message {id}: {what}")]
    Sequence { id: u32, what: &'static str },
    #[error("too many concurrent messages on one connection (limit {limit})")]
    TooManyMessages { limit: usize },
    #[error("malformed message head: {0}")]
    BadHead(&'static str),
}

impl Chunk {
    /// Encodes header and data into one buffer.
    pub fn encode(&self) -> Vec<u8> {
        let mut flags = self.prio as u8;
        let kind: u8 = match self.kind {
            ChunkKind::Head { last, has_body } => {
                if last {
                    flags |= FLAG_FINAL;
                }
                if has_body {
                    flags |= FLAG_HAS_BODY;
                }
                0
            }
            ChunkKind::BodyData => 1,
            ChunkKind::BodyEnd => 2,
            ChunkKind::BodyError => 3,
            ChunkKind::Cancel => 4,
        };
        flags |= kind << KIND_SHIFT;
        let mut out = Vec::with_capacity(CHUNK_HEADER_LEN + self.data.len());
        out.put_u32(self.id);
        out.put_u8(flags);
        out.put_u16(self.data.len() as u16);
        out.extend_from_slice(&self.data);
        out
    }

    /// Decodes a chunk header; returns (id, prio, kind, data length).
    fn decode_header(mut h: &[u8]) -> Result<(u32, Priority, ChunkKind, usize), FrameError> {
        let id = h.get_u32();
        let flags = h.get_u8();
        let len = h.get_u16() as usize;
        let bad = || FrameError::BadHeader { flags, len };
        let prio = Priority::from_bits(flags).ok_or_else(bad)?;
        if len > CHUNK_MAX || flags & 0x80 != 0 {
            return Err(bad());
        }
        let is_head = (flags & KIND_MASK) >> KIND_SHIFT == 0;
        if !is_head && flags & (FLAG_FINAL | FLAG_HAS_BODY) != 0 {
            return Err(bad());
        }
        let kind = match (flags & KIND_MASK) >> KIND_SHIFT {
            0 => ChunkKind::Head {
                last: flags & FLAG_FINAL != 0,
                has_body: flags & FLAG_HAS_BODY != 0,
            },
            1 => ChunkKind::BodyData,
            2 => ChunkKind::BodyEnd,
            3 => ChunkKind::BodyError,
            4 => ChunkKind::Cancel,
            _ => return Err(bad()),
        };
        if matches!(
            kind,
            ChunkKind::Head {
                last: false,
                has_body: true
            }
        ) {
            return Err(bad());
        }
        Ok((id, prio, kind, len))
    }
}

/// Reads chunks from a box-stream, reassembling them across box boundaries.
pub struct ChunkReader<R> {
    inner: BoxStreamReader<R>,
    buf: BytesMut,
}

impl<R: tokio::io::AsyncRead + Unpin> ChunkReader<R> {
    pub fn new(inner: BoxStreamReader<R>) -> Self {
        Self {
            inner,
            buf: BytesMut::new(),
        }
    }

    async fn fill(&mut self, n: usize) -> Result<(), FrameError> {
        while self.buf.len() < n {
            match self.inner.recv().await? {
                Some(b) => self.buf.extend_from_slice(&b),
                None => return Err(FrameError::Closed),
            }
        }
        Ok(())
    }

    /// The next chunk; `Err(Closed)` on a clean goodbye.
    pub async fn next(&mut self) -> Result<Chunk, FrameError> {
        self.fill(CHUNK_HEADER_LEN).await?;
        let (id, prio, kind, len) = Chunk::decode_header(&self.buf[..CHUNK_HEADER_LEN])?;
        self.fill(CHUNK_HEADER_LEN + len).await?;
        self.buf.advance(CHUNK_HEADER_LEN);
        let data = self.buf.split_to(len).freeze();
        Ok(Chunk {
            id,
            prio,
            kind,
            data,
        })
    }
}

/// Encodes a request head: the endpoint path and the payload.
pub fn encode_request_head(path: &str, payload: &[u8]) -> Bytes {
    let p = path.as_bytes();
    let plen = p.len().min(255);
    let mut b = BytesMut::with_capacity(1 + plen + payload.len());
    b.put_u8(plen as u8);
    b.extend_from_slice(&p[..plen]);
    b.extend_from_slice(payload);
    b.freeze()
}

/// Decodes a request head into (path, payload).
pub fn decode_request_head(mut head: Bytes) -> Result<(String, Bytes), FrameError> {
    if head.is_empty() {
        return Err(FrameError::BadHead("empty request head"));
    }
    let plen = head.get_u8() as usize;
    if head.len() < plen {
        return Err(FrameError::BadHead("request path longer than the head"));
    }
    let path = head.split_to(plen);
    let path = String::from_utf8(path.to_vec())
        .map_err(|_| FrameError::BadHead("request path is not UTF-8"))?;
    Ok((path, head))
}

/// Encodes a response head: a payload, or an error text.
pub fn encode_response_head(res: &Result<Bytes, String>) -> Bytes {
    let mut b = BytesMut::new();
    match res {
        Ok(p) => {
            b.put_u8(0);
            b.extend_from_slice(p);
        }
        Err(e) => {
            b.put_u8(1);
            b.extend_from_slice(e.as_bytes());
        }
    }
    b.freeze()
}

/// Decodes a response head.
pub fn decode_response_head(mut head: Bytes) -> Result<Result<Bytes, String>, FrameError> {
    if head.is_empty() {
        return Err(FrameError::BadHead("empty response head"));
    }
    match head.get_u8() {
        0 => Ok(Ok(head)),
        1 => Ok(Err(String::from_utf8_lossy(&head).into_owned())),
        _ => Err(FrameError::BadHead("unknown response status")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_round_trip_all_kinds() {
        for kind in [
            ChunkKind::Head {
                last: false,
                has_body: false,
            },
            ChunkKind::Head {
                last: true,
                has_body: true,
            },
            ChunkKind::BodyData,
            ChunkKind::BodyEnd,
            ChunkKind::BodyError,
            ChunkKind::Cancel,
        ] {
            for prio in [Priority::High, Priority::Normal, Priority::Background] {
                let c = Chunk {
                    id: 0xdeadbeef,
                    prio,
                    kind,
                    data: Bytes::from_static(b"hello"),
                };
                let enc = c.encode();
                let (id, p, k, len) = Chunk::decode_header(&enc[..CHUNK_HEADER_LEN]).expect("ok");
                assert_eq!((id, p, k, len), (c.id, prio, kind, 5));
            }
        }
    }

    #[test]
    fn bad_headers_rejected() {
        // priority 3
        assert!(Chunk::decode_header(&[0, 0, 0, 1, 0b11, 0, 1]).is_err());
        // kind 7
        assert!(Chunk::decode_header(&[0, 0, 0, 1, 7 << 2, 0, 1]).is_err());
        // too long
        assert!(Chunk::decode_header(&[0, 0, 0, 1, 0, 0xff, 0xff]).is_err());
        // FINAL on a body chunk
        assert!(Chunk::decode_header(&[0, 0, 0, 1, (1 << 2) | FLAG_FINAL, 0, 1]).is_err());
    }

    #[test]
    fn heads_round_trip_and_reject_garbage() {
        let h = encode_request_head("garage/ping", b"xyz");
        let (p, d) = decode_request_head(h).expect("ok");
        assert_eq!((p.as_str(), &d[..]), ("garage/ping", &b"xyz"[..]));
        assert!(decode_request_head(Bytes::from_static(&[9, b'a'])).is_err());
        assert!(decode_request_head(Bytes::new()).is_err());
        let ok = decode_response_head(encode_response_head(&Ok(Bytes::from_static(b"r"))));
        assert_eq!(ok.expect("ok"), Ok(Bytes::from_static(b"r")));
        let err = decode_response_head(encode_response_head(&Err("bad".into())));
        assert_eq!(err.expect("ok"), Err("bad".to_string()));
        assert!(decode_response_head(Bytes::from_static(&[7])).is_err());
    }
}
