//! The admin HTTP endpoint (`[admin] api_bind_addr`): `/health` (200 when this node can serve
//! reads and writes: a layout exists and a quorum of each partition's nodes is up, else 503),
//! `/metrics` (Prometheus text; requires `metrics_token` as a bearer token when one is set or
//! `metrics_require_token`), and `/check?domain=D` (200 if D is a bucket served as a website,
//! for reverse proxies that issue TLS certificates on demand).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use super::s3::{full_body, ResBody, S3Api};
use crate::api::signature::canonical::parse_query;
use crate::block::manager::BlockManager;
use crate::config::ConsistencyMode;
use crate::layout::manager::LayoutManager;
use crate::table::registry::TableRegistry;
use crate::table::replication::quorums;

/// The admin HTTP server.
pub struct AdminHttp {
    pub layout: Arc<LayoutManager>,
    pub tables: Arc<TableRegistry>,
    pub blocks: Arc<BlockManager>,
    pub replication_factor: usize,
    pub consistency: ConsistencyMode,
    pub s3: Arc<S3Api>,
    pub metrics_token: Option<String>,
    pub metrics_require_token: bool,
}

fn text(status: StatusCode, body: String) -> Response<ResBody> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(full_body(body))
        .unwrap_or_else(|_| Response::new(full_body("")))
}

impl AdminHttp {
    /// Whether every partition has a write quorum of up nodes (and so a read quorum).
    fn health(&self) -> (bool, String) {
        let up: BTreeSet<_> = self
            .layout
            .system
            .known_nodes()
            .into_iter()
            .filter(|n| n.is_up)
            .map(|n| n.id)
            .collect();
        let (version, degraded) = self.layout.read(|h| {
            let v = h.current().version;
            let (_, w) = quorums(self.replication_factor, self.consistency);
            let bad = (0..=255u8)
                .filter(|p| {
                    h.write_versions().any(|lv| {
                        lv.assignment.as_ref().is_some_and(|a| {
                            a.partition_nodes(*p)
                                .iter()
                                .filter(|n| up.contains(n))
                                .count()
                                < w.min(a.partition_nodes(*p).len())
                        })
                    })
                })
                .count();
            (v, bad)
        });
        if version == 0 {
            return (false, "no cluster layout applied yet\n".into());
        }
        (
            degraded == 0,
            format!(
                "layout version {version}; {} node(s) up; {degraded} of 256 partitions below write quorum\n",
                up.len()
            ),
        )
    }

    fn metrics(&self) -> String {
        let mut out = String::new();
        out.push_str("# TYPE garage_table_items gauge\n");
        for t in self.tables.all() {
            if let Ok(s) = t.stats() {
                out.push_str(&format!(
                    "garage_table_items{{table=\"{}\"}} {}\n",
                    s.table, s.items
                ));
                out.push_str(&format!(
                    "garage_table_merkle_todo{{table=\"{}\"}} {}\ngarage_table_gc_todo{{table=\"{}\"}} {}\ngarage_table_insert_queue{{table=\"{}\"}} {}\n",
                    s.table, s.merkle_todo, s.table, s.gc_todo, s.table, s.insert_queue
                ));
            }
        }
        let (live, all) = self.blocks.rc_counts();
        out.push_str(&format!(
            "# TYPE garage_blocks_referenced gauge\ngarage_blocks_referenced {live}\ngarage_blocks_rc_entries {all}\ngarage_block_resync_queue_length {}\n",
            self.blocks.resync_queue_len()
        ));
        let nodes = self.layout.system.known_nodes();
        out.push_str(&format!(
            "# TYPE garage_cluster_nodes gauge\ngarage_cluster_nodes_known {}\ngarage_cluster_nodes_up {}\ngarage_cluster_layout_version {}\n",
            nodes.len(),
            nodes.iter().filter(|n| n.is_up).count(),
            self.layout.read(|h| h.current().version)
        ));
        out
    }

    async fn answer(&self, req: Request<Incoming>) -> Response<ResBody> {
        match req.uri().path() {
            "/health" => {
                let (ok, msg) = self.health();
                text(
                    if ok {
                        StatusCode::OK
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    },
                    msg,
                )
            }
            "/metrics" => {
                let bearer = req
                    .headers()
                    .get(http::header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "));
                let allowed = match &self.metrics_token {
                    Some(t) => bearer.is_some_and(|b| {
                        subtle::ConstantTimeEq::ct_eq(b.as_bytes(), t.as_bytes()).into()
                    }),
                    None => !self.metrics_require_token,
                };
                if !allowed {
                    return text(StatusCode::FORBIDDEN, "metrics token required\n".into());
                }
                text(StatusCode::OK, self.metrics())
            }
            "/check" => {
                let domain = parse_query(req.uri().query().unwrap_or(""))
                    .into_iter()
                    .find(|(k, _)| k == b"domain")
                    .map(|(_, v)| String::from_utf8_lossy(&v).into_owned());
                let Some(domain) = domain else {
                    return text(StatusCode::BAD_REQUEST, "missing ?domain=\n".into());
                };
                let helper = &self.s3.helper;
                let served = match helper.resolve_bucket(&domain, None).await {
                    Ok(Some(id)) => matches!(
                        helper.get_bucket(&id).await,
                        Ok(Some(b)) if b.params().is_some_and(|p| p.website_config.get().is_some())
                    ),
                    _ => false,
                };
                if served {
                    text(StatusCode::OK, format!("{domain} is served\n"))
                } else {
                    text(
                        StatusCode::NOT_FOUND,
                        format!("{domain} is not served here\n"),
                    )
                }
            }
            _ => text(StatusCode::NOT_FOUND, "unknown admin endpoint\n".into()),
        }
    }
}

impl crate::api::http::HttpHandler for AdminHttp {
    async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        _peer: SocketAddr,
    ) -> Response<ResBody> {
        self.answer(req).await
    }
}
