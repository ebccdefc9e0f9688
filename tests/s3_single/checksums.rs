//! Checksums (header and aws-chunked trailer, several algorithms) and Content-MD5.

use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode};
use base64::Engine;
use md5::{Digest, Md5};

use crate::s3util::*;
use crate::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checksums_and_digests() {
    let node = SingleNode::start().await;
    let c = node.client();
    let small = data(2000, 4);
    let large = data(3 * MIB + 7, 5);

    let empty: Vec<u8> = vec![];
    for (key, body) in [("small", &small), ("large", &large), ("empty", &empty)] {
        // Default, in-memory body: the SDK signs the payload (SHA-256) and sends its CRC32 as
        // an `x-amz-checksum-crc32` header.
        let out = c
            .put_object()
            .bucket(BUCKET)
            .key(key)
            .body(body.clone().into())
            .send()
            .await
            .expect("PutObject with the default checksum");
        assert_eq!(
            out.checksum_crc32(),
            Some(crc32_b64(body).as_str()),
            "{key}"
        );
        let got = c
            .get_object()
            .bucket(BUCKET)
            .key(key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .expect("GetObject with checksum mode");
        assert_eq!(
            got.checksum_crc32(),
            Some(crc32_b64(body).as_str()),
            "{key}"
        );
        assert_eq!(&read_body(got.body).await, body);
        // Without checksum mode, no checksum header.
        let got = c
            .head_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .expect("HeadObject");
        assert_eq!(got.checksum_crc32(), None);
        let got = c
            .head_object()
            .bucket(BUCKET)
            .key(key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .expect("HeadObject with checksum mode");
        assert_eq!(got.checksum_crc32(), Some(crc32_b64(body).as_str()));

        // CRC32C chosen explicitly.
        let k = format!("{key}-crc32c");
        let out = c
            .put_object()
            .bucket(BUCKET)
            .key(&k)
            .body(body.clone().into())
            .checksum_algorithm(ChecksumAlgorithm::Crc32C)
            .send()
            .await
            .expect("PutObject with CRC32C");
        assert_eq!(out.checksum_crc32_c(), Some(crc32c_b64(body).as_str()));
        let got = c
            .get_object()
            .bucket(BUCKET)
            .key(&k)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .expect("GetObject CRC32C");
        assert_eq!(got.checksum_crc32_c(), Some(crc32c_b64(body).as_str()));
        assert_eq!(&read_body(got.body).await, body);

        // A streaming body (from a file): the SDK sends it aws-chunked with signed chunks and
        // a signed trailer carrying the checksum; Content-Encoding gets `aws-chunked` added as
        // a second header, which must not be stored.
        let path = node.dir.path().join(format!("{key}.body"));
        std::fs::write(&path, body).expect("write body file");
        for (algo, enc) in [
            (None, None),
            (Some(ChecksumAlgorithm::Crc32C), Some("gzip")),
            (Some(ChecksumAlgorithm::Sha256), None),
            (Some(ChecksumAlgorithm::Sha1), Some("br")),
            (Some(ChecksumAlgorithm::Crc64Nvme), None),
        ] {
            let k = format!("{key}-streamed-{algo:?}");
            let stream = aws_sdk_s3::primitives::ByteStream::read_from()
                .path(&path)
                .buffer_size(100_000)
                .build()
                .await
                .expect("file body");
            let out = c
                .put_object()
                .bucket(BUCKET)
                .key(&k)
                .body(stream)
                .set_checksum_algorithm(algo.clone())
                .set_content_encoding(enc.map(String::from))
                .send()
                .await
                .unwrap_or_else(|e| panic!("streamed PutObject {k}: {e:?}"));
            assert_eq!(out.e_tag(), Some(format!("\"{}\"", md5_hex(body)).as_str()));
            let got = c
                .get_object()
                .bucket(BUCKET)
                .key(&k)
                .checksum_mode(ChecksumMode::Enabled)
                .send()
                .await
                .expect("GetObject");
            match algo {
                None => {
                    assert_eq!(out.checksum_crc32(), Some(crc32_b64(body).as_str()));
                    assert_eq!(got.checksum_crc32(), Some(crc32_b64(body).as_str()));
                }
                Some(ChecksumAlgorithm::Crc32C) => {
                    assert_eq!(out.checksum_crc32_c(), Some(crc32c_b64(body).as_str()));
                    assert_eq!(got.checksum_crc32_c(), Some(crc32c_b64(body).as_str()));
                }
                Some(ChecksumAlgorithm::Sha256) => {
                    let want = B64.encode(sha2::Sha256::digest(body));
                    assert_eq!(out.checksum_sha256(), Some(want.as_str()));
                    assert_eq!(got.checksum_sha256(), Some(want.as_str()));
                }
                Some(ChecksumAlgorithm::Sha1) => {
                    let want = B64.encode(sha1::Sha1::digest(body));
                    assert_eq!(out.checksum_sha1(), Some(want.as_str()));
                    assert_eq!(got.checksum_sha1(), Some(want.as_str()));
                }
                Some(_) => {
                    assert!(out.checksum_crc64_nvme().is_some());
                    assert_eq!(got.checksum_crc64_nvme(), out.checksum_crc64_nvme());
                }
            }
            assert_eq!(got.content_encoding(), enc, "{k}: stored Content-Encoding");
            assert_eq!(got.content_length(), Some(body.len() as i64));
            assert!(&read_body(got.body).await == body, "{k}: content");
        }

        // Streamed with a wrong checksum or MD5 given by the caller: refused, nothing stored.
        let k = format!("{key}-streamed-wrong");
        for wrong in ["crc32", "md5"] {
            let stream = aws_sdk_s3::primitives::ByteStream::from_path(&path)
                .await
                .expect("file body");
            let req = c.put_object().bucket(BUCKET).key(&k).body(stream);
            let req = match wrong {
                "crc32" => req.checksum_crc32(crc32_b64(b"not this")),
                _ => req.content_md5(B64.encode(Md5::digest(b"not this"))),
            };
            assert_s3_err(req.send().await, "BadDigest", 400);
            assert_s3_err(
                c.get_object().bucket(BUCKET).key(&k).send().await,
                "NoSuchKey",
                404,
            );
        }

        // A checksum given as a header: right, then wrong.
        let k = format!("{key}-given");
        c.put_object()
            .bucket(BUCKET)
            .key(&k)
            .body(body.clone().into())
            .checksum_crc32(crc32_b64(body))
            .send()
            .await
            .expect("PutObject with a correct x-amz-checksum-crc32");
        assert_eq!(&get_bytes(&c, BUCKET, &k).await, body);
        let k = format!("{key}-wrong-crc");
        assert_s3_err(
            c.put_object()
                .bucket(BUCKET)
                .key(&k)
                .body(body.clone().into())
                .checksum_crc32(crc32_b64(b"something else"))
                .send()
                .await,
            "BadDigest",
            400,
        );
        assert_s3_err(
            c.get_object().bucket(BUCKET).key(&k).send().await,
            "NoSuchKey",
            404,
        );

        // Content-MD5: right, then wrong (nothing is stored).
        let k = format!("{key}-md5");
        c.put_object()
            .bucket(BUCKET)
            .key(&k)
            .body(body.clone().into())
            .content_md5(B64.encode(Md5::digest(body)))
            .send()
            .await
            .expect("PutObject with a correct Content-MD5");
        assert_eq!(&get_bytes(&c, BUCKET, &k).await, body);
        let k = format!("{key}-bad-md5");
        assert_s3_err(
            c.put_object()
                .bucket(BUCKET)
                .key(&k)
                .body(body.clone().into())
                .content_md5(B64.encode(Md5::digest(b"other")))
                .send()
                .await,
            "BadDigest",
            400,
        );
        assert_s3_err(
            c.get_object().bucket(BUCKET).key(&k).send().await,
            "NoSuchKey",
            404,
        );
        // A failed overwrite keeps the previous content.
        assert_s3_err(
            c.put_object()
                .bucket(BUCKET)
                .key(key)
                .body(b"replacement".to_vec().into())
                .content_md5(B64.encode(Md5::digest(b"other")))
                .send()
                .await,
            "BadDigest",
            400,
        );
        assert_eq!(&get_bytes(&c, BUCKET, key).await, body);
    }
}
