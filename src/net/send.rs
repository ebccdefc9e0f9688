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
    /// Stop sending message `id` (its peer no longer wants it).
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
            });
        }
        SendCommand::Drop { id } => {
            for q in queues.iter_mut() {
                q.retain(|p| p.id != id || p.control);
            }
        }
        SendCommand::Cancel { id } => {
            for q in queues.iter_mut() {
                q.retain(|p| p.id != id || p.control);
            }
            queues[Priority::High as usize].push_front(Pending {
                id,
                prio: Priority::High,
                head: Bytes::new(),
                head_sent: true,
                body: None,
                pump: None,
                control: true,
            });
        }
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
