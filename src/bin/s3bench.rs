//! `s3bench`: throughput and latency percentiles of PUT, GET, LIST and DELETE against any S3
//! endpoint (plain HTTP), so that Garage and other servers can be measured the same way.
//!
//! ```text
//! s3bench --endpoint http://127.0.0.1:3900 --region garage --access-key GK… --secret-key … \
//!         --bucket default --sizes 1KiB:500,1MiB:100,64MiB:32 --concurrency 1,32
//! ```
//!
//! For every (size, concurrency) cell: PUT `count` objects, GET them all, LIST the cell's prefix
//! `--lists` times, DELETE them all, each phase with `concurrency` workers, one keep-alive
//! HTTP/1.1 connection per worker. Requests are signed with SigV4 (`UNSIGNED-PAYLOAD`).
//! Object bodies are generated while they are sent (a shared random pool, with a unique stamp
//! every 64 KiB so that no two blocks are equal and nothing is deduplicated), and GET bodies
//! are counted and dropped: memory stays small whatever the size and concurrency.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail, Context as _};
use bytes::Bytes;
use clap::Parser;
use http::{HeaderMap, HeaderValue, Method, Request};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rand::RngCore;
use tokio::net::TcpStream;

use garage::api::signature::canonical::uri_encode;
use garage::api::signature::sign::{sign_request, SigningParams};
use garage::util::size::parse_size;

/// Measures an S3 endpoint: PUT, GET, LIST and DELETE throughput and latency percentiles.
#[derive(Parser, Debug)]
#[command(name = "s3bench", version)]
struct Args {
    /// S3 endpoint (http://host:port; HTTPS is not supported)
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    endpoint: String,
    /// Region the requests are signed for
    #[arg(long, env = "AWS_REGION", default_value = "garage")]
    region: String,
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide_env_values = true)]
    access_key: String,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    secret_key: String,
    /// Bucket to work in (must exist, unless --create-bucket)
    #[arg(long, env = "S3BENCH_BUCKET")]
    bucket: String,
    /// Create the bucket first (an existing bucket owned by the key is fine)
    #[arg(long)]
    create_bucket: bool,
    /// Object sizes, each optionally with its object count: 1KiB:500,1MiB,64MiB:32
    #[arg(long, default_value = "1KiB:500,1MiB:100,64MiB:32")]
    sizes: String,
    /// Object count for sizes given without one
    #[arg(long, default_value_t = 100)]
    count: u64,
    /// Concurrency levels (number of workers, each with its own connection)
    #[arg(long, default_value = "1,32")]
    concurrency: String,
    /// Phases to run, in this order: put, get, list, delete. `get` and `delete` alone work on
    /// the objects of an earlier run with the same --prefix, sizes, counts and concurrency
    #[arg(long, default_value = "put,get,list,delete")]
    ops: String,
    /// LIST requests per cell (ListObjectsV2 of the cell's prefix, max-keys 1000)
    #[arg(long, default_value_t = 50)]
    lists: u64,
    /// Prefix of every key written
    #[arg(long, default_value = "s3bench/")]
    prefix: String,
    /// Timeout of one request, in seconds
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// Also append the results to this CSV file (with a header line if it is new)
    #[arg(long)]
    csv: Option<std::path::PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Put,
    Get,
    List,
    Delete,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Put => "PUT",
            Op::Get => "GET",
            Op::List => "LIST",
            Op::Delete => "DELETE",
        }
    }
}

/// Where and how to send requests.
struct Target {
    addr: String,
    host: HeaderValue,
    region: String,
    access_key: String,
    secret_key: String,
    bucket: String,
    timeout: Duration,
    pool: Bytes,
}

/// Size of the random pool bodies are cut from.
const POOL_SIZE: usize = 8 << 20;
/// A unique 16-byte stamp starts every chunk of this size.
const CHUNK: u64 = 64 << 10;
const STAMP: u64 = 16;

/// A generated request body: `len` bytes, in chunks of a 16-byte stamp (object seed, offset)
/// followed by a slice of the shared pool at a position that depends on both.
struct GenBody {
    pool: Bytes,
    seed: u64,
    len: u64,
    offset: u64,
    /// The pool slice that follows the stamp just sent.
    pending: Option<Bytes>,
}

impl GenBody {
    fn new(pool: Bytes, seed: u64, len: u64) -> Self {
        Self {
            pool,
            seed,
            len,
            offset: 0,
            pending: None,
        }
    }

    fn empty() -> Self {
        Self::new(Bytes::new(), 0, 0)
    }
}

impl Body for GenBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(p) = self.pending.take() {
            self.offset += p.len() as u64;
            return Poll::Ready(Some(Ok(Frame::data(p))));
        }
        let left = self.len - self.offset;
        if left == 0 {
            return Poll::Ready(None);
        }
        let chunk = left.min(CHUNK);
        let mut stamp = [0u8; STAMP as usize];
        stamp[..8].copy_from_slice(&self.seed.to_le_bytes());
        stamp[8..].copy_from_slice(&self.offset.to_le_bytes());
        let stamp_len = chunk.min(STAMP) as usize;
        let rest = chunk - stamp_len as u64;
        if rest > 0 {
            let span = (self.pool.len() as u64).saturating_sub(rest).max(1);
            let pos = (self
                .seed
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add(self.offset.wrapping_mul(31)))
                % span;
            self.pending = Some(self.pool.slice(pos as usize..(pos + rest) as usize));
        }
        self.offset += stamp_len as u64;
        Poll::Ready(Some(Ok(Frame::data(Bytes::copy_from_slice(
            &stamp[..stamp_len],
        )))))
    }

    fn is_end_stream(&self) -> bool {
        self.pending.is_none() && self.offset == self.len
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len - self.offset)
    }
}

/// One keep-alive connection, reopened after an error.
struct Conn {
    sender: Option<SendRequest<GenBody>>,
}

impl Conn {
    async fn sender(&mut self, t: &Target) -> anyhow::Result<&mut SendRequest<GenBody>> {
        if let Some(s) = &self.sender {
            if s.is_closed() {
                self.sender = None;
            }
        }
        if self.sender.is_none() {
            let stream = TcpStream::connect(&t.addr)
                .await
                .with_context(|| format!("cannot connect to {}", t.addr))?;
            stream.set_nodelay(true)?;
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .context("HTTP handshake")?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.sender = Some(sender);
        }
        let s = self
            .sender
            .as_mut()
            .ok_or_else(|| anyhow!("no connection"))?;
        s.ready().await.context("connection not ready")?;
        Ok(s)
    }

    /// Sends a signed request; returns the status and the number of body bytes received (the
    /// body itself is kept only if `keep_body`, for LIST and errors).
    async fn send(
        &mut self,
        t: &Target,
        method: Method,
        key: Option<&str>,
        query: &str,
        body: GenBody,
        keep_body: bool,
    ) -> anyhow::Result<(http::StatusCode, u64, Vec<u8>)> {
        let mut path = format!("/{}", uri_encode(t.bucket.as_bytes(), true));
        if let Some(k) = key {
            path.push('/');
            path.push_str(&uri_encode(k.as_bytes(), false));
        }
        let mut headers = HeaderMap::new();
        headers.insert(http::header::HOST, t.host.clone());
        headers.insert(
            "x-amz-content-sha256",
            HeaderValue::from_static("UNSIGNED-PAYLOAD"),
        );
        let params = SigningParams {
            access_key_id: &t.access_key,
            secret_key: &t.secret_key,
            region: &t.region,
            service: "s3",
            time: SystemTime::now(),
        };
        sign_request(
            method.as_str(),
            &path,
            query,
            &mut headers,
            "UNSIGNED-PAYLOAD",
            &params,
        )
        .map_err(|e| anyhow!("signing: {e}"))?;
        let uri = if query.is_empty() {
            path
        } else {
            format!("{path}?{query}")
        };
        let len = body.len;
        let mut req = Request::builder().method(method.clone()).uri(uri);
        if let Some(h) = req.headers_mut() {
            h.extend(headers);
            if method == Method::PUT || len > 0 {
                h.insert(http::header::CONTENT_LENGTH, HeaderValue::from(len));
            }
        }
        let req = req.body(body)?;
        let fut = async {
            let sender = self.sender(t).await?;
            let resp = sender.send_request(req).await?;
            let status = resp.status();
            let mut body = resp.into_body();
            let mut n = 0u64;
            let mut kept = vec![];
            while let Some(frame) = body.frame().await {
                if let Ok(data) = frame?.into_data() {
                    n += data.len() as u64;
                    if keep_body || !status.is_success() {
                        kept.extend_from_slice(&data);
                    }
                }
            }
            Ok::<_, anyhow::Error>((status, n, kept))
        };
        match tokio::time::timeout(t.timeout, fut).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => {
                self.sender = None;
                Err(e)
            }
            Err(_) => {
                self.sender = None;
                bail!("timed out after {:?}", t.timeout)
            }
        }
    }
}

/// One (size, concurrency) cell.
#[derive(Clone)]
struct Cell {
    size: u64,
    count: u64,
    concurrency: usize,
}

impl Cell {
    fn dir(&self, prefix: &str) -> String {
        format!("{prefix}{}-c{}/", human(self.size), self.concurrency)
    }
}

/// The measurements of one phase.
struct PhaseResult {
    op: Op,
    cell: Cell,
    ops: u64,
    bytes: u64,
    wall: Duration,
    latencies: Vec<Duration>,
    errors: u64,
    first_error: Option<String>,
}

impl PhaseResult {
    fn percentile(&self, p: f64) -> Option<Duration> {
        if self.latencies.is_empty() {
            return None;
        }
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        Some(self.latencies[rank.clamp(1, self.latencies.len()) - 1])
    }
}

async fn run_phase(t: Arc<Target>, op: Op, cell: &Cell, prefix: &str, lists: u64) -> PhaseResult {
    let total = if op == Op::List { lists } else { cell.count };
    let next = Arc::new(AtomicU64::new(0));
    let dir = cell.dir(prefix);
    let start = Instant::now();
    let mut workers = vec![];
    for _ in 0..cell.concurrency.max(1) {
        let (t, next, dir, size) = (t.clone(), next.clone(), dir.clone(), cell.size);
        workers.push(tokio::spawn(async move {
            let mut conn = Conn { sender: None };
            let mut lat = vec![];
            let (mut bytes, mut errors, mut first_error) = (0u64, 0u64, None);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let key = format!("{dir}{i:08}");
                let seed = rand::random::<u64>();
                let t0 = Instant::now();
                let res = match op {
                    Op::Put => {
                        let body = GenBody::new(t.pool.clone(), seed, size);
                        conn.send(&t, Method::PUT, Some(&key), "", body, false)
                            .await
                    }
                    Op::Get => {
                        conn.send(&t, Method::GET, Some(&key), "", GenBody::empty(), false)
                            .await
                    }
                    Op::List => {
                        let q = format!(
                            "list-type=2&max-keys=1000&prefix={}",
                            uri_encode(dir.as_bytes(), true)
                        );
                        conn.send(&t, Method::GET, None, &q, GenBody::empty(), false)
                            .await
                    }
                    Op::Delete => {
                        conn.send(&t, Method::DELETE, Some(&key), "", GenBody::empty(), false)
                            .await
                    }
                };
                let elapsed = t0.elapsed();
                let err = match res {
                    Ok((status, n, _)) if status.is_success() => {
                        bytes += match op {
                            Op::Put => size,
                            Op::Get => n,
                            _ => 0,
                        };
                        if op == Op::Get && n != size {
                            Some(format!("GET {key}: {n} bytes instead of {size}"))
                        } else {
                            lat.push(elapsed);
                            None
                        }
                    }
                    Ok((status, _, body)) => Some(format!(
                        "{} {key}: HTTP {status}: {}",
                        op.name(),
                        String::from_utf8_lossy(&body[..body.len().min(300)])
                    )),
                    Err(e) => Some(format!("{} {key}: {e:#}", op.name())),
                };
                if let Some(e) = err {
                    errors += 1;
                    first_error.get_or_insert(e);
                }
            }
            (lat, bytes, errors, first_error)
        }));
    }
    let mut r = PhaseResult {
        op,
        cell: cell.clone(),
        ops: 0,
        bytes: 0,
        wall: Duration::ZERO,
        latencies: vec![],
        errors: 0,
        first_error: None,
    };
    for w in workers {
        match w.await {
            Ok((lat, bytes, errors, first_error)) => {
                r.latencies.extend(lat);
                r.bytes += bytes;
                r.errors += errors;
                if r.first_error.is_none() {
                    r.first_error = first_error;
                }
            }
            Err(e) => {
                r.errors += 1;
                r.first_error.get_or_insert(format!("worker failed: {e}"));
            }
        }
    }
    r.wall = start.elapsed();
    r.ops = r.latencies.len() as u64;
    r.latencies.sort();
    r
}

/// `1KiB`, `64MiB`, or the number of bytes.
fn human(n: u64) -> String {
    for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if n >= 1 << shift && n % (1 << shift) == 0 {
            return format!("{}{unit}", n >> shift);
        }
    }
    format!("{n}B")
}

fn ms(d: Option<Duration>) -> String {
    d.map(|d| format!("{:.2}", d.as_secs_f64() * 1000.0))
        .unwrap_or_else(|| "-".into())
}

fn parse_cells(args: &Args) -> anyhow::Result<Vec<Cell>> {
    let mut sizes = vec![];
    for item in args.sizes.split(',').filter(|s| !s.trim().is_empty()) {
        let (size, count) = match item.split_once(':') {
            Some((s, c)) => (
                s,
                c.trim()
                    .parse::<u64>()
                    .with_context(|| format!("bad object count in {item:?}"))?,
            ),
            None => (item, args.count),
        };
        let size = parse_size(size)?;
        sizes.push((size, count));
    }
    let mut cells = vec![];
    for (size, count) in sizes {
        for c in args.concurrency.split(',').filter(|s| !s.trim().is_empty()) {
            let concurrency: usize = c
                .trim()
                .parse()
                .with_context(|| format!("bad concurrency {c:?}"))?;
            if concurrency == 0 {
                bail!("concurrency must be at least 1");
            }
            cells.push(Cell {
                size,
                count,
                concurrency,
            });
        }
    }
    if cells.is_empty() {
        bail!("nothing to measure: --sizes and --concurrency are empty");
    }
    Ok(cells)
}

fn parse_ops(s: &str) -> anyhow::Result<Vec<Op>> {
    let mut ops = vec![];
    for o in s.split(',').map(|o| o.trim().to_ascii_lowercase()) {
        ops.push(match o.as_str() {
            "put" => Op::Put,
            "get" => Op::Get,
            "list" => Op::List,
            "delete" => Op::Delete,
            "" => continue,
            _ => bail!("unknown operation {o:?} (put, get, list, delete)"),
        });
    }
    // Always in the natural order.
    ops.sort_by_key(|o| *o as u8);
    ops.dedup();
    Ok(ops)
}

const HEADER: &str =
    "op      size    conc   count      ops/s      MiB/s   p50 ms   p99 ms   max ms  errors";

fn row(r: &PhaseResult) -> String {
    let secs = r.wall.as_secs_f64().max(1e-9);
    let mibs = if matches!(r.op, Op::Put | Op::Get) {
        format!("{:.1}", r.bytes as f64 / secs / (1 << 20) as f64)
    } else {
        "-".into()
    };
    format!(
        "{:<6} {:>6} {:>6} {:>7} {:>10.1} {:>10} {:>8} {:>8} {:>8} {:>7}",
        r.op.name(),
        human(r.cell.size),
        r.cell.concurrency,
        r.ops,
        r.ops as f64 / secs,
        mibs,
        ms(r.percentile(50.0)),
        ms(r.percentile(99.0)),
        ms(r.latencies.last().copied()),
        r.errors
    )
}

fn csv_line(r: &PhaseResult) -> String {
    let secs = r.wall.as_secs_f64().max(1e-9);
    format!(
        "{},{},{},{},{:.6},{:.3},{:.3},{},{},{}",
        r.op.name(),
        r.cell.size,
        r.cell.concurrency,
        r.ops,
        secs,
        r.ops as f64 / secs,
        r.bytes as f64 / secs / (1 << 20) as f64,
        ms(r.percentile(50.0)),
        ms(r.percentile(99.0)),
        r.errors
    )
}

fn target(args: &Args) -> anyhow::Result<Target> {
    let rest = match args.endpoint.strip_prefix("http://") {
        Some(r) => r,
        None if args.endpoint.starts_with("https://") => {
            bail!("HTTPS endpoints are not supported (plain HTTP/1.1 only)")
        }
        None => args.endpoint.as_str(),
    };
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() || authority.contains('/') {
        bail!(
            "--endpoint must be http://host[:port] (path-style requests are sent to it), got {:?}",
            args.endpoint
        );
    }
    let addr = if authority.rsplit_once(':').is_some_and(|(_, p)| {
        !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) && !p.contains(']')
    }) && !authority.ends_with(']')
    {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let mut pool = vec![0u8; POOL_SIZE];
    rand::thread_rng().fill_bytes(&mut pool);
    Ok(Target {
        addr,
        host: HeaderValue::from_str(authority)?,
        region: args.region.clone(),
        access_key: args.access_key.clone(),
        secret_key: args.secret_key.clone(),
        bucket: args.bucket.clone(),
        timeout: Duration::from_secs(args.timeout.max(1)),
        pool: Bytes::from(pool),
    })
}

async fn run(args: Args) -> anyhow::Result<bool> {
    let cells = parse_cells(&args)?;
    let ops = parse_ops(&args.ops)?;
    let t = Arc::new(target(&args)?);

    let mut conn = Conn { sender: None };
    if args.create_bucket {
        let (status, _, body) = conn
            .send(&t, Method::PUT, None, "", GenBody::empty(), true)
            .await?;
        let text = String::from_utf8_lossy(&body);
        if !status.is_success() && !text.contains("BucketAlreadyOwnedByYou") {
            bail!("cannot create bucket {}: HTTP {status}: {text}", t.bucket);
        }
    }
    // Check the endpoint, the credentials and the bucket before measuring anything.
    let (status, _, body) = conn
        .send(
            &t,
            Method::GET,
            None,
            "list-type=2&max-keys=1",
            GenBody::empty(),
            true,
        )
        .await?;
    if !status.is_success() {
        bail!(
            "cannot list bucket {} at {}: HTTP {status}: {}",
            t.bucket,
            args.endpoint,
            String::from_utf8_lossy(&body)
        );
    }
    drop(conn);

    println!(
        "s3bench: {} bucket {} ({} cells, ops {})",
        args.endpoint,
        t.bucket,
        cells.len(),
        args.ops
    );
    println!("{HEADER}");
    let mut csv = match &args.csv {
        Some(p) => {
            let new = !p.exists();
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("cannot open {}", p.display()))?;
            if new {
                use std::io::Write;
                writeln!(
                    f,
                    "op,size,concurrency,ops,seconds,ops_per_s,mib_per_s,p50_ms,p99_ms,errors"
                )?;
            }
            Some(f)
        }
        None => None,
    };
    let mut ok = true;
    for cell in &cells {
        for &op in &ops {
            let r = run_phase(t.clone(), op, cell, &args.prefix, args.lists).await;
            println!("{}", row(&r));
            if let Some(f) = csv.as_mut() {
                use std::io::Write;
                writeln!(f, "{}", csv_line(&r))?;
            }
            if let Some(e) = &r.first_error {
                ok = false;
                eprintln!("  {} error(s), first: {e}", r.errors);
            }
        }
    }
    Ok(ok)
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("s3bench: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("s3bench: some requests failed");
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("s3bench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
