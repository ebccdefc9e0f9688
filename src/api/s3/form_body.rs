//! The body of a POST form as the multipart parser (multer) reads it, with the part before the
//! file bounded.
//!
//! multer buffers everything it is given while it looks for a boundary or the end of a part's
//! headers, and takes all the data that is ready each time it reads. So, while the fields before
//! the file are read (the *head*, see [`HeadGuard`]), this stream hands over at most
//! [`HEAD_SLICE`] bytes at a time and then yields once (waking itself at once): the parser never
//! reads more than one slice past what it needs. Reading more than [`HEAD_READ_LIMIT`] bytes
//! in the head is [`FormBodyError::HeadTooLarge`], whatever those bytes are (field values, part
//! headers, a preamble without boundary). Once the file field is reached the guard is lifted
//! and data flows as it comes (the file's size is bounded by the caller).

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;

/// Most bytes of the body read before the file field (values, names, part headers,
/// boundaries): several times the limit on the fields themselves, which leaves room for the
/// framing of many small fields.
pub const HEAD_READ_LIMIT: u64 = 256 << 10;
/// Largest slice handed to the parser while the head is read.
pub const HEAD_SLICE: usize = 16 << 10;

/// Why the form body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FormBodyError {
    #[error("the form fields before the file are larger than {HEAD_READ_LIMIT} bytes")]
    HeadTooLarge,
    #[error("reading the request body: {0}")]
    Body(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Says whether the head is still being read; shared between the stream and its reader.
#[derive(Clone, Debug)]
pub struct HeadGuard(Arc<AtomicBool>);

impl HeadGuard {
    /// The head is read: lift the limit and the slicing.
    pub fn lift(&self) {
        self.0.store(false, Ordering::Relaxed);
    }
    fn active(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// See the module documentation.
pub struct FormBody<S> {
    inner: S,
    guard: HeadGuard,
    /// Data received but not handed over yet (head only).
    pending: Bytes,
    read: u64,
    /// Yield once before the next slice.
    pause: bool,
}

impl<S> FormBody<S> {
    pub fn new(inner: S) -> (Self, HeadGuard) {
        let guard = HeadGuard(Arc::new(AtomicBool::new(true)));
        let body = FormBody {
            inner,
            guard: guard.clone(),
            pending: Bytes::new(),
            read: 0,
            pause: false,
        };
        (body, guard)
    }
}

impl<S, E> Stream for FormBody<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::error::Error + Send + Sync + 'static,
{
    type Item = Result<Bytes, FormBodyError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let head = this.guard.active();
        if !head && !this.pending.is_empty() {
            return Poll::Ready(Some(Ok(std::mem::take(&mut this.pending))));
        }
        if head && this.pause {
            this.pause = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if this.pending.is_empty() {
            match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Ready(Some(Err(e))) => {
                    return Poll::Ready(Some(Err(FormBodyError::Body(Box::new(e)))))
                }
                Poll::Ready(Some(Ok(data))) if !head => return Poll::Ready(Some(Ok(data))),
                Poll::Ready(Some(Ok(data))) => this.pending = data,
            }
        }
        let slice = this.pending.split_to(this.pending.len().min(HEAD_SLICE));
        this.read += slice.len() as u64;
        if this.read > HEAD_READ_LIMIT {
            return Poll::Ready(Some(Err(FormBodyError::HeadTooLarge)));
        }
        this.pause = true;
        Poll::Ready(Some(Ok(slice)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn source(chunks: Vec<Vec<u8>>) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
        futures::stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from(c))))
    }

    #[tokio::test]
    async fn head_is_sliced_and_bounded_then_lifted() {
        let (mut body, guard) = FormBody::new(source(vec![vec![1; 40 << 10], vec![2; 10]]));
        let first = body.next().await.expect("data").expect("ok");
        assert_eq!(first.len(), HEAD_SLICE);
        guard.lift();
        // The rest of the pending chunk, then the next chunk whole.
        let rest = body.next().await.expect("data").expect("ok");
        assert_eq!(rest.len(), (40 << 10) - HEAD_SLICE);
        assert_eq!(body.next().await.expect("data").expect("ok").len(), 10);
        assert!(body.next().await.is_none());

        let big = vec![vec![0u8; 64 << 10]; 5];
        let (mut body, _guard) = FormBody::new(source(big));
        let mut total = 0u64;
        let err = loop {
            match body.next().await {
                Some(Ok(d)) => total += d.len() as u64,
                Some(Err(e)) => break e,
                None => panic!("the head limit was not enforced"),
            }
        };
        assert!(matches!(err, FormBodyError::HeadTooLarge));
        assert!(total <= HEAD_READ_LIMIT);
    }
}
