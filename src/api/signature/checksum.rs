//! Payload checksums of S3: CRC32, CRC32C, CRC64NVME, SHA1 and SHA256 (the `x-amz-checksum-*`
//! headers and trailers) and MD5 (`Content-MD5`).
//!
//! Values travel as base64 of the big-endian digest bytes (4 bytes for the CRC32s, 8 for
//! CRC64NVME, 16 for MD5, 20 for SHA1, 32 for SHA256). [`Checksummer`] computes one
//! incrementally; [`Checksum::from_base64`] parses a received value (a bad value is
//! `InvalidDigest`) and [`Checksum::verify`] compares a received value with a computed one
//! (a mismatch is `BadDigest`).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::Error;

/// A checksum algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChecksumAlgorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
    /// `Content-MD5` (not an `x-amz-checksum-*` algorithm).
    Md5,
}

impl ChecksumAlgorithm {
    /// Every algorithm, `x-amz-checksum-*` ones first.
    pub const ALL: [ChecksumAlgorithm; 6] = [
        ChecksumAlgorithm::Crc32,
        ChecksumAlgorithm::Crc32c,
        ChecksumAlgorithm::Crc64Nvme,
        ChecksumAlgorithm::Sha1,
        ChecksumAlgorithm::Sha256,
        ChecksumAlgorithm::Md5,
    ];

    /// The name S3 uses in `x-amz-checksum-algorithm` and XML (`CRC32`, …, `MD5`).
    pub fn name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "CRC32",
            ChecksumAlgorithm::Crc32c => "CRC32C",
            ChecksumAlgorithm::Crc64Nvme => "CRC64NVME",
            ChecksumAlgorithm::Sha1 => "SHA1",
            ChecksumAlgorithm::Sha256 => "SHA256",
            ChecksumAlgorithm::Md5 => "MD5",
        }
    }

    /// The (lower-case) header or trailer that carries a value of this algorithm.
    pub fn header_name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "x-amz-checksum-crc32",
            ChecksumAlgorithm::Crc32c => "x-amz-checksum-crc32c",
            ChecksumAlgorithm::Crc64Nvme => "x-amz-checksum-crc64nvme",
            ChecksumAlgorithm::Sha1 => "x-amz-checksum-sha1",
            ChecksumAlgorithm::Sha256 => "x-amz-checksum-sha256",
            ChecksumAlgorithm::Md5 => "content-md5",
        }
    }

    /// The algorithm of a name as in [`Self::name`] (case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name.trim()))
    }

    /// The algorithm carried by a header or trailer name (case-insensitive), as in
    /// [`Self::header_name`].
    pub fn from_header_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.header_name().eq_ignore_ascii_case(name.trim()))
    }

    /// Length in bytes of a digest.
    pub fn digest_len(self) -> usize {
        match self {
            ChecksumAlgorithm::Crc32 | ChecksumAlgorithm::Crc32c => 4,
            ChecksumAlgorithm::Crc64Nvme => 8,
            ChecksumAlgorithm::Md5 => 16,
            ChecksumAlgorithm::Sha1 => 20,
            ChecksumAlgorithm::Sha256 => 32,
        }
    }
}

/// A checksum value: an algorithm and its digest bytes (big-endian for CRCs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    algorithm: ChecksumAlgorithm,
    bytes: Vec<u8>,
}

impl Checksum {
    /// The checksum of some data, in one go.
    pub fn compute(algorithm: ChecksumAlgorithm, data: &[u8]) -> Self {
        let mut c = Checksummer::new(algorithm);
        c.update(data);
        c.finalize()
    }

    /// A checksum from its digest bytes (which must have the algorithm's length).
    pub fn from_bytes(algorithm: ChecksumAlgorithm, bytes: &[u8]) -> Result<Self, Error> {
        Self::from_base64(algorithm, &BASE64.encode(bytes))
    }

    /// Parses a base64 value (as in `x-amz-checksum-*` or `Content-MD5`); a value that is not
    /// base64 of the right length is `InvalidDigest`.
    pub fn from_base64(algorithm: ChecksumAlgorithm, value: &str) -> Result<Self, Error> {
        let bytes = BASE64
            .decode(value.trim())
            .ok()
            .filter(|b| b.len() == algorithm.digest_len())
            .ok_or_else(|| Error::InvalidDigest {
                message: format!(
                    "the {} value {:?} is not the base64 of {} bytes",
                    algorithm.header_name(),
                    truncate(value),
                    algorithm.digest_len()
                ),
            })?;
        Ok(Checksum { algorithm, bytes })
    }

    /// The algorithm.
    pub fn algorithm(&self) -> ChecksumAlgorithm {
        self.algorithm
    }

    /// The digest bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The base64 form, as sent in headers.
    pub fn to_base64(&self) -> String {
        BASE64.encode(&self.bytes)
    }

    /// Checks that a value received from the client (`self`) equals what was computed;
    /// otherwise `BadDigest`. Comparing values of different algorithms is also `BadDigest`.
    pub fn verify(&self, computed: &Checksum) -> Result<(), Error> {
        let same = self.algorithm == computed.algorithm
            && bool::from(self.bytes.as_slice().ct_eq(computed.bytes.as_slice()));
        if same {
            Ok(())
        } else {
            Err(Error::BadDigest {
                algorithm: self.algorithm.header_name(),
                expected: self.to_base64(),
                computed: computed.to_base64(),
            })
        }
    }
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// An incremental checksum computation.
#[derive(Clone)]
pub struct Checksummer {
    state: State,
}

#[derive(Clone)]
enum State {
    Crc32(crc32fast::Hasher),
    Crc32c(u32),
    Crc64Nvme(crc64fast_nvme::Digest),
    Sha1(Sha1),
    Sha256(Sha256),
    Md5(Md5),
}

impl Checksummer {
    /// Starts a computation.
    pub fn new(algorithm: ChecksumAlgorithm) -> Self {
        let state = match algorithm {
            ChecksumAlgorithm::Crc32 => State::Crc32(crc32fast::Hasher::new()),
            ChecksumAlgorithm::Crc32c => State::Crc32c(0),
            ChecksumAlgorithm::Crc64Nvme => State::Crc64Nvme(crc64fast_nvme::Digest::new()),
            ChecksumAlgorithm::Sha1 => State::Sha1(Sha1::new()),
            ChecksumAlgorithm::Sha256 => State::Sha256(Sha256::new()),
            ChecksumAlgorithm::Md5 => State::Md5(Md5::new()),
        };
        Checksummer { state }
    }

    /// The algorithm being computed.
    pub fn algorithm(&self) -> ChecksumAlgorithm {
        match self.state {
            State::Crc32(_) => ChecksumAlgorithm::Crc32,
            State::Crc32c(_) => ChecksumAlgorithm::Crc32c,
            State::Crc64Nvme(_) => ChecksumAlgorithm::Crc64Nvme,
            State::Sha1(_) => ChecksumAlgorithm::Sha1,
            State::Sha256(_) => ChecksumAlgorithm::Sha256,
            State::Md5(_) => ChecksumAlgorithm::Md5,
        }
    }

    /// Feeds data.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.state {
            State::Crc32(h) => h.update(data),
            State::Crc32c(crc) => *crc = crc32c::crc32c_append(*crc, data),
            State::Crc64Nvme(d) => d.write(data),
            State::Sha1(h) => h.update(data),
            State::Sha256(h) => h.update(data),
            State::Md5(h) => h.update(data),
        }
    }

    /// The checksum of everything fed.
    pub fn finalize(self) -> Checksum {
        let algorithm = self.algorithm();
        let bytes = match self.state {
            State::Crc32(h) => h.finalize().to_be_bytes().to_vec(),
            State::Crc32c(crc) => crc.to_be_bytes().to_vec(),
            State::Crc64Nvme(d) => d.sum64().to_be_bytes().to_vec(),
            State::Sha1(h) => h.finalize().to_vec(),
            State::Sha256(h) => h.finalize().to_vec(),
            State::Md5(h) => h.finalize().to_vec(),
        };
        Checksum { algorithm, bytes }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex_of(alg: ChecksumAlgorithm, data: &[u8]) -> String {
        hex::encode(Checksum::compute(alg, data).as_bytes())
    }

    #[test]
    fn known_values() {
        let d = b"123456789";
        assert_eq!(hex_of(ChecksumAlgorithm::Crc32, d), "cbf43926");
        assert_eq!(hex_of(ChecksumAlgorithm::Crc32c, d), "e3069283");
        assert_eq!(hex_of(ChecksumAlgorithm::Crc64Nvme, d), "ae8b14860a799888");
        assert_eq!(
            hex_of(ChecksumAlgorithm::Sha1, d),
            "f7c3bc1d808e04732adf679965ccc34ca7ae3441"
        );
        assert_eq!(
            hex_of(ChecksumAlgorithm::Sha256, d),
            "15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225"
        );
        assert_eq!(
            hex_of(ChecksumAlgorithm::Md5, d),
            "25f9e794323b453885f5181f1b624d0b"
        );
        // Empty input.
        assert_eq!(hex_of(ChecksumAlgorithm::Crc32, b""), "00000000");
        assert_eq!(
            Checksum::compute(ChecksumAlgorithm::Md5, b"").to_base64(),
            "1B2M2Y8AsgTpgAmY7PhCfg=="
        );
        // The CRC32C trailer of AWS's trailing-checksum example (66560 bytes of 'a').
        assert_eq!(
            Checksum::compute(ChecksumAlgorithm::Crc32c, &vec![b'a'; 66560]).to_base64(),
            "sOO8/Q=="
        );
    }

    #[test]
    fn incremental_equals_one_shot() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 + 3) as u8).collect();
        for alg in ChecksumAlgorithm::ALL {
            let mut c = Checksummer::new(alg);
            for piece in data.chunks(333) {
                c.update(piece);
            }
            assert_eq!(c.finalize(), Checksum::compute(alg, &data), "{alg:?}");
        }
    }

    #[test]
    fn base64_round_trip_and_verify() {
        for alg in ChecksumAlgorithm::ALL {
            let c = Checksum::compute(alg, b"hello");
            assert_eq!(c.as_bytes().len(), alg.digest_len());
            let parsed = Checksum::from_base64(alg, &c.to_base64()).unwrap();
            assert!(parsed.verify(&c).is_ok());
            let other = Checksum::compute(alg, b"hellO");
            let e = parsed.verify(&other).unwrap_err();
            assert_eq!(e.s3_code(), "BadDigest");
            assert_eq!(ChecksumAlgorithm::from_name(alg.name()), Some(alg));
            assert_eq!(
                ChecksumAlgorithm::from_header_name(&alg.header_name().to_uppercase()),
                Some(alg)
            );
        }
        assert_eq!(
            ChecksumAlgorithm::from_name("crc32c"),
            Some(ChecksumAlgorithm::Crc32c)
        );
        assert_eq!(ChecksumAlgorithm::from_name("CRC16"), None);
    }

    #[test]
    fn invalid_values() {
        for (alg, v) in [
            (ChecksumAlgorithm::Crc32, "not base64!"),
            (ChecksumAlgorithm::Crc32, "AAAAAAAA"),
            (ChecksumAlgorithm::Md5, "AAAA"),
            (ChecksumAlgorithm::Sha256, ""),
        ] {
            assert_eq!(
                Checksum::from_base64(alg, v).unwrap_err().s3_code(),
                "InvalidDigest"
            );
        }
        let long = "x".repeat(100_000);
        assert!(Checksum::from_base64(ChecksumAlgorithm::Crc32, &long).is_err());
        let crc = Checksum::compute(ChecksumAlgorithm::Crc32, b"x");
        let crcc = Checksum::compute(ChecksumAlgorithm::Crc32c, b"x");
        assert_eq!(crc.verify(&crcc).unwrap_err().s3_code(), "BadDigest");
    }
}
