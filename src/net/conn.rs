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

/// The receiving end of a streamed body, on the connection's side.
struct BodySender {
    tx: mpsc::Sender<Result<Bytes, String>>,
    /// Set when the body-end chunk arrives. A body whose sender goes away without it (connection
    /// lost, message cancelled) ends with an error for its consumer, never as if complete.
    complete: Arc<AtomicBool>,
}

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

/// Turns a body channel into a stream that ends after its first error, and ends with an error if
/// the body was cut short.
fn body_stream(rx: mpsc::Receiver<Result<Bytes, String>>, complete: Arc<AtomicBool>) -> ByteStream {
    Box::pin(futures::stream::unfold(Some(rx), move |rx| {
        let complete = complete.clone();
        async move {
            let mut rx = rx?;
            match rx.recv().await {
                Some(Ok(data)) => Some((Ok(data), Some(rx))),
                Some(Err(e)) => Some((Err(e), None)),
                None if complete.load(Ordering::SeqCst) => None,
                None => Some((Err(BODY_CUT_SHORT.to_string()), None)),
            }
        }
    }))
}

/// What the consumer of a body cut short sees.
const BODY_CUT_SHORT: &str =
    "streamed body cut short (connection lost or message cancelled before its end)";

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
                    let complete = Arc::new(AtomicBool::new(false));
                    p.body = Some(BodySender {
                        tx,
                        complete: complete.clone(),
                    });
                    Some(body_stream(rx, complete))
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
                        if let Some(b) = &p.body {
                            if b.tx.send(Ok(chunk.data)).await.is_err() {
                                // The consumer went away: drop the rest of this body.
                                p.body = None;
                            }
                        }
                    }
                    ChunkKind::BodyError => {
                        if let Some(b) = p.body.take() {
                            let msg = String::from_utf8_lossy(&chunk.data).into_owned();
                            let _ = b.tx.send(Err(msg)).await;
                        }
                        self.partial.remove(&id);
                    }
                    _ => {
                        if let Some(b) = &p.body {
                            b.complete.store(true, Ordering::SeqCst);
                        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::frame::Chunk;
    use futures::StreamExt;

    fn chunk(id: u32, kind: ChunkKind, data: &'static [u8]) -> Chunk {
        Chunk {
            id,
            prio: Priority::Normal,
            kind,
            data: Bytes::from_static(data),
        }
    }

    /// Starts message 1 with a streamed body and one piece of data; returns its body.
    async fn started(asm: &mut Assembler) -> ByteStream {
        let head = ChunkKind::Head {
            last: true,
            has_body: true,
        };
        let Ok(Event::Message(m)) = asm.push(chunk(1, head, b"h")).await else {
            panic!("a message");
        };
        assert!(matches!(
            asm.push(chunk(1, ChunkKind::BodyData, b"abc")).await,
            Ok(Event::Nothing)
        ));
        m.body.expect("a body")
    }

    #[tokio::test]
    async fn body_ends_cleanly_only_with_its_end_chunk() {
        // Complete.
        let mut asm = Assembler::default();
        let mut body = started(&mut asm).await;
        assert!(asm.push(chunk(1, ChunkKind::BodyEnd, b"")).await.is_ok());
        assert_eq!(body.next().await, Some(Ok(Bytes::from_static(b"abc"))));
        assert_eq!(body.next().await, None);

        // Connection lost (the assembler goes away).
        let mut asm = Assembler::default();
        let mut body = started(&mut asm).await;
        drop(asm);
        assert_eq!(body.next().await, Some(Ok(Bytes::from_static(b"abc"))));
        assert!(matches!(body.next().await, Some(Err(e)) if e.contains("cut short")));
        assert_eq!(body.next().await, None);

        // Cancelled by the peer.
        let mut asm = Assembler::default();
        let mut body = started(&mut asm).await;
        assert!(matches!(
            asm.push(chunk(1, ChunkKind::Cancel, b"")).await,
            Ok(Event::Cancel(1))
        ));
        assert!(asm.partial.is_empty());
        assert_eq!(body.next().await, Some(Ok(Bytes::from_static(b"abc"))));
        assert!(matches!(body.next().await, Some(Err(_))));

        // An error sent by the peer ends the body.
        let mut asm = Assembler::default();
        let mut body = started(&mut asm).await;
        assert!(asm
            .push(chunk(1, ChunkKind::BodyError, b"disk"))
            .await
            .is_ok());
        assert_eq!(body.next().await, Some(Ok(Bytes::from_static(b"abc"))));
        assert_eq!(body.next().await, Some(Err("disk".to_string())));
        assert_eq!(body.next().await, None);
    }

    /// A cancel chunk frees the slot of a message whose head was only partly received.
    #[tokio::test]
    async fn cancel_forgets_a_partial_head() {
        let mut asm = Assembler::default();
        let part = ChunkKind::Head {
            last: false,
            has_body: false,
        };
        assert!(matches!(
            asm.push(chunk(5, part, b"x")).await,
            Ok(Event::Nothing)
        ));
        assert_eq!(asm.partial.len(), 1);
        assert!(matches!(
            asm.push(chunk(5, ChunkKind::Cancel, b"")).await,
            Ok(Event::Cancel(5))
        ));
        assert!(asm.partial.is_empty());
    }
}
