//! Checksums of multipart uploads. CreateMultipartUpload may choose an algorithm
//! (`x-amz-checksum-algorithm`) and a type (`x-amz-checksum-type`):
//! - `COMPOSITE` (CRC32, CRC32C, SHA1, SHA256; the default for those): the object's checksum is
//!   the checksum of the concatenated binary part checksums, written `base64-N`;
//! - `FULL_OBJECT` (CRC32, CRC32C, CRC64NVME; the only type of CRC64NVME): the CRC of the whole
//!   object, combined from the part CRCs and sizes without reading the data again.
//!
//! Every part of such an upload gets a checksum of the upload's algorithm (computed by the
//! server when the client sends none; verified when it does), recorded with the part. The
//! choice is stored in the upload's version entry as text (`"CRC32 COMPOSITE"`).

use http::HeaderMap;

use super::error::S3Error;
use crate::api::signature::checksum::{Checksum, ChecksumAlgorithm};

/// How an object's checksum derives from its parts' checksums.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChecksumType {
    Composite,
    FullObject,
}

impl ChecksumType {
    pub fn name(self) -> &'static str {
        match self {
            Self::Composite => "COMPOSITE",
            Self::FullObject => "FULL_OBJECT",
        }
    }
}

/// The checksum chosen for a multipart upload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UploadChecksum {
    pub algorithm: ChecksumAlgorithm,
    pub kind: ChecksumType,
}

fn invalid(msg: impl Into<String>) -> S3Error {
    S3Error::InvalidRequest(msg.into())
}

impl UploadChecksum {
    /// The choice of a CreateMultipartUpload request, if any.
    pub fn from_headers(h: &HeaderMap) -> Result<Option<Self>, S3Error> {
        let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::trim);
        let kind = match get("x-amz-checksum-type") {
            None => None,
            Some(t) if t.eq_ignore_ascii_case("COMPOSITE") => Some(ChecksumType::Composite),
            Some(t) if t.eq_ignore_ascii_case("FULL_OBJECT") => Some(ChecksumType::FullObject),
            Some(t) => {
                return Err(invalid(format!(
                    "x-amz-checksum-type {t:?} is not COMPOSITE or FULL_OBJECT"
                )))
            }
        };
        let Some(algo) = get("x-amz-checksum-algorithm") else {
            return match kind {
                Some(_) => Err(invalid(
                    "x-amz-checksum-type requires x-amz-checksum-algorithm",
                )),
                None => Ok(None),
            };
        };
        let algorithm = ChecksumAlgorithm::from_name(algo)
            .filter(|a| *a != ChecksumAlgorithm::Md5)
            .ok_or_else(|| {
                invalid(format!(
                    "x-amz-checksum-algorithm {algo:?} is not CRC32, CRC32C, CRC64NVME, SHA1 or SHA256"
                ))
            })?;
        let is_crc = matches!(
            algorithm,
            ChecksumAlgorithm::Crc32 | ChecksumAlgorithm::Crc32c | ChecksumAlgorithm::Crc64Nvme
        );
        let kind = match (kind, algorithm) {
            (None, ChecksumAlgorithm::Crc64Nvme) => ChecksumType::FullObject,
            (None, _) => ChecksumType::Composite,
            (Some(ChecksumType::Composite), ChecksumAlgorithm::Crc64Nvme) => {
                return Err(invalid(
                    "the COMPOSITE checksum type is not supported with CRC64NVME",
                ))
            }
            (Some(ChecksumType::FullObject), _) if !is_crc => {
                return Err(invalid(format!(
                    "the FULL_OBJECT checksum type is not supported with {}",
                    algorithm.name()
                )))
            }
            (Some(k), _) => k,
        };
        Ok(Some(Self { algorithm, kind }))
    }

    /// The stored form.
    pub fn encode(&self) -> String {
        format!("{} {}", self.algorithm.name(), self.kind.name())
    }

    /// Reads the stored form (unknown text: no checksum).
    pub fn decode(s: &str) -> Option<Self> {
        let (a, k) = s.split_once(' ')?;
        let algorithm = ChecksumAlgorithm::from_name(a)?;
        let kind = match k {
            "COMPOSITE" => ChecksumType::Composite,
            "FULL_OBJECT" => ChecksumType::FullObject,
            _ => return None,
        };
        Some(Self { algorithm, kind })
    }

    /// The object's checksum (base64, `-N` suffix for composite ones) from its parts'
    /// checksums and sizes, in order.
    pub fn combine(&self, parts: &[(Checksum, u64)]) -> Result<String, S3Error> {
        if let Some((c, _)) = parts.iter().find(|(c, _)| c.algorithm() != self.algorithm) {
            tracing::debug!(
                "a part has a {} checksum, the upload uses {}",
                c.algorithm().name(),
                self.algorithm.name()
            );
            return Err(S3Error::InvalidPart);
        }
        match self.kind {
            ChecksumType::Composite => {
                let mut all = Vec::with_capacity(parts.len() * self.algorithm.digest_len());
                for (c, _) in parts {
                    all.extend_from_slice(c.as_bytes());
                }
                let c = Checksum::compute(self.algorithm, &all);
                Ok(format!("{}-{}", c.to_base64(), parts.len()))
            }
            ChecksumType::FullObject => {
                use crc_fast::CrcAlgorithm as C;
                let algo = match self.algorithm {
                    ChecksumAlgorithm::Crc32 => C::Crc32IsoHdlc,
                    ChecksumAlgorithm::Crc32c => C::Crc32Iscsi,
                    ChecksumAlgorithm::Crc64Nvme => C::Crc64Nvme,
                    other => {
                        return Err(S3Error::Internal(format!(
                            "no full-object combination for {}",
                            other.name()
                        )))
                    }
                };
                let width = self.algorithm.digest_len();
                let value = |c: &Checksum| {
                    c.as_bytes()
                        .iter()
                        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
                };
                let mut acc: Option<u64> = None;
                for (c, len) in parts {
                    let v = value(c);
                    acc = Some(match acc {
                        None => v,
                        Some(a) => crc_fast::checksum_combine(algo, a, v, *len),
                    });
                }
                let total = acc.unwrap_or_else(|| crc_fast::checksum(algo, b""));
                let bytes = total.to_be_bytes();
                let c = Checksum::from_bytes(self.algorithm, &bytes[8 - width..])
                    .map_err(|e| S3Error::Internal(e.to_string()))?;
                Ok(c.to_base64())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.insert(*n, http::HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn choices() {
        let c = |p: &[(&'static str, &'static str)]| UploadChecksum::from_headers(&headers(p));
        assert_eq!(c(&[]).ok(), Some(None));
        let crc = c(&[("x-amz-checksum-algorithm", "crc32")])
            .ok()
            .flatten()
            .expect("crc32");
        assert_eq!(crc.kind, ChecksumType::Composite);
        assert_eq!(UploadChecksum::decode(&crc.encode()), Some(crc));
        let nvme = c(&[("x-amz-checksum-algorithm", "CRC64NVME")])
            .ok()
            .flatten()
            .expect("nvme");
        assert_eq!(nvme.kind, ChecksumType::FullObject);
        for bad in [
            &[("x-amz-checksum-algorithm", "MD5")][..],
            &[("x-amz-checksum-algorithm", "XXH3")],
            &[("x-amz-checksum-type", "COMPOSITE")],
            &[
                ("x-amz-checksum-algorithm", "CRC64NVME"),
                ("x-amz-checksum-type", "COMPOSITE"),
            ],
            &[
                ("x-amz-checksum-algorithm", "SHA256"),
                ("x-amz-checksum-type", "FULL_OBJECT"),
            ],
            &[
                ("x-amz-checksum-algorithm", "CRC32"),
                ("x-amz-checksum-type", "BOTH"),
            ],
        ] {
            assert!(c(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn composite_and_full_object_values() {
        let parts: Vec<&[u8]> = vec![b"hello ", b"multipart ", b"world"];
        let whole: Vec<u8> = parts.concat();
        for algorithm in [
            ChecksumAlgorithm::Crc32,
            ChecksumAlgorithm::Crc32c,
            ChecksumAlgorithm::Crc64Nvme,
        ] {
            let spec = UploadChecksum {
                algorithm,
                kind: ChecksumType::FullObject,
            };
            let sums: Vec<(Checksum, u64)> = parts
                .iter()
                .map(|p| (Checksum::compute(algorithm, p), p.len() as u64))
                .collect();
            assert_eq!(
                spec.combine(&sums).ok(),
                Some(Checksum::compute(algorithm, &whole).to_base64()),
                "{algorithm:?}"
            );
        }
        let spec = UploadChecksum {
            algorithm: ChecksumAlgorithm::Sha256,
            kind: ChecksumType::Composite,
        };
        let sums: Vec<(Checksum, u64)> = parts
            .iter()
            .map(|p| (Checksum::compute(ChecksumAlgorithm::Sha256, p), 0))
            .collect();
        let concat: Vec<u8> = sums
            .iter()
            .flat_map(|(c, _)| c.as_bytes().to_vec())
            .collect();
        assert_eq!(
            spec.combine(&sums).ok(),
            Some(format!(
                "{}-3",
                Checksum::compute(ChecksumAlgorithm::Sha256, &concat).to_base64()
            ))
        );
        // A part of another algorithm is refused.
        let mixed = vec![(Checksum::compute(ChecksumAlgorithm::Crc32, b"x"), 1)];
        assert!(spec.combine(&mixed).is_err());
    }
}
