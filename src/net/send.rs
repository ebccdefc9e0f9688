//! The sending side of a connection: one task owns the box-stream writer and schedules the
//! chunks of all outgoing messages. A higher priority is always served first; messages of the
//! same priority take turns chunk by chunk. Streamed bodies are pumped by their own tasks into
//! small bounded channels, so a slow body source delays only its own message and a slow network
//! pushes back on the source (back-pressure).

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::{mpsc, Notify};

use super::box_stream::BoxStreamWriter;
use super::frame::{Chunk, ChunkKind, Priority, CHUNK_MAX};
use super::ByteStream;

/// Chunks buffered per streamed body between its pump and the writer.
const BODY_BUFFER_CHUNKS: usize = 4;

/// An outgoing message.
pub struct OutMessage {
    pub id: u32,
    pub prio: Priority,
    pub head: Bytes,
    pub body: Option<ByteStream>,
}

/// Instructions to the writer task.
pub enum SendCommand {
    Send(OutMessage),
    /// Stop sending message `id` (its peer no longer wants it). If part of it was sent already,
    /// a cancel chunk tells the peer to forget the unfinished message.
    Drop {
        id: u32,
    },
    /// Stop sending request `id` and tell the peer to abandon it.
    Cancel {
        id: u32,
    },
}

/// A message being sent.
struct Pending {
    id: u32,
    prio: Priority,
    head: Bytes,
    head_sent: bool,
    body: Option<mpsc::Receiver<Result<Bytes, String>>>,
    pump: Option<tokio::task::JoinHandle<()>>,
    control: bool,
    /// At least one chunk of the message was sent.
    started: bool,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(p) = self.pump.take() {
            p.abort();
        }
    }
}

/// What the next chunk of a message is, if it has one ready.
enum Next {
    Chunk(Chunk, bool),
    NotReady,
}

impl Pending {
    fn next_chunk(&mut self) -> Next {
        if self.control {
            let c = Chunk {
                id: self.id,
                prio: self.prio,
                kind: ChunkKind::Cancel,
                data: Bytes::new(),
            };
            return Next::Chunk(c, true);
        }
        if !self.head_sent {
            let n = self.head.len().min(CHUNK_MAX);
            let data = self.head.split_to(n);
            let last = self.head.is_empty();
            self.head_sent = last;
            let has_body = self.body.is_some();
            self.started = true;
            let c = Chunk {
                id: self.id,
                prio: self.prio,
                kind: ChunkKind::Head {
                    last,
                    has_body: last && has_body,
                },
                data,
            };
            return Next::Chunk(c, last && !has_body);
        }
        let Some(rx) = self.body.as_mut() else {
            return Next::NotReady;
        };
        let (kind, data, done) = match rx.try_recv() {
            Ok(Ok(data)) => (ChunkKind::BodyData, data, false),
            Ok(Err(e)) => (ChunkKind::BodyError, Bytes::from(e.into_bytes()), true),
            Err(mpsc::error::TryRecvError::Empty) => return Next::NotReady,
            Err(mpsc::error::TryRecvError::Disconnected) => {
                (ChunkKind::BodyEnd, Bytes::new(), true)
            }
        };
        Next::Chunk(
            Chunk {
                id: self.id,
                prio: self.prio,
                kind,
                data,
            },
            done,
        )
    }
}

/// Copies a body stream into a bounded channel in pieces of at most one chunk.
fn spawn_pump(
    mut body: ByteStream,
    tx: mpsc::Sender<Result<Bytes, String>>,
    notify: Arc<Notify>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(item) = body.next().await {
            match item {
                Ok(mut bytes) => {
                    while !bytes.is_empty() {
                        let piece = bytes.split_to(bytes.len().min(CHUNK_MAX));
                        if tx.send(Ok(piece)).await.is_err() {
                            return;
                        }
                        notify.notify_one();
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    notify.notify_one();
                    return;
                }
            }
        }
        drop(tx);
        notify.notify_one();
    })
}

/// Runs the writer until every command sender is dropped or the stream fails.
pub async fn run_writer<W: tokio::io::AsyncWrite + Unpin>(
    mut writer: BoxStreamWriter<W>,
    mut commands: mpsc::UnboundedReceiver<SendCommand>,
) {
    let notify = Arc::new(Notify::new());
    let mut queues: [VecDeque<Pending>; 3] = Default::default();
    let mut open = true;
    loop {
        // Take every command available without waiting.
        while open {
            match commands.try_recv() {
                Ok(cmd) => apply(cmd, &mut queues, &notify),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => open = false,
            }
        }
        if let Some(chunk) = pick_chunk(&mut queues) {
            if writer.send(&chunk.encode()).await.is_err() {
                return;
            }
            continue;
        }
        if !open && queues.iter().all(|q| q.is_empty()) {
            let _ = writer.goodbye().await;
            return;
        }
        if open {
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    Some(cmd) => apply(cmd, &mut queues, &notify),
                    None => open = false,
                },
                _ = notify.notified() => (),
            }
        } else {
            notify.notified().await;
        }
    }
}

fn apply(cmd: SendCommand, queues: &mut [VecDeque<Pending>; 3], notify: &Arc<Notify>) {
    match cmd {
        SendCommand::Send(m) => {
            let (body, pump) = match m.body {
                Some(stream) => {
                    let (tx, rx) = mpsc::channel(BODY_BUFFER_CHUNKS);
                    (Some(rx), Some(spawn_pump(stream, tx, notify.clone())))
                }
                None => (None, None),
            };
            queues[m.prio as usize].push_back(Pending {
                id: m.id,
                prio: m.prio,
                head: m.head,
                head_sent: false,
                body,
                pump,
                control: false,
                started: false,
            });
        }
        SendCommand::Drop { id } => {
            // The peer has already received the first chunks of a started message: without a
            // cancel chunk it would wait for the rest forever (and keep a message slot taken).
            let mut started = false;
            for q in queues.iter_mut() {
                q.retain(|p| {
                    let dropped = p.id == id && !p.control;
                    started |= dropped && p.started;
                    !dropped
                });
            }
            if started {
                queues[Priority::High as usize].push_front(cancel_chunk(id));
            }
        }
        SendCommand::Cancel { id } => {
            for q in queues.iter_mut() {
                q.retain(|p| p.id != id || p.control);
            }
            queues[Priority::High as usize].push_front(cancel_chunk(id));
        }
    }
}

/// A control message: one cancel chunk for message `id`.
fn cancel_chunk(id: u32) -> Pending {
    Pending {
        id,
        prio: Priority::High,
        head: Bytes::new(),
        head_sent: true,
        body: None,
        pump: None,
        control: true,
        started: false,
    }
}

/// The next chunk to send: highest priority first, round-robin within a priority.
fn pick_chunk(queues: &mut [VecDeque<Pending>; 3]) -> Option<Chunk> {
    for q in queues.iter_mut() {
        for _ in 0..q.len() {
            let mut p = q.pop_front()?;
            match p.next_chunk() {
                Next::Chunk(c, done) => {
                    if !done {
                        q.push_back(p);
                    }
                    return Some(c);
                }
                Next::NotReady => q.push_back(p),
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::box_stream::BoxStreamReader;
    use crate::net::frame::ChunkReader;

    fn message(id: u32, prio: Priority, head_len: usize) -> SendCommand {
        SendCommand::Send(OutMessage {
            id,
            prio,
            head: Bytes::from(vec![id as u8; head_len]),
            body: None,
        })
    }

    /// The scheduler always sends a chunk of the highest priority that has one ready, whatever
    /// the order in which messages were queued, and messages of one priority take turns chunk by
    /// chunk; a High message queued in the middle of Background ones overtakes what is left.
    #[test]
    fn higher_priorities_go_first_and_equal_ones_take_turns() {
        let notify = Arc::new(Notify::new());
        let mut queues: [VecDeque<Pending>; 3] = Default::default();
        // Queued lowest priority first: arrival order must not decide.
        for (id, prio, len) in [
            (1, Priority::Background, 3 * CHUNK_MAX),
            (2, Priority::Background, 2 * CHUNK_MAX),
            (3, Priority::Normal, 2 * CHUNK_MAX),
            (4, Priority::High, 2 * CHUNK_MAX),
            (5, Priority::High, 10),
        ] {
            apply(message(id, prio, len), &mut queues, &notify);
        }
        let mut order = vec![];
        while let Some(c) = pick_chunk(&mut queues) {
            assert!(c.data.len() <= CHUNK_MAX, "chunk of {} bytes", c.data.len());
            order.push(c.id);
            if order.len() == 6 {
                apply(message(6, Priority::High, 10), &mut queues, &notify);
            }
        }
        assert_eq!(order, vec![4, 5, 4, 3, 3, 1, 6, 2, 1, 2, 1]);
    }

    /// A message dropped after its first chunks went out is ended by a cancel chunk (the peer
    /// would otherwise wait for its end forever); one dropped before it started leaves no trace.
    #[tokio::test]
    async fn dropping_a_started_message_sends_a_cancel_chunk() {
        // A small pipe: the writer blocks inside the second chunk until the test reads.
        let (a, b) = tokio::io::duplex(1024);
        let (key, nonce) = ([3u8; 32], [0u8; 24]);
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run_writer(BoxStreamWriter::new(a, key, nonce), rx));
        let mut reader = ChunkReader::new(BoxStreamReader::new(b, key, nonce));

        let send = |c| tx.send(c).map_err(|_| ()).expect("writer alive");
        send(message(7, Priority::Normal, 5 * CHUNK_MAX));
        let first = reader.next().await.expect("first chunk");
        assert_eq!(
            (first.id, first.kind),
            (
                7,
                ChunkKind::Head {
                    last: false,
                    has_body: false
                }
            )
        );
        send(SendCommand::Drop { id: 7 });
        send(message(9, Priority::Background, 10));
        send(SendCommand::Drop { id: 9 });
        send(message(10, Priority::Background, 10));

        let mut seen = vec![];
        loop {
            let c = reader.next().await.expect("chunk");
            seen.push((c.id, c.kind));
            if c.id == 10 {
                break;
            }
        }
        let cancel = seen
            .iter()
            .position(|c| *c == (7, ChunkKind::Cancel))
            .unwrap_or_else(|| panic!("no cancel chunk for message 7: {seen:?}"));
        assert!(seen[..cancel].iter().all(|c| *c
            == (
                7,
                ChunkKind::Head {
                    last: false,
                    has_body: false
                }
            )));
        assert!(seen.iter().all(|c| c.0 != 9), "{seen:?}");
        assert_eq!(seen.len(), cancel + 2, "{seen:?}");
    }
}
