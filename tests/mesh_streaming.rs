//! Streamed bodies, priorities, timeouts and cancellation between two in-process `NetApp`s over
//! loopback TCP:
//!
//! - a 32 MiB request body streamed at Background priority to a stream handler that returns its
//!   SHA-256, while High-priority pings on the same connection keep answering (their round-trip
//!   times during the transfer are printed; every ping must complete within a generous timeout);
//! - a streamed response body (server → client), and a request body echoed back as the response
//!   body while it is still arriving;
//! - a handler slower than the call's timeout gives `NetError::Timeout`, and the handler is
//!   aborted on the server;
//! - dropping the caller's future aborts the handler on the server (a drop guard sets a flag),
//!   also in the middle of a streamed request body; the connection stays usable;
//! - a response cancelled while the server is sending it is ended by a cancel chunk (checked at
//!   the chunk level with a raw client), so the client does not keep the unfinished message;
//! - a streamed body cut short by a lost connection (a proxy that cuts the link) ends with an
//!   error for its consumer, never as if it were complete.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use common::netpair::{wait_until, Gen, Pair, Ping, PingHandler};
use garage::net::frame::Priority;
use garage::net::{ByteStream, NetError};
use garage::rpc::endpoint::{CallOpts, Endpoint, Handler, Rpc, StreamHandler};
use garage::rpc::RpcError;
use garage::util::ids::NodeId;

const PING_TIMEOUT: Duration = Duration::from_secs(10);
const PIECE: usize = 256 * 1024;

/// A generated body of `len` bytes from `seed`, in pieces of [`PIECE`] bytes; the SHA-256 of
/// what was produced is accumulated in `hash`.
fn gen_body(seed: u64, len: u64, hash: Option<Arc<Mutex<Sha256>>>) -> ByteStream {
    let state = (Gen::new(seed), 0u64);
    Box::pin(futures::stream::unfold(state, move |(mut g, sent)| {
        let hash = hash.clone();
        async move {
            if sent >= len {
                return None;
            }
            let n = (len - sent).min(PIECE as u64) as usize;
            let mut buf = vec![0u8; n];
            g.fill(&mut buf);
            if let Some(h) = &hash {
                h.lock().expect("hash").update(&buf);
            }
            Some((Ok(Bytes::from(buf)), (g, sent + n as u64)))
        }
    }))
}

/// Reads a whole body; returns its length and SHA-256.
async fn hash_body(mut body: ByteStream) -> Result<(u64, Vec<u8>), String> {
    let mut h = Sha256::new();
    let mut len = 0u64;
    while let Some(piece) = body.next().await {
        let piece = piece?;
        len += piece.len() as u64;
        h.update(&piece);
    }
    Ok((len, h.finalize().to_vec()))
}

/// Hash the request body.
#[derive(Serialize, Deserialize)]
struct HashBody;
impl Rpc for HashBody {
    type Response = (u64, Vec<u8>);
}

struct HashHandler;
impl StreamHandler<HashBody> for HashHandler {
    async fn handle_stream(
        self: Arc<Self>,
        _msg: HashBody,
        _from: NodeId,
        body: Option<ByteStream>,
    ) -> Result<((u64, Vec<u8>), Option<ByteStream>), String> {
        let body = body.ok_or("a body is required")?;
        Ok((hash_body(body).await?, None))
    }
}

/// Send back a generated body of `len` bytes.
#[derive(Serialize, Deserialize)]
struct Download {
    seed: u64,
    len: u64,
}
impl Rpc for Download {
    type Response = u64;
}

struct DownloadHandler;
impl StreamHandler<Download> for DownloadHandler {
    async fn handle_stream(
        self: Arc<Self>,
        msg: Download,
        _from: NodeId,
        _body: Option<ByteStream>,
    ) -> Result<(u64, Option<ByteStream>), String> {
        Ok((msg.len, Some(gen_body(msg.seed, msg.len, None))))
    }
}

/// Send the request body back as the response body, as it arrives.
#[derive(Serialize, Deserialize)]
struct Echo;
impl Rpc for Echo {
    type Response = ();
}

struct EchoHandler;
impl StreamHandler<Echo> for EchoHandler {
    async fn handle_stream(
        self: Arc<Self>,
        _msg: Echo,
        _from: NodeId,
        body: Option<ByteStream>,
    ) -> Result<((), Option<ByteStream>), String> {
        Ok(((), body))
    }
}

/// Sets a flag when dropped (i.e. when the handler's future is dropped, finished or not).
struct DropFlag(Arc<AtomicBool>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// What a slow handler went through.
#[derive(Default)]
struct Probe {
    started: AtomicBool,
    dropped: Arc<AtomicBool>,
    completed: AtomicBool,
    /// Body bytes received so far.
    received: AtomicU64,
}

/// Sleep for `ms` milliseconds, reading the request body (if any) slowly meanwhile.
#[derive(Serialize, Deserialize)]
struct Slow {
    ms: u64,
}
impl Rpc for Slow {
    type Response = ();
}

struct SlowHandler(Arc<Probe>);
impl StreamHandler<Slow> for SlowHandler {
    async fn handle_stream(
        self: Arc<Self>,
        msg: Slow,
        _from: NodeId,
        body: Option<ByteStream>,
    ) -> Result<((), Option<ByteStream>), String> {
        let p = &self.0;
        let _guard = DropFlag(p.dropped.clone());
        p.started.store(true, Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + Duration::from_millis(msg.ms);
        if let Some(mut body) = body {
            while let Some(piece) = body.next().await {
                let piece = piece?;
                p.received.fetch_add(piece.len() as u64, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        tokio::time::sleep_until(deadline).await;
        p.completed.store(true, Ordering::SeqCst);
        Ok(((), None))
    }
}

impl Handler<Slow> for SlowHandler {
    async fn handle(self: Arc<Self>, msg: Slow, from: NodeId) -> Result<(), String> {
        self.handle_stream(msg, from, None).await.map(|r| r.0)
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_answer_during_a_large_background_upload() {
    let pair = Pair::new().await;
    let to = pair.server_id();
    Endpoint::<Ping>::new(pair.server.clone(), "test/ping").set_handler(Arc::new(PingHandler));
    Endpoint::<HashBody>::new(pair.server.clone(), "test/hash")
        .set_stream_handler(Arc::new(HashHandler));
    let ping = Endpoint::<Ping>::new(pair.client.clone(), "test/ping");
    let upload = Endpoint::<HashBody>::new(pair.client.clone(), "test/hash");

    const LEN: u64 = 32 << 20;
    let expected = Arc::new(Mutex::new(Sha256::new()));
    let done = Arc::new(AtomicBool::new(false));

    let pinger = {
        let done = done.clone();
        tokio::spawn(async move {
            let mut rtts = vec![];
            let mut i = 0u64;
            let mut tick = tokio::time::interval(Duration::from_millis(5));
            while !done.load(Ordering::SeqCst) {
                tick.tick().await;
                let start = Instant::now();
                let r = ping
                    .call(to, &Ping(i), CallOpts::new(Priority::High, PING_TIMEOUT))
                    .await;
                match r {
                    Ok(v) => assert_eq!(v, i + 1),
                    Err(e) => panic!("ping {i} failed during the transfer: {e}"),
                }
                rtts.push(start.elapsed());
                i += 1;
            }
            rtts
        })
    };

    let start = Instant::now();
    let ((len, hash), _) = upload
        .call_stream(
            to,
            &HashBody,
            Some(gen_body(1, LEN, Some(expected.clone()))),
            CallOpts::new(Priority::Background, Duration::from_secs(300)),
        )
        .await
        .expect("upload");
    let took = start.elapsed();
    done.store(true, Ordering::SeqCst);
    let mut rtts = pinger.await.expect("pinger");

    assert_eq!(len, LEN);
    let expected = expected.lock().expect("hash").clone().finalize().to_vec();
    assert_eq!(hash, expected, "SHA-256 of the body as received");

    assert!(!rtts.is_empty(), "pings ran during the transfer");
    rtts.sort();
    println!(
        "32 MiB streamed at Background priority in {:?} ({:.1} MiB/s); {} High-priority pings \
         meanwhile: RTT min {:?}, median {:?}, p90 {:?}, max {:?}",
        took,
        32.0 / took.as_secs_f64(),
        rtts.len(),
        rtts[0],
        percentile(&rtts, 0.5),
        percentile(&rtts, 0.9),
        rtts[rtts.len() - 1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_response_bodies() {
    let pair = Pair::new().await;
    let to = pair.server_id();
    Endpoint::<Download>::new(pair.server.clone(), "test/download")
        .set_stream_handler(Arc::new(DownloadHandler));
    Endpoint::<Echo>::new(pair.server.clone(), "test/echo")
        .set_stream_handler(Arc::new(EchoHandler));
    let download = Endpoint::<Download>::new(pair.client.clone(), "test/download");
    let echo = Endpoint::<Echo>::new(pair.client.clone(), "test/echo");
    let opts = CallOpts::new(Priority::Normal, Duration::from_secs(60));

    // Server → client.
    const LEN: u64 = 8 << 20;
    let (announced, body) = download
        .call_stream(to, &Download { seed: 9, len: LEN }, None, opts)
        .await
        .expect("download");
    assert_eq!(announced, LEN);
    let (len, hash) = hash_body(body.expect("a response body"))
        .await
        .expect("body");
    let expected = {
        let h = Arc::new(Mutex::new(Sha256::new()));
        hash_body(gen_body(9, LEN, Some(h.clone())))
            .await
            .expect("local")
    };
    assert_eq!((len, hash), expected);

    // An empty response body.
    let (_, body) = download
        .call_stream(to, &Download { seed: 1, len: 0 }, None, opts)
        .await
        .expect("download");
    assert_eq!(hash_body(body.expect("body")).await.expect("body").0, 0);

    // Echo: the response body is the request body, relayed while it arrives.
    const ECHO_LEN: u64 = 4 << 20;
    let sent = Arc::new(Mutex::new(Sha256::new()));
    let (_, body) = echo
        .call_stream(
            to,
            &Echo,
            Some(gen_body(5, ECHO_LEN, Some(sent.clone()))),
            opts,
        )
        .await
        .expect("echo");
    let (len, hash) = hash_body(body.expect("echoed body")).await.expect("body");
    assert_eq!(len, ECHO_LEN);
    assert_eq!(hash, sent.lock().expect("hash").clone().finalize().to_vec());

    // An error in the middle of a request body reaches the handler as an error.
    let failing: ByteStream = Box::pin(futures::stream::iter(vec![
        Ok(Bytes::from(vec![1u8; 100_000])),
        Err("disk read failed".to_string()),
    ]));
    let (_, body) = echo
        .call_stream(to, &Echo, Some(failing), opts)
        .await
        .expect("echo");
    let err = hash_body(body.expect("echoed body"))
        .await
        .expect_err("error");
    assert!(err.contains("disk read failed"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_and_cancellation_abort_the_handler() {
    let pair = Pair::new().await;
    let to = pair.server_id();
    Endpoint::<Ping>::new(pair.server.clone(), "test/ping").set_handler(Arc::new(PingHandler));
    let ping = Endpoint::<Ping>::new(pair.client.clone(), "test/ping");
    let ping_opts = CallOpts::new(Priority::High, PING_TIMEOUT);

    // A handler slower than the timeout.
    let probe = Arc::new(Probe::default());
    Endpoint::<Slow>::new(pair.server.clone(), "test/slow")
        .set_handler(Arc::new(SlowHandler(probe.clone())));
    let slow = Endpoint::<Slow>::new(pair.client.clone(), "test/slow");
    let start = Instant::now();
    let res = slow
        .call(
            to,
            &Slow { ms: 30_000 },
            CallOpts::new(Priority::Normal, Duration::from_millis(300)),
        )
        .await;
    let took = start.elapsed();
    match res {
        Err(RpcError::Net(NetError::Timeout { after_ms, path, .. })) => {
            assert_eq!(after_ms, 300);
            assert_eq!(path, "test/slow");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(took < Duration::from_secs(5), "timed out after {took:?}");
    assert!(probe.started.load(Ordering::SeqCst));
    assert!(
        wait_until(Duration::from_secs(5), || probe
            .dropped
            .load(Ordering::SeqCst))
        .await,
        "the server aborts the handler of a timed-out call"
    );
    assert!(!probe.completed.load(Ordering::SeqCst));
    assert_eq!(ping.call(to, &Ping(1), ping_opts).await.expect("ping"), 2);

    // Dropping the caller's future.
    let probe = Arc::new(Probe::default());
    Endpoint::<Slow>::new(pair.server.clone(), "test/slow2")
        .set_handler(Arc::new(SlowHandler(probe.clone())));
    let slow2 = Endpoint::<Slow>::new(pair.client.clone(), "test/slow2");
    let call = tokio::spawn(async move {
        slow2
            .call(
                to,
                &Slow { ms: 30_000 },
                CallOpts::new(Priority::Normal, Duration::from_secs(60)),
            )
            .await
    });
    assert!(
        wait_until(Duration::from_secs(5), || probe
            .started
            .load(Ordering::SeqCst))
        .await,
        "handler started"
    );
    assert!(!probe.dropped.load(Ordering::SeqCst));
    call.abort();
    assert!(call.await.expect_err("aborted").is_cancelled());
    assert!(
        wait_until(Duration::from_secs(5), || probe
            .dropped
            .load(Ordering::SeqCst))
        .await,
        "dropping the caller aborts the handler on the server"
    );
    assert!(!probe.completed.load(Ordering::SeqCst));
    assert_eq!(ping.call(to, &Ping(2), ping_opts).await.expect("ping"), 3);

    // Dropping the caller in the middle of a streamed request body.
    let probe = Arc::new(Probe::default());
    Endpoint::<Slow>::new(pair.server.clone(), "test/slow3")
        .set_stream_handler(Arc::new(SlowHandler(probe.clone())));
    let slow3 = Endpoint::<Slow>::new(pair.client.clone(), "test/slow3");
    let call = tokio::spawn(async move {
        slow3
            .call_stream(
                to,
                &Slow { ms: 0 },
                Some(gen_body(3, 1 << 40, None)), // 1 TiB: it will not finish
                CallOpts::new(Priority::Background, Duration::from_secs(60)),
            )
            .await
            .map(|_| ())
    });
    assert!(
        wait_until(Duration::from_secs(10), || probe
            .received
            .load(Ordering::SeqCst)
            >= 1 << 20)
        .await,
        "the handler reads the body"
    );
    call.abort();
    let _ = call.await;
    assert!(
        wait_until(Duration::from_secs(5), || probe
            .dropped
            .load(Ordering::SeqCst))
        .await,
        "dropping the caller mid-body aborts the handler"
    );
    let received = probe.received.load(Ordering::SeqCst);
    assert!(!probe.completed.load(Ordering::SeqCst));
    println!("upload cancelled after the handler read {received} bytes");
    assert_eq!(ping.call(to, &Ping(3), ping_opts).await.expect("ping"), 4);
    assert!(pair.client.is_connected(&to));
}

/// Answer with `len` bytes as a plain payload (part of the response head).
#[derive(Serialize, Deserialize)]
struct Blob {
    len: usize,
}
impl Rpc for Blob {
    type Response = serde_bytes::ByteBuf;
}

struct BlobHandler;
impl Handler<Blob> for BlobHandler {
    async fn handle(
        self: Arc<Self>,
        msg: Blob,
        _from: NodeId,
    ) -> Result<serde_bytes::ByteBuf, String> {
        Ok(serde_bytes::ByteBuf::from(vec![0x33; msg.len]))
    }
}

/// A response cancelled after the server started sending it must be ended by a cancel chunk:
/// otherwise the client keeps the unfinished message forever, and a connection allows only 1024
/// messages in progress (leaked ones used to accumulate until the connection was closed with
/// "too many concurrent messages"). A raw client (chunk level) asks for a 16 MiB plain answer,
/// reads its first chunk, cancels, then sends a ping: before the ping's answer, the server must
/// have sent a cancel chunk for the abandoned answer, and never its last chunk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_cancelled_mid_head_are_ended_by_a_cancel_chunk() {
    use garage::net::box_stream::split;
    use garage::net::frame::{Chunk, ChunkKind, ChunkReader};
    use garage::net::handshake::client_handshake;
    use garage::net::node_key::NodeKey;

    let pair = Pair::new().await;
    Endpoint::<Ping>::new(pair.server.clone(), "test/ping").set_handler(Arc::new(PingHandler));
    Endpoint::<Blob>::new(pair.server.clone(), "test/blob").set_handler(Arc::new(BlobHandler));

    let mut sock = tokio::net::TcpStream::connect(pair.addr)
        .await
        .expect("connect");
    let me = NodeKey::generate();
    let (keys, _) = client_handshake(
        &mut sock,
        &common::netpair::NETWORK_KEY,
        &me.secret,
        pair.server_id(),
    )
    .await
    .expect("handshake");
    let (r, mut w) = split(sock, &keys);
    let mut reader = ChunkReader::new(r);
    let request = |id: u32, path: &str, payload: Vec<u8>| {
        let mut head = vec![path.len() as u8];
        head.extend_from_slice(path.as_bytes());
        head.extend(payload);
        Chunk {
            id,
            prio: Priority::Normal,
            kind: ChunkKind::Head {
                last: true,
                has_body: false,
            },
            data: Bytes::from(head),
        }
        .encode()
    };
    let blob = rmp_serde::to_vec_named(&Blob { len: 16 << 20 }).expect("encode");
    w.send(&request(1, "test/blob", blob)).await.expect("send");
    let first = tokio::time::timeout(Duration::from_secs(30), reader.next())
        .await
        .expect("first chunk in time")
        .expect("first chunk");
    assert_eq!(first.id, 1);
    assert_eq!(
        first.kind,
        ChunkKind::Head {
            last: false,
            has_body: false
        }
    );
    let cancel = Chunk {
        id: 1,
        prio: Priority::High,
        kind: ChunkKind::Cancel,
        data: Bytes::new(),
    };
    let ping = rmp_serde::to_vec_named(&Ping(1)).expect("encode");
    let mut bytes = cancel.encode();
    bytes.extend(request(2, "test/ping", ping));
    w.send(&bytes).await.expect("send");

    let (mut parts, mut cancelled) = (1, false);
    loop {
        let c = tokio::time::timeout(Duration::from_secs(30), reader.next())
            .await
            .expect("the ping is answered")
            .expect("chunk");
        match (c.id, c.kind) {
            (1, ChunkKind::Head { last: false, .. }) if !cancelled => parts += 1,
            (1, ChunkKind::Cancel) if !cancelled => cancelled = true,
            (2, ChunkKind::Head { last: true, .. }) => break,
            other => panic!("unexpected chunk {other:?} (cancelled: {cancelled})"),
        }
    }
    println!("the server sent {parts} of 1025 chunks of the cancelled answer (then a cancel chunk: {cancelled})");
    assert!(
        cancelled,
        "the server stopped sending message 1 without telling the client"
    );
}

/// A TCP proxy for one connection that forwards at most `up` bytes towards `target` and `down`
/// bytes back, then closes its side of that direction (as a crashed peer or a cut link would).
async fn cutting_proxy(
    target: std::net::SocketAddr,
    up: usize,
    down: usize,
) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    async fn copy_at_most(
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        mut left: usize,
    ) {
        let mut buf = vec![0u8; 64 * 1024];
        while left > 0 {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n.min(left),
            };
            if to.write_all(&buf[..n]).await.is_err() {
                return;
            }
            left -= n;
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let (client, _) = listener.accept().await.expect("accept");
        let server = tokio::net::TcpStream::connect(target)
            .await
            .expect("connect");
        let (cr, cw) = client.into_split();
        let (sr, sw) = server.into_split();
        tokio::spawn(copy_at_most(cr, sw, up));
        tokio::spawn(copy_at_most(sr, cw, down));
    });
    addr
}

/// How a handler's request body ended, and whether the handler is gone (finished or aborted).
#[derive(Default)]
struct BodyOutcome(Mutex<Option<Result<u64, String>>>, Arc<AtomicBool>);

struct RecordHandler(Arc<BodyOutcome>);
impl StreamHandler<HashBody> for RecordHandler {
    async fn handle_stream(
        self: Arc<Self>,
        _msg: HashBody,
        _from: NodeId,
        body: Option<ByteStream>,
    ) -> Result<((u64, Vec<u8>), Option<ByteStream>), String> {
        let _gone = DropFlag(self.0 .1.clone());
        let res = hash_body(body.ok_or("no body")?).await;
        *self.0 .0.lock().expect("lock") = Some(res.as_ref().map(|r| r.0).map_err(|e| e.clone()));
        Ok((res?, None))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_cut_by_a_lost_connection_end_with_an_error() {
    const LEN: u64 = 8 << 20;
    let opts = CallOpts::new(Priority::Normal, Duration::from_secs(30));

    // Request body: the link to the server is cut after 2 MiB.
    let pair = Pair::new().await;
    let outcome = Arc::new(BodyOutcome::default());
    Endpoint::<HashBody>::new(pair.server.clone(), "test/hash")
        .set_stream_handler(Arc::new(RecordHandler(outcome.clone())));
    let client = garage::net::netapp::NetApp::new(
        garage::net::node_key::NodeKey::generate(),
        common::netpair::NETWORK_KEY,
        None,
    );
    let proxy = cutting_proxy(pair.addr, 2 << 20, usize::MAX).await;
    client
        .connect(proxy, pair.server_id())
        .await
        .expect("connect");
    let upload = Endpoint::<HashBody>::new(client.clone(), "test/hash");
    let res = upload
        .call_stream(
            pair.server_id(),
            &HashBody,
            Some(gen_body(2, LEN, None)),
            opts,
        )
        .await;
    assert!(res.is_err(), "the call cannot succeed");
    assert!(
        wait_until(Duration::from_secs(10), || outcome.1.load(Ordering::SeqCst)).await,
        "the handler finished or was aborted"
    );
    // The server aborts the handlers of a lost connection; one that still runs must see an error.
    let seen = outcome.0.lock().expect("lock").clone();
    println!("handler's view of a request body cut after 2 MiB: {seen:?} (None: aborted)");
    assert!(
        !matches!(seen, Some(Ok(_))),
        "a truncated request body must not look complete: {seen:?}"
    );

    // Response body: the link back to the client is cut after 2 MiB.
    let pair = Pair::new().await;
    Endpoint::<Download>::new(pair.server.clone(), "test/download")
        .set_stream_handler(Arc::new(DownloadHandler));
    let client = garage::net::netapp::NetApp::new(
        garage::net::node_key::NodeKey::generate(),
        common::netpair::NETWORK_KEY,
        None,
    );
    let proxy = cutting_proxy(pair.addr, usize::MAX, 2 << 20).await;
    client
        .connect(proxy, pair.server_id())
        .await
        .expect("connect");
    let download = Endpoint::<Download>::new(client.clone(), "test/download");
    let (_, body) = download
        .call_stream(
            pair.server_id(),
            &Download { seed: 4, len: LEN },
            None,
            opts,
        )
        .await
        .expect("the head arrives before the cut");
    let seen = hash_body(body.expect("body")).await.map(|r| r.0);
    println!("caller's view of a response body cut after 2 MiB: {seen:?}");
    assert!(
        seen.is_err(),
        "a truncated response body must not look complete: {seen:?}"
    );
}
