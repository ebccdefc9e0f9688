//! One authenticated connection, in either role. The client side sends requests and matches
//! responses by id; the server side runs a task per request through the [`Dispatcher`] and sends
//! its response. Both share the chunk reassembly below. A request is abandoned (cancel chunk to
//! the server, handler task aborted there) when the caller gives up: timeout or dropped future.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use super::box_stream::{BoxStreamReader, BoxStreamWriter};
use super::frame::{
    decode_request_head, decode_response_head, encode_request_head, encode_response_head,
    ChunkKind, ChunkReader, FrameError, Priority, HEAD_MAX,
};
use super::send::{run_writer, OutMessage, SendCommand};
use super::{ByteStream, Dispatcher, NetError, RequestContext};
use crate::util::ids::NodeId;

/// Messages in progress allowed on one connection.
const MAX_MESSAGES_IN_PROGRESS: usize = 1024;
/// Body chunks buffered between the reader and the consumer of a body.
const BODY_CHANNEL: usize = 8;

type BodySender = mpsc::Sender<Result<Bytes, String>>;

/// A message whose head or body is still arriving.
struct Partial {
    head: BytesMut,
    head_done: bool,
    body: Option<BodySender>,
}

/// A complete head, with its body (if any) arriving on the stream.
struct Incoming {
    id: u32,
    prio: Priority,
    head: Bytes,
    body: Option<ByteStream>,
}

/// Turns a body channel into a stream.
fn body_stream(rx: mpsc::Receiver<Result<Bytes, String>>) -> ByteStream {
    Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

/// Reassembles chunks into messages. Returns heads as they complete and cancel requests.
#[derive(Default)]
struct Assembler {
    partial: HashMap<u32, Partial>,
}

enum Event {
    Message(Incoming),
    Cancel(u32),
    Nothing,
}

impl Assembler {
    async fn push(&mut self, chunk: super::frame::Chunk) -> Result<Event, FrameError> {
        let id = chunk.id;
        match chunk.kind {
            ChunkKind::Cancel => {
                self.partial.remove(&id);
                Ok(Event::Cancel(id))
            }
            ChunkKind::Head { last, has_body } => {
                if !self.partial.contains_key(&id) && self.partial.len() >= MAX_MESSAGES_IN_PROGRESS
                {
                    return Err(FrameError::TooManyMessages {
                        limit: MAX_MESSAGES_IN_PROGRESS,
                    });
                }
                let p = self.partial.entry(id).or_insert_with(|| Partial {
                    head: BytesMut::new(),
                    head_done: false,
                    body: None,
                });
                if p.head_done {
                    return Err(FrameError::Sequence {
                        id,
                        what: "head chunk after the end of the head",
                    });
                }
                if p.head.len() + chunk.data.len() > HEAD_MAX {
                    return Err(FrameError::HeadTooLarge { id });
                }
                p.head.extend_from_slice(&chunk.data);
                if !last {
                    return Ok(Event::Nothing);
                }
                p.head_done = true;
                let head = std::mem::take(&mut p.head).freeze();
                let body = if has_body {
                    let (tx, rx) = mpsc::channel(BODY_CHANNEL);
                    p.body = Some(tx);
                    Some(body_stream(rx))
                } else {
                    self.partial.remove(&id);
                    None
                };
                Ok(Event::Message(Incoming {
                    id,
                    prio: chunk.prio,
                    head,
                    body,
                }))
            }
            ChunkKind::BodyData | ChunkKind::BodyEnd | ChunkKind::BodyError => {
                let Some(p) = self.partial.get_mut(&id) else {
                    // The message was cancelled locally: ignore its remaining chunks.
                    return Ok(Event::Nothing);
                };
                if !p.head_done {
                    return Err(FrameError::Sequence {
                        id,
                        what: "body chunk before the end of the head",
                    });
                }
                match chunk.kind {
                    ChunkKind::BodyData => {
                        if let Some(tx) = &p.body {
                            if tx.send(Ok(chunk.data)).await.is_err() {
                                // The consumer went away: drop the rest of this body.
                                p.body = None;
                            }
                        }
                    }
                    ChunkKind::BodyError => {
                        if let Some(tx) = p.body.take() {
                            let msg = String::from_utf8_lossy(&chunk.data).into_owned();
                            let _ = tx.send(Err(msg)).await;
                        }
                        self.partial.remove(&id);
                    }
                    _ => {
                        self.partial.remove(&id);
                    }
                }
                Ok(Event::Nothing)
            }
        }
    }
}

type ResponseSender = oneshot::Sender<Result<(Bytes, Option<ByteStream>), NetError>>;

/// The client side of a connection to a peer.
pub struct ClientConn {
    pub peer: NodeId,
    pub remote_addr: SocketAddr,
    commands: mpsc::UnboundedSender<SendCommand>,
    next_id: AtomicU32,
    pending: Mutex<HashMap<u32, ResponseSender>>,
    closed: AtomicBool,
    reader: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl ClientConn {
    /// Starts the reader and writer tasks; `on_close` runs once when the connection ends.
    pub fn start<R, W>(
        peer: NodeId,
        remote_addr: SocketAddr,
        reader: BoxStreamReader<R>,
        writer: BoxStreamWriter<W>,
        on_close: impl FnOnce() + Send + 'static,
    ) -> Arc<Self>
    where
        R: tokio::io::AsyncRead + Unpin + Send + 'static,
        W: tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run_writer(writer, rx));
        let conn = Arc::new(Self {
            peer,
            remote_addr,
            commands: tx,
            next_id: AtomicU32::new(1),
            pending: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
            reader: Mutex::new(None),
        });
        let c2 = conn.clone();
        let handle = tokio::spawn(async move {
            let err = c2.read_loop(ChunkReader::new(reader)).await;
            debug!(
                "connection to {:?} ({}) ended: {}",
                c2.peer, c2.remote_addr, err
            );
            c2.fail_all();
            on_close();
        });
        if let Ok(mut r) = conn.reader.lock() {
            *r = Some(handle);
        }
        conn
    }

    async fn read_loop<R: tokio::io::AsyncRead + Unpin>(
        &self,
        mut reader: ChunkReader<R>,
    ) -> FrameError {
        let mut asm = Assembler::default();
        loop {
            let chunk = match reader.next().await {
                Ok(c) => c,
                Err(e) => return e,
            };
            match asm.push(chunk).await {
                Ok(Event::Message(m)) => {
                    let waiter = self.pending.lock().ok().and_then(|mut p| p.remove(&m.id));
                    if let Some(w) = waiter {
                        let _ = w.send(Ok((m.head, m.body)));
                    }
                }
                Ok(_) => (),
                Err(e) => return e,
            }
        }
    }

    fn fail_all(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let waiters: Vec<_> = match self.pending.lock() {
            Ok(mut p) => p.drain().map(|(_, w)| w).collect(),
            Err(_) => vec![],
        };
        for w in waiters {
            let _ = w.send(Err(NetError::ConnectionClosed { peer: self.peer }));
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Closes the connection: pending calls fail, the peer sees a goodbye.
    pub fn close(&self) {
        if let Ok(mut r) = self.reader.lock() {
            if let Some(h) = r.take() {
                h.abort();
            }
        }
        self.fail_all();
    }

    /// Sends a request and waits for its response (payload and optional streamed body).
    pub async fn call(
        &self,
        path: &str,
        prio: Priority,
        payload: &[u8],
        body: Option<ByteStream>,
        timeout: Duration,
    ) -> Result<(Bytes, Option<ByteStream>), NetError> {
        if self.is_closed() {
            return Err(NetError::ConnectionClosed { peer: self.peer });
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        if let Ok(mut p) = self.pending.lock() {
            p.insert(id, tx);
        }
        let msg = OutMessage {
            id,
            prio,
            head: encode_request_head(path, payload),
            body,
        };
        if self.commands.send(SendCommand::Send(msg)).is_err() {
            return Err(NetError::ConnectionClosed { peer: self.peer });
        }
        let mut guard = CancelGuard {
            conn: self,
            id,
            armed: true,
        };
        let res = tokio::time::timeout(timeout, rx).await;
        let (head, body) = match res {
            Ok(Ok(r)) => {
                guard.armed = false;
                r?
            }
            Ok(Err(_)) => {
                guard.armed = false;
                return Err(NetError::ConnectionClosed { peer: self.peer });
            }
            Err(_) => {
                return Err(NetError::Timeout {
                    peer: self.peer,
                    path: path.to_string(),
                    after_ms: timeout.as_millis() as u64,
                })
            }
        };
        match decode_response_head(head) {
            Ok(Ok(payload)) => Ok((payload, body)),
            Ok(Err(message)) => Err(NetError::Remote {
                peer: self.peer,
                message,
            }),
            Err(source) => Err(NetError::Protocol {
                peer: self.peer,
                source,
            }),
        }
    }
}

/// Abandons a request whose caller stopped waiting (timeout or dropped future).
struct CancelGuard<'a> {
    conn: &'a ClientConn,
    id: u32,
    armed: bool,
}

impl Drop for CancelGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            if let Ok(mut p) = self.conn.pending.lock() {
                p.remove(&self.id);
            }
            let _ = self.conn.commands.send(SendCommand::Cancel { id: self.id });
        }
    }
}

/// Runs the server side of a connection until it ends.
pub async fn serve<R, W>(
    peer: NodeId,
    remote_addr: SocketAddr,
    reader: BoxStreamReader<R>,
    writer: BoxStreamWriter<W>,
    dispatcher: Arc<dyn Dispatcher>,
) where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
    W: tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    let writer_task = tokio::spawn(run_writer(writer, rx));
    let running: Arc<Mutex<HashMap<u32, tokio::task::AbortHandle>>> = Default::default();
    let mut reader = ChunkReader::new(reader);
    let mut asm = Assembler::default();
    let err = loop {
        let chunk = match reader.next().await {
            Ok(c) => c,
            Err(e) => break e,
        };
        match asm.push(chunk).await {
            Ok(Event::Message(m)) => {
                let ctx = RequestContext {
                    from: peer,
                    remote_addr: Some(remote_addr),
                };
                let (tx2, running2, dispatcher2) =
                    (tx.clone(), running.clone(), dispatcher.clone());
                let id = m.id;
                // Hold the registry while spawning so the task cannot unregister before it is
                // registered.
                let mut registry = match running.lock() {
                    Ok(r) => r,
                    Err(_) => break FrameError::Closed,
                };
                let task = tokio::spawn(async move {
                    let (head, body) = match decode_request_head(m.head) {
                        Ok((path, payload)) => {
                            match dispatcher2.dispatch(ctx, path, payload, m.body).await {
                                Ok((p, b)) => (encode_response_head(&Ok(p)), b),
                                Err(e) => (encode_response_head(&Err(e)), None),
                            }
                        }
                        Err(e) => (encode_response_head(&Err(e.to_string())), None),
                    };
                    if let Ok(mut r) = running2.lock() {
                        r.remove(&id);
                    }
                    let _ = tx2.send(SendCommand::Send(OutMessage {
                        id,
                        prio: m.prio,
                        head,
                        body,
                    }));
                });
                registry.insert(id, task.abort_handle());
            }
            Ok(Event::Cancel(id)) => {
                let h = running.lock().ok().and_then(|mut r| r.remove(&id));
                if let Some(h) = h {
                    h.abort();
                }
                let _ = tx.send(SendCommand::Drop { id });
            }
            Ok(Event::Nothing) => (),
            Err(e) => break e,
        }
    };
    match err {
        FrameError::Closed => debug!("connection from {:?} ({}) closed", peer, remote_addr),
        e => warn!("connection from {:?} ({}) closed: {}", peer, remote_addr, e),
    }
    if let Ok(mut r) = running.lock() {
        for (_, h) in r.drain() {
            h.abort();
        }
    }
    drop(tx);
    writer_task.abort();
}
