//! The HTTP/1.1 server loop shared by the S3, website and admin endpoints: accept with
//! TCP_NODELAY, serve each connection with keep-alive, and stop accepting on the stop signal.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::s3::ResBody;

/// Something that answers HTTP requests.
pub trait HttpHandler: Send + Sync + 'static {
    fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> impl Future<Output = Response<ResBody>> + Send;
}

/// Binds `addr` and serves `handler` on it until `stop` turns true. `what` names the endpoint
/// in logs.
pub async fn start<H: HttpHandler>(
    what: &'static str,
    handler: Arc<H>,
    addr: SocketAddr,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    info!("{} listening on http://{}", what, addr);
    tokio::spawn(async move {
        loop {
            let (sock, peer) = tokio::select! {
                a = listener.accept() => match a {
                    Ok(a) => a,
                    Err(e) => {
                        warn!("{}: accept failed: {}", what, e);
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                },
                _ = stop.changed() => return,
            };
            let _ = sock.set_nodelay(true);
            let h = handler.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let h = h.clone();
                    async move { Ok::<_, Infallible>(h.handle(req, peer).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .max_buf_size(64 * 1024)
                    .serve_connection(TokioIo::new(sock), service);
                if let Err(e) = conn.await {
                    debug!("{} connection from {} ended: {}", what, peer, e);
                }
            });
        }
    });
    Ok(())
}
