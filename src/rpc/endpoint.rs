//! Typed endpoints: a request type `M: Rpc` names its response type; a handler is registered for
//! the endpoint's path; calls encode with rmp-serde (named fields, so fields can be added) and
//! decode the answer. Handlers may also receive and return streamed bodies.

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::RpcError;
use crate::net::frame::Priority;
use crate::net::netapp::NetApp;
use crate::net::{ByteStream, HandlerResult, RawHandler, RequestContext};
use crate::util::ids::NodeId;

/// A request message and the type of its answer.
pub trait Rpc: Serialize + DeserializeOwned + Send + Sync + 'static {
    type Response: Serialize + DeserializeOwned + Send + Sync + 'static;
}

/// Handles requests of type `M`.
pub trait Handler<M: Rpc>: Send + Sync + 'static {
    fn handle(
        self: Arc<Self>,
        msg: M,
        from: NodeId,
    ) -> impl Future<Output = Result<M::Response, String>> + Send;
}

/// Handles requests of type `M` that carry and/or return a streamed body.
pub trait StreamHandler<M: Rpc>: Send + Sync + 'static {
    fn handle_stream(
        self: Arc<Self>,
        msg: M,
        from: NodeId,
        body: Option<ByteStream>,
    ) -> impl Future<Output = Result<(M::Response, Option<ByteStream>), String>> + Send;
}

/// Per-call options.
#[derive(Clone, Copy, Debug)]
pub struct CallOpts {
    pub prio: Priority,
    pub timeout: Duration,
}

impl CallOpts {
    pub fn new(prio: Priority, timeout: Duration) -> Self {
        Self { prio, timeout }
    }
}

/// A typed endpoint bound to a node's [`NetApp`].
pub struct Endpoint<M> {
    path: &'static str,
    netapp: Arc<NetApp>,
    _msg: PhantomData<fn(M)>,
}

impl<M> Clone for Endpoint<M> {
    fn clone(&self) -> Self {
        Self {
            path: self.path,
            netapp: self.netapp.clone(),
            _msg: PhantomData,
        }
    }
}

fn decode_from<T: DeserializeOwned>(payload: &[u8]) -> Result<T, String> {
    rmp_serde::from_slice(payload).map_err(|e| format!("undecodable request: {e}"))
}

fn encode_to<T: Serialize>(v: &T) -> Result<Bytes, String> {
    rmp_serde::to_vec_named(v)
        .map(Bytes::from)
        .map_err(|e| format!("cannot encode answer: {e}"))
}

struct PlainAdapter<M, H>(Arc<H>, PhantomData<fn(M)>);

impl<M: Rpc, H: Handler<M>> RawHandler for PlainAdapter<M, H> {
    fn handle(
        &self,
        ctx: RequestContext,
        payload: Bytes,
        _body: Option<ByteStream>,
    ) -> BoxFuture<'static, HandlerResult> {
        let h = self.0.clone();
        async move {
            let msg: M = decode_from(&payload)?;
            let resp = h.handle(msg, ctx.from).await?;
            Ok((encode_to(&resp)?, None))
        }
        .boxed()
    }
}

struct StreamAdapter<M, H>(Arc<H>, PhantomData<fn(M)>);

impl<M: Rpc, H: StreamHandler<M>> RawHandler for StreamAdapter<M, H> {
    fn handle(
        &self,
        ctx: RequestContext,
        payload: Bytes,
        body: Option<ByteStream>,
    ) -> BoxFuture<'static, HandlerResult> {
        let h = self.0.clone();
        async move {
            let msg: M = decode_from(&payload)?;
            let (resp, out) = h.handle_stream(msg, ctx.from, body).await?;
            Ok((encode_to(&resp)?, out))
        }
        .boxed()
    }
}

impl<M: Rpc> Endpoint<M> {
    pub fn new(netapp: Arc<NetApp>, path: &'static str) -> Self {
        Self {
            path,
            netapp,
            _msg: PhantomData,
        }
    }

    pub fn path(&self) -> &'static str {
        self.path
    }

    pub fn netapp(&self) -> &Arc<NetApp> {
        &self.netapp
    }

    /// Registers the handler of this endpoint.
    pub fn set_handler<H: Handler<M>>(&self, handler: Arc<H>) {
        self.netapp
            .add_handler(self.path, Arc::new(PlainAdapter(handler, PhantomData)));
    }

    /// Registers a handler that receives and may return streamed bodies.
    pub fn set_stream_handler<H: StreamHandler<M>>(&self, handler: Arc<H>) {
        self.netapp
            .add_handler(self.path, Arc::new(StreamAdapter(handler, PhantomData)));
    }

    /// Encodes a request once, to send it to several nodes.
    pub fn encode(&self, msg: &M) -> Result<Bytes, RpcError> {
        rmp_serde::to_vec_named(msg)
            .map(Bytes::from)
            .map_err(|e| RpcError::Encode {
                path: self.path,
                message: e.to_string(),
            })
    }

    /// Sends an already encoded request.
    pub async fn call_encoded(
        &self,
        to: NodeId,
        payload: Bytes,
        body: Option<ByteStream>,
        opts: CallOpts,
    ) -> Result<(M::Response, Option<ByteStream>), RpcError> {
        let (resp, body) = self
            .netapp
            .request(to, self.path, opts.prio, payload, body, opts.timeout)
            .await?;
        let resp = rmp_serde::from_slice(&resp).map_err(|e| RpcError::Decode {
            path: self.path,
            peer: to,
            message: e.to_string(),
        })?;
        Ok((resp, body))
    }

    /// Calls `to` and waits for its answer.
    pub async fn call(&self, to: NodeId, msg: &M, opts: CallOpts) -> Result<M::Response, RpcError> {
        let payload = self.encode(msg)?;
        Ok(self.call_encoded(to, payload, None, opts).await?.0)
    }

    /// Calls `to` with a streamed body; returns the answer and its streamed body, if any.
    pub async fn call_stream(
        &self,
        to: NodeId,
        msg: &M,
        body: Option<ByteStream>,
        opts: CallOpts,
    ) -> Result<(M::Response, Option<ByteStream>), RpcError> {
        let payload = self.encode(msg)?;
        self.call_encoded(to, payload, body, opts).await
    }
}
