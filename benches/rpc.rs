//! RPC benchmark: two `NetApp`s in one process over loopback TCP, next to a plain tokio TCP
//! request/response baseline measured in the same run, with the ratio.
//!
//! Measured:
//! - small RPC round trips per second (a typed `u64` request and answer), sequential and with 32
//!   concurrent callers (garage: 32 callers multiplexed on one connection; TCP: 32 connections);
//! - MB/s for 1 MiB requests answered with their length, the 1 MiB sent as a streamed request
//!   body and as a plain (msgpack bin) payload; TCP: a 1 MiB length-prefixed message answered by
//!   an 8-byte length;
//! - the round-trip time of High-priority pings while Background 1 MiB uploads saturate the
//!   same connection.
//!
//! Run with `cargo bench --bench rpc` (about 40 s). `BENCH_SECS` changes the time per case.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use garage::net::frame::Priority;
use garage::net::netapp::NetApp;
use garage::net::node_key::NodeKey;
use garage::net::ByteStream;
use garage::rpc::endpoint::{CallOpts, Endpoint, Handler, Rpc, StreamHandler};
use garage::util::ids::NodeId;

const MIB: usize = 1 << 20;
const SMALL: usize = 16;
const CONCURRENCY: usize = 32;
const TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Serialize, Deserialize)]
struct Ping(u64);
impl Rpc for Ping {
    type Response = u64;
}
struct PingHandler;
impl Handler<Ping> for PingHandler {
    async fn handle(self: Arc<Self>, msg: Ping, _from: NodeId) -> Result<u64, String> {
        Ok(msg.0 + 1)
    }
}

/// A plain payload: the bytes are part of the message head.
#[derive(Serialize, Deserialize)]
struct Put(#[serde(with = "serde_bytes")] Vec<u8>);
impl Rpc for Put {
    type Response = u64;
}
struct PutHandler;
impl Handler<Put> for PutHandler {
    async fn handle(self: Arc<Self>, msg: Put, _from: NodeId) -> Result<u64, String> {
        Ok(msg.0.len() as u64)
    }
}

/// A streamed request body; answered with its length.
#[derive(Serialize, Deserialize)]
struct Upload;
impl Rpc for Upload {
    type Response = u64;
}
struct UploadHandler;
impl StreamHandler<Upload> for UploadHandler {
    async fn handle_stream(
        self: Arc<Self>,
        _msg: Upload,
        _from: NodeId,
        body: Option<ByteStream>,
    ) -> Result<(u64, Option<ByteStream>), String> {
        let mut body = body.ok_or("no body")?;
        let mut n = 0u64;
        while let Some(piece) = body.next().await {
            n += piece?.len() as u64;
        }
        Ok((n, None))
    }
}

fn one_piece(data: &Bytes) -> ByteStream {
    Box::pin(futures::stream::iter(vec![Ok(data.clone())]))
}

struct Rpcs {
    to: NodeId,
    ping: Endpoint<Ping>,
    put: Endpoint<Put>,
    upload: Endpoint<Upload>,
    _stop: watch::Sender<bool>,
}

async fn setup_rpc() -> Rpcs {
    let key = [42u8; 32];
    let server = NetApp::new(NodeKey::generate(), key, None);
    let client = NetApp::new(NodeKey::generate(), key, None);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stop_rx) = watch::channel(false);
    tokio::spawn(server.clone().listen(listener, stop_rx));
    client.connect(addr, server.id).await.expect("connect");
    Endpoint::<Ping>::new(server.clone(), "bench/ping").set_handler(Arc::new(PingHandler));
    Endpoint::<Put>::new(server.clone(), "bench/put").set_handler(Arc::new(PutHandler));
    Endpoint::<Upload>::new(server.clone(), "bench/upload")
        .set_stream_handler(Arc::new(UploadHandler));
    Rpcs {
        to: server.id,
        ping: Endpoint::new(client.clone(), "bench/ping"),
        put: Endpoint::new(client.clone(), "bench/put"),
        upload: Endpoint::new(client, "bench/upload"),
        _stop: stop,
    }
}

/// Plain TCP server: length-prefixed requests; a request of `SMALL` bytes is echoed, a larger
/// one is answered with its length (8 bytes).
async fn tcp_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            sock.set_nodelay(true).expect("nodelay");
            tokio::spawn(async move {
                let mut buf = vec![0u8; MIB];
                loop {
                    let Ok(len) = sock.read_u32().await else {
                        return;
                    };
                    let len = len as usize;
                    if buf.len() < len {
                        buf.resize(len, 0);
                    }
                    if sock.read_exact(&mut buf[..len]).await.is_err() {
                        return;
                    }
                    let res = if len == SMALL {
                        let mut out = (len as u32).to_be_bytes().to_vec();
                        out.extend_from_slice(&buf[..len]);
                        sock.write_all(&out).await
                    } else {
                        let mut out = 8u32.to_be_bytes().to_vec();
                        out.extend_from_slice(&(len as u64).to_be_bytes());
                        sock.write_all(&out).await
                    };
                    if res.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

async fn tcp_client(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).await.expect("connect");
    s.set_nodelay(true).expect("nodelay");
    s
}

/// One request/response on a plain TCP connection.
async fn tcp_call(sock: &mut TcpStream, req: &[u8], resp: &mut Vec<u8>) {
    let mut msg = Vec::with_capacity(4 + req.len());
    msg.extend_from_slice(&(req.len() as u32).to_be_bytes());
    msg.extend_from_slice(req);
    sock.write_all(&msg).await.expect("write");
    let len = sock.read_u32().await.expect("read") as usize;
    resp.resize(len, 0);
    sock.read_exact(resp).await.expect("read");
}

/// Runs `workers` loops of `op` for `secs` (after a short warm-up); returns operations/second.
async fn measure<F, Fut>(secs: f64, workers: usize, op: F) -> f64
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let warmup = Duration::from_millis(300);
    let run = Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut tasks = vec![];
    for w in 0..workers {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            loop {
                op(w).await;
                let t = start.elapsed();
                if t >= warmup + run {
                    return n;
                }
                if t >= warmup {
                    n += 1;
                }
            }
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("worker");
    }
    total as f64 / run.as_secs_f64()
}

struct Row {
    name: &'static str,
    unit: &'static str,
    rpc: f64,
    tcp: f64,
}

fn main() {
    let secs: f64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run(secs));
}

async fn run(secs: f64) {
    let rpcs = Arc::new(setup_rpc().await);
    let tcp_addr = tcp_server().await;
    let high = CallOpts::new(Priority::High, TIMEOUT);
    let normal = CallOpts::new(Priority::Normal, TIMEOUT);
    let big = Bytes::from(vec![0x5au8; MIB]);
    let mut rows = vec![];

    println!("garage RPC benchmark: loopback, 2 tokio worker threads, {secs} s per case\n");

    // Small round trips, sequential.
    let r = rpcs.clone();
    let rpc = measure(secs, 1, move |_| {
        let r = r.clone();
        async move {
            let v = r.ping.call(r.to, &Ping(1), high).await.expect("ping");
            assert_eq!(v, 2);
        }
    })
    .await;
    let conns = Arc::new(tokio::sync::Mutex::new(tcp_client(tcp_addr).await));
    let c = conns.clone();
    let tcp = measure(secs, 1, move |_| {
        let c = c.clone();
        async move {
            let mut resp = vec![];
            tcp_call(&mut *c.lock().await, &[1u8; SMALL], &mut resp).await;
        }
    })
    .await;
    rows.push(Row {
        name: "small RPC, sequential",
        unit: "req/s",
        rpc,
        tcp,
    });

    // Small round trips, 32 concurrent callers.
    let r = rpcs.clone();
    let rpc = measure(secs, CONCURRENCY, move |_| {
        let r = r.clone();
        async move {
            r.ping.call(r.to, &Ping(1), high).await.expect("ping");
        }
    })
    .await;
    let mut pool = vec![];
    for _ in 0..CONCURRENCY {
        pool.push(tokio::sync::Mutex::new(tcp_client(tcp_addr).await));
    }
    let pool = Arc::new(pool);
    let p = pool.clone();
    let tcp = measure(secs, CONCURRENCY, move |w| {
        let p = p.clone();
        async move {
            let mut resp = vec![];
            tcp_call(&mut *p[w].lock().await, &[1u8; SMALL], &mut resp).await;
        }
    })
    .await;
    rows.push(Row {
        name: "small RPC, 32 concurrent",
        unit: "req/s",
        rpc,
        tcp,
    });

    // 1 MiB, TCP baseline (the same for both forms of the RPC).
    let c = conns.clone();
    let payload = vec![0x5au8; MIB];
    let tcp_mb = measure(secs, 1, move |_| {
        let c = c.clone();
        let payload = payload.clone();
        async move {
            let mut resp = vec![];
            tcp_call(&mut *c.lock().await, &payload, &mut resp).await;
        }
    })
    .await
        * MIB as f64
        / 1e6;

    // 1 MiB streamed request body.
    let r = rpcs.clone();
    let b = big.clone();
    let rpc = measure(secs, 1, move |_| {
        let r = r.clone();
        let b = b.clone();
        async move {
            let (n, _) = r
                .upload
                .call_stream(r.to, &Upload, Some(one_piece(&b)), normal)
                .await
                .expect("upload");
            assert_eq!(n, MIB as u64);
        }
    })
    .await
        * MIB as f64
        / 1e6;
    rows.push(Row {
        name: "1 MiB request, streamed body",
        unit: "MB/s",
        rpc,
        tcp: tcp_mb,
    });

    // 1 MiB plain payload.
    let r = rpcs.clone();
    let rpc = measure(secs, 1, move |_| {
        let r = r.clone();
        async move {
            let n = r
                .put
                .call(r.to, &Put(vec![0x5au8; MIB]), normal)
                .await
                .expect("put");
            assert_eq!(n, MIB as u64);
        }
    })
    .await
        * MIB as f64
        / 1e6;
    rows.push(Row {
        name: "1 MiB request, plain payload",
        unit: "MB/s",
        rpc,
        tcp: tcp_mb,
    });

    // 1 MiB streamed, 4 concurrent callers vs 4 TCP connections.
    let r = rpcs.clone();
    let b = big.clone();
    let rpc = measure(secs, 4, move |_| {
        let r = r.clone();
        let b = b.clone();
        async move {
            r.upload
                .call_stream(r.to, &Upload, Some(one_piece(&b)), normal)
                .await
                .expect("upload");
        }
    })
    .await
        * MIB as f64
        / 1e6;
    let p = pool.clone();
    let payload = vec![0x5au8; MIB];
    let tcp = measure(secs, 4, move |w| {
        let p = p.clone();
        let payload = payload.clone();
        async move {
            let mut resp = vec![];
            tcp_call(&mut *p[w].lock().await, &payload, &mut resp).await;
        }
    })
    .await
        * MIB as f64
        / 1e6;
    rows.push(Row {
        name: "1 MiB streamed body, 4 concurrent",
        unit: "MB/s",
        rpc,
        tcp,
    });

    println!(
        "{:<36} {:>14} {:>14} {:>8}",
        "case", "garage RPC", "plain TCP", "RPC/TCP"
    );
    for row in &rows {
        println!(
            "{:<36} {:>8.0} {:<5} {:>8.0} {:<5} {:>8.2}",
            row.name,
            row.rpc,
            row.unit,
            row.tcp,
            row.unit,
            row.rpc / row.tcp
        );
    }

    // Pings while Background uploads saturate the connection.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut bulk = vec![];
    for _ in 0..4 {
        let r = rpcs.clone();
        let b = big.clone();
        let stop = stop.clone();
        bulk.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                r.upload
                    .call_stream(
                        r.to,
                        &Upload,
                        Some(one_piece(&b)),
                        CallOpts::new(Priority::Background, TIMEOUT),
                    )
                    .await
                    .expect("upload");
                n += 1;
            }
            n
        }));
    }
    let mut rtts = vec![];
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    while start.elapsed() < Duration::from_secs_f64(secs) {
        tick.tick().await;
        let t = Instant::now();
        rpcs.ping.call(rpcs.to, &Ping(0), high).await.expect("ping");
        rtts.push(t.elapsed());
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut uploaded = 0;
    for b in bulk {
        uploaded += b.await.expect("bulk");
    }
    let bulk_mb = uploaded as f64 * MIB as f64 / 1e6 / start.elapsed().as_secs_f64();
    rtts.sort();
    let pct = |p: f64| rtts[((rtts.len() - 1) as f64 * p).round() as usize];
    println!(
        "\nHigh-priority ping during 4 concurrent Background 1 MiB uploads ({bulk_mb:.0} MB/s): \
         {} pings, RTT min {:?}, median {:?}, p99 {:?}, max {:?}",
        rtts.len(),
        rtts[0],
        pct(0.5),
        pct(0.99),
        rtts[rtts.len() - 1]
    );
}
