//! The aws-chunked decoder: AWS's two documented chunked uploads (with and without trailing
//! checksum), any split of the input, and every way of breaking the body.

use bytes::Bytes;
use futures::executor::block_on;
use futures::StreamExt;
use http::HeaderValue;
use proptest::prelude::*;

use super::checksum::{Checksum, ChecksumAlgorithm};
use super::keys::{parse_hex32, scope, SigningContext, SigningKey};
use super::sign::encode_aws_chunked;
use super::streaming::{decode_aws_chunked, ChunkedConfig, ChunkedMode, Trailers};
use super::tests_requests::{headers, t2013, verify_at, SECRET};
use super::{Error, MAX_CHUNK_SIZE};

fn ctx(seed: &str) -> SigningContext {
    SigningContext::new(
        "20130524T000000Z".into(),
        scope("20130524", "us-east-1", "s3"),
        SigningKey::derive(SECRET, "20130524", "us-east-1", "s3"),
        parse_hex32(seed).expect("seed"),
    )
}

const SEED: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
const SEED_TRAILER: &str = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e";

/// The body of AWS's chunked upload example: 65536 + 1024 bytes of 'a'.
fn aws_body() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(b"10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n");
    b.extend_from_slice(&[b'a'; 65536]);
    b.extend_from_slice(b"\r\n400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n");
    b.extend_from_slice(&[b'a'; 1024]);
    b.extend_from_slice(b"\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n");
    b
}

/// The body of AWS's trailing-header example (CRC32C trailer).
fn aws_trailer_body() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(b"10000;chunk-signature=b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2\r\n");
    b.extend_from_slice(&[b'a'; 65536]);
    b.extend_from_slice(b"\r\n400;chunk-signature=1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7\r\n");
    b.extend_from_slice(&[b'a'; 1024]);
    b.extend_from_slice(b"\r\n0;chunk-signature=2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992\r\n");
    b.extend_from_slice(b"x-amz-checksum-crc32c:sOO8/Q==\r\n");
    b.extend_from_slice(b"x-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435\r\n\r\n");
    b
}

fn signed(seed: &str, len: Option<u64>) -> ChunkedConfig {
    ChunkedConfig {
        mode: ChunkedMode::Signed(ctx(seed)),
        decoded_content_length: len,
        expected_trailer: None,
    }
}

fn signed_trailer(len: Option<u64>) -> ChunkedConfig {
    ChunkedConfig {
        mode: ChunkedMode::SignedTrailer(ctx(SEED_TRAILER)),
        decoded_content_length: len,
        expected_trailer: Some(ChecksumAlgorithm::Crc32c),
    }
}

fn unsigned(expected: Option<ChecksumAlgorithm>) -> ChunkedConfig {
    ChunkedConfig {
        mode: ChunkedMode::UnsignedTrailer,
        decoded_content_length: None,
        expected_trailer: expected,
    }
}

/// Decodes `pieces`; the decoded data, and the trailers or the error.
fn decode(pieces: Vec<Vec<u8>>, config: ChunkedConfig) -> (Vec<u8>, Result<Trailers, Error>) {
    let input = futures::stream::iter(
        pieces
            .into_iter()
            .map(|p| Ok::<_, std::io::Error>(Bytes::from(p))),
    );
    let (stream, handle) = decode_aws_chunked(input, config);
    let items: Vec<Result<Bytes, Error>> = block_on(stream.collect());
    let mut data = Vec::new();
    for item in items {
        match item {
            Ok(b) => data.extend_from_slice(&b),
            Err(e) => {
                assert!(handle.get().is_none());
                return (data, Err(e));
            }
        }
    }
    (data, Ok(handle.get().expect("trailers after success")))
}

fn split(body: &[u8], size: usize) -> Vec<Vec<u8>> {
    body.chunks(size).map(<[u8]>::to_vec).collect()
}

fn err_code(pieces: Vec<Vec<u8>>, config: ChunkedConfig) -> &'static str {
    decode(pieces, config).1.expect_err("must fail").s3_code()
}

#[test]
fn aws_chunked_example() {
    let body = aws_body();
    assert_eq!(body.len(), 66824);
    for size in [
        1,
        2,
        7,
        85,
        86,
        87,
        777,
        4096,
        65536,
        65622,
        65623,
        body.len(),
    ] {
        let (data, trailers) = decode(split(&body, size), signed(SEED, Some(66560)));
        assert_eq!(data, vec![b'a'; 66560], "split {size}");
        assert_eq!(trailers.unwrap(), Trailers::default());
    }
}

#[test]
fn aws_trailer_example() {
    let body = aws_trailer_body();
    for size in [1, 13, 1000, 65536, body.len()] {
        let (data, trailers) = decode(split(&body, size), signed_trailer(Some(66560)));
        assert_eq!(data.len(), 66560);
        let trailers = trailers.unwrap();
        assert_eq!(trailers.get("x-amz-checksum-crc32c"), Some("sOO8/Q=="));
        let computed = Checksum::compute(ChecksumAlgorithm::Crc32c, &data);
        assert!(trailers.verify_checksum(&computed).is_ok());
        assert_eq!(trailers.checksum().unwrap(), Some(computed));
        let crc32 = Checksum::compute(ChecksumAlgorithm::Crc32, &data);
        assert_eq!(
            trailers.verify_checksum(&crc32).unwrap_err().s3_code(),
            "InvalidRequest"
        );
    }
    // Our encoder produces exactly the documented body.
    let crc = Checksum::compute(ChecksumAlgorithm::Crc32c, &[b'a'; 66560]);
    let ours = encode_aws_chunked(&[b'a'; 66560], 65536, Some(&ctx(SEED_TRAILER)), Some(&crc));
    assert_eq!(ours, body);
    assert_eq!(
        encode_aws_chunked(&[b'a'; 66560], 65536, Some(&ctx(SEED)), None),
        aws_body()
    );
}

/// From a verified request to the decoded body, through `ChunkedConfig::from_request`.
#[test]
fn from_verified_request() {
    let mut h = headers(&[
        ("host", "s3.amazonaws.com"),
        ("x-amz-date", "20130524T000000Z"),
        ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ("content-encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", "66560"),
        (
            "x-amz-content-sha256",
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
        ),
        ("x-amz-trailer", "x-amz-checksum-crc32c"),
        ("content-length", "66824"),
    ]);
    h.insert("authorization", HeaderValue::from_static(
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class;x-amz-trailer,Signature=106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"));
    let v = verify_at(
        "PUT",
        "/examplebucket/chunkObject.txt",
        "",
        &h,
        "us-east-1",
        t2013(),
    )
    .unwrap()
    .unwrap();
    let config = ChunkedConfig::from_request(&v, &h).unwrap().unwrap();
    assert_eq!(config.decoded_content_length, Some(66560));
    assert_eq!(config.expected_trailer, Some(ChecksumAlgorithm::Crc32c));
    let (data, trailers) = decode(split(&aws_trailer_body(), 5000), config.clone());
    assert_eq!(data.len(), 66560);
    assert!(trailers.is_ok());

    // A wrong trailing checksum, re-signed so that only the checksum is wrong.
    let bad = Checksum::compute(ChecksumAlgorithm::Crc32c, b"something else");
    let body = encode_aws_chunked(&[b'a'; 66560], 65536, Some(&v.signing), Some(&bad));
    assert_eq!(err_code(vec![body], config.clone()), "BadDigest");

    for (name, value) in [
        ("x-amz-decoded-content-length", "-1"),
        ("x-amz-trailer", "x-amz-checksum-crc16"),
        ("x-amz-trailer", "content-md5"),
    ] {
        let mut h2 = h.clone();
        h2.insert(name, HeaderValue::from_static(value));
        let e = ChunkedConfig::from_request(&v, &h2).unwrap_err();
        assert_eq!(e.s3_code(), "InvalidArgument", "{name}: {value}");
    }
}

#[test]
fn every_split_point_decodes_identically() {
    let data: Vec<u8> = (0..300u32).map(|i| (i % 251) as u8).collect();
    let crc = Checksum::compute(ChecksumAlgorithm::Crc32, &data);
    let sctx = ctx(SEED);
    let configs: Vec<(Vec<u8>, ChunkedConfig)> = vec![
        (
            encode_aws_chunked(&data, 100, Some(&sctx), None),
            signed(SEED, Some(300)),
        ),
        (
            encode_aws_chunked(&data, 64, Some(&sctx), Some(&crc)),
            ChunkedConfig {
                mode: ChunkedMode::SignedTrailer(sctx.clone()),
                decoded_content_length: Some(300),
                expected_trailer: Some(ChecksumAlgorithm::Crc32),
            },
        ),
        (
            encode_aws_chunked(&data, 77, None, Some(&crc)),
            unsigned(Some(ChecksumAlgorithm::Crc32)),
        ),
    ];
    for (body, config) in configs {
        for i in 0..=body.len() {
            let pieces = vec![body[..i].to_vec(), body[i..].to_vec()];
            let (out, trailers) = decode(pieces, config.clone());
            assert_eq!(out, data, "split at {i}");
            assert!(trailers.is_ok(), "split at {i}: {trailers:?}");
        }
        let (out, trailers) = decode(split(&body, 1), config.clone());
        assert_eq!(out, data);
        assert!(trailers.is_ok());
    }
}

#[test]
fn bad_signatures() {
    let body = aws_body();
    let text = |b: &[u8]| b.to_vec();
    let replace = |from: &str, to: &str| {
        let s = String::from_utf8_lossy(&body).replacen(from, to, 1);
        s.into_bytes()
    };
    let sig1 = "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648";
    let sig3 = "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9";
    let mut data_changed = text(&body);
    data_changed[200] = b'b';
    for (name, bad) in [
        ("data byte", data_changed),
        ("chunk signature", replace(sig1, &"0".repeat(64))),
        ("final signature", replace(sig3, sig1)),
        (
            "missing signature",
            replace(&format!(";chunk-signature={sig1}"), ""),
        ),
        ("short signature", replace(sig1, "abcd")),
    ] {
        assert_eq!(
            err_code(vec![bad], signed(SEED, None)),
            "SignatureDoesNotMatch",
            "{name}"
        );
    }
    // Another seed: the first chunk fails, before any of its data is released.
    let (data, r) = decode(vec![body.clone()], signed(SEED_TRAILER, None));
    assert!(data.is_empty());
    assert_eq!(r.unwrap_err().s3_code(), "SignatureDoesNotMatch");

    // Trailer tampering.
    let tb = String::from_utf8_lossy(&aws_trailer_body()).into_owned();
    let tsig = "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435";
    for (name, bad) in [
        ("trailer value", tb.replace("sOO8/Q==", "AAAAAA==")),
        ("trailer signature", tb.replace(tsig, &"1".repeat(64))),
        (
            "no trailer signature",
            tb.replace(&format!("x-amz-trailer-signature:{tsig}\r\n"), ""),
        ),
        (
            "extra trailer",
            tb.replace("sOO8/Q==\r\n", "sOO8/Q==\r\nx-amz-meta-a:1\r\n"),
        ),
    ] {
        let config = ChunkedConfig {
            expected_trailer: None,
            ..signed_trailer(None)
        };
        assert_eq!(
            err_code(vec![bad.into_bytes()], config),
            "SignatureDoesNotMatch",
            "{name}"
        );
    }
}

#[test]
fn checksum_and_length_errors() {
    let data = vec![7u8; 1000];
    let crc = Checksum::compute(ChecksumAlgorithm::Crc64Nvme, &data);
    let wrong = Checksum::compute(ChecksumAlgorithm::Crc64Nvme, b"x");
    let alg = Some(ChecksumAlgorithm::Crc64Nvme);
    let ok = encode_aws_chunked(&data, 300, None, Some(&crc));
    assert!(decode(vec![ok.clone()], unsigned(alg)).1.is_ok());
    // Bad trailer checksum, unsigned variant.
    let bad = encode_aws_chunked(&data, 300, None, Some(&wrong));
    assert_eq!(err_code(vec![bad.clone()], unsigned(alg)), "BadDigest");
    // Without x-amz-trailer the decoder does not check: the caller does, with the trailers.
    let (out, trailers) = decode(vec![bad], unsigned(None));
    let e = trailers
        .unwrap()
        .verify_checksum(&Checksum::compute(ChecksumAlgorithm::Crc64Nvme, &out));
    assert_eq!(e.unwrap_err().s3_code(), "BadDigest");
    // Missing or malformed announced trailer.
    let none = encode_aws_chunked(&data, 300, None, None);
    assert_eq!(err_code(vec![none], unsigned(alg)), "InvalidRequest");
    let malformed = String::from_utf8_lossy(&ok).replace(&crc.to_base64(), "!!");
    assert_eq!(
        err_code(vec![malformed.into_bytes()], unsigned(alg)),
        "InvalidDigest"
    );
    // Decoded length.
    let sctx = ctx(SEED);
    let body = encode_aws_chunked(&data, 300, Some(&sctx), None);
    assert!(decode(vec![body.clone()], signed(SEED, Some(1000)))
        .1
        .is_ok());
    for len in [999, 1001, 0] {
        assert_eq!(
            err_code(vec![body.clone()], signed(SEED, Some(len))),
            "IncompleteBody",
            "{len}"
        );
    }
}

#[test]
fn framing_errors() {
    let sctx = ctx(SEED);
    let body = encode_aws_chunked(&[1u8; 500], 200, Some(&sctx), None);
    let cfg = || signed(SEED, None);
    // Truncated anywhere: incomplete.
    for cut in [0, 10, 90, 300, body.len() - 90] {
        assert_eq!(
            err_code(vec![body[..cut].to_vec()], cfg()),
            "IncompleteBody",
            "{cut}"
        );
    }
    // Missing only the final CRLF is tolerated.
    assert!(decode(vec![body[..body.len() - 2].to_vec()], cfg())
        .1
        .is_ok());
    // Data after the end.
    let mut extra = body.clone();
    extra.extend_from_slice(b"junk");
    assert_eq!(err_code(vec![extra], cfg()), "InvalidRequest");
    // Trailers are not allowed in the plain signed variant.
    let mut trailer = body[..body.len() - 2].to_vec();
    trailer.extend_from_slice(b"x-amz-checksum-crc32:AAAAAA==\r\n\r\n");
    assert_eq!(err_code(vec![trailer], cfg()), "InvalidRequest");
    // Oversized chunk, checked before any data arrives.
    let big = format!(
        "{:x};chunk-signature={}\r\n",
        MAX_CHUNK_SIZE + 1,
        "0".repeat(64)
    );
    assert_eq!(err_code(vec![big.into_bytes()], cfg()), "InvalidRequest");
    assert_eq!(
        err_code(vec![b"fffffffffffffffffffff\r\n".to_vec()], unsigned(None)),
        "InvalidRequest"
    );
    // Line too long, even without a newline ever coming.
    assert_eq!(err_code(vec![vec![b'1'; 5000]], cfg()), "InvalidRequest");
    assert_eq!(
        err_code(split(&[b'1'; 5000], 100), unsigned(None)),
        "InvalidRequest"
    );
    // Garbage sizes, bare LF, wrong data length, extensions in the unsigned variant.
    for bad in [
        &b"zz\r\n"[..],
        b"\r\n",
        b"-1\r\n",
        b"3\nabc\r\n0\r\n\r\n",
        b"3\r\nabcd\r\n0\r\n\r\n",
        b"3;ext=1\r\nabc\r\n0\r\n\r\n",
        b"3\r\n\xff\xfe\xfd\r\n0\r\n\xff:\xfe\r\n\r\n",
        b"3\r\nabc\r\n0\r\nno-colon\r\n\r\n",
    ] {
        assert_eq!(
            err_code(vec![bad.to_vec()], unsigned(None)),
            "InvalidRequest",
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    // The unsigned variant without trailers, and with a blank line before the trailers.
    let (out, t) = decode(vec![b"3\r\nabc\r\n0\r\n\r\n".to_vec()], unsigned(None));
    assert_eq!(out, b"abc");
    assert!(t.unwrap().headers.is_empty());
    let crc = Checksum::compute(ChecksumAlgorithm::Crc32, b"abc").to_base64();
    let blank = format!("3\r\nabc\r\n0\r\n\r\nx-amz-checksum-crc32:{crc}\r\n\r\n");
    assert!(decode(
        vec![blank.into_bytes()],
        unsigned(Some(ChecksumAlgorithm::Crc32))
    )
    .1
    .is_ok());
    // Too many trailers.
    let many = format!("0\r\n{}\r\n", "x-a:1\r\n".repeat(17));
    assert_eq!(
        err_code(vec![many.into_bytes()], unsigned(None)),
        "InvalidRequest"
    );
}

#[test]
fn transport_error() {
    let input = futures::stream::iter(vec![
        Ok(Bytes::from_static(b"3\r\nabc\r\n")),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "reset",
        )),
    ]);
    let (stream, handle) = decode_aws_chunked(input, unsigned(None));
    let items: Vec<_> = block_on(stream.collect());
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].as_ref().unwrap(), &Bytes::from_static(b"abc"));
    let e = items[1].as_ref().unwrap_err();
    assert_eq!(e.s3_code(), "IncompleteBody");
    assert!(std::error::Error::source(e).is_some());
    assert!(handle.get().is_none());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any data, chunk size and input split round-trips through encoder and decoder.
    #[test]
    fn round_trip(
        data in proptest::collection::vec(any::<u8>(), 0..2000),
        chunk in 1usize..700,
        piece in 1usize..300,
        mode in 0u8..3,
    ) {
        let crc = Checksum::compute(ChecksumAlgorithm::Sha256, &data);
        let sctx = ctx(SEED);
        let (body, mode) = match mode {
            0 => (encode_aws_chunked(&data, chunk, Some(&sctx), None), ChunkedMode::Signed(sctx.clone())),
            1 => (encode_aws_chunked(&data, chunk, Some(&sctx), Some(&crc)), ChunkedMode::SignedTrailer(sctx.clone())),
            _ => (encode_aws_chunked(&data, chunk, None, Some(&crc)), ChunkedMode::UnsignedTrailer),
        };
        let expected_trailer = (!matches!(mode, ChunkedMode::Signed(_))).then_some(ChecksumAlgorithm::Sha256);
        let config = ChunkedConfig { mode, decoded_content_length: Some(data.len() as u64), expected_trailer };
        let (out, trailers) = decode(split(&body, piece), config);
        prop_assert!(trailers.is_ok());
        prop_assert_eq!(out, data);
    }

    /// Arbitrary bytes never panic the decoder.
    #[test]
    fn garbage_never_panics(body in proptest::collection::vec(any::<u8>(), 0..400), piece in 1usize..50) {
        let _ = decode(split(&body, piece), signed(SEED, Some(10)));
        let _ = decode(split(&body, piece), unsigned(Some(ChecksumAlgorithm::Crc32)));
    }
}
