//! AWS's SigV4 test suite (`../shared/testdata/aws-sig-v4-test-suite/`): for every case folder
//! (nested ones included), the canonical request, string to sign and `Authorization` header
//! computed from `.req` must equal `.creq`, `.sts` and `.authz`, and the signed request `.sreq`
//! must be accepted by the verifier, and rejected once its signature or a signed header is
//! altered. Cases where S3 differs from the generic services the suite targets, or where the
//! published files contradict each other, are listed in [`expectation`] with the reason.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use http::{HeaderMap, HeaderName, HeaderValue};

use super::date::{parse_amz_date, system_time};
use super::header::parse_authorization;
use super::keys::sha256;
use super::sign::{sign_request, SigningParams};
use super::verify::{verify_request, RequestParts, VerifyConfig};

const KEY_ID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const REGION: &str = "us-east-1";
const SERVICE: &str = "service";

/// What is expected of a case, when not everything passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// `.creq`, `.sts`, `.authz` reproduced, `.sreq` accepted.
    Pass,
    /// Path normalisation cases: S3 never normalises paths, so our canonical URI (the path
    /// encoded once, as sent) differs from `.creq`; we check that it does differ.
    SkipNormalizePath,
    /// The published `.sts` is not the SHA-256 of the published `.creq`, and `.authz`/`.sreq`
    /// sign `content-type;host;x-amz-date` while `.req` has a `Content-Length` that `.creq`
    /// signs: only `.creq` is compared. `accepts_sreq` says whether `.sreq` (which has no
    /// Content-Length) is consistent with its own signature.
    InconsistentFormCase { accepts_sreq: bool },
    /// `.creq`/`.sts`/`.authz` reproduced, but the `.sreq` carries an `X-Amz-Security-Token`
    /// header added after signing: S3 refuses unsigned `x-amz-*` headers (`AccessDenied`).
    UnsignedSecurityToken,
}

fn expectation(case: &str) -> Expect {
    match case {
        // The only normalize-path case whose path needs no normalisation: S3 encodes the
        // space once, like the suite.
        "normalize-path/get-space" => Expect::Pass,
        c if c.starts_with("normalize-path/") => Expect::SkipNormalizePath,
        "post-x-www-form-urlencoded" => Expect::InconsistentFormCase { accepts_sreq: true },
        "post-x-www-form-urlencoded-parameters" => Expect::InconsistentFormCase {
            accepts_sreq: false,
        },
        "post-sts-token/post-sts-header-after" => Expect::UnsignedSecurityToken,
        _ => Expect::Pass,
    }
}

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/testdata/aws-sig-v4-test-suite/aws-sig-v4-test-suite")
}

/// Every case: (name relative to the suite, path of the files without extension).
fn cases() -> Vec<(String, PathBuf)> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, PathBuf)>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .expect("readable suite folder")
            .map(|e| e.expect("dir entry").path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                let base = path.join(path.file_name().expect("folder name"));
                if base.with_extension("req").exists() {
                    let name = path
                        .strip_prefix(root)
                        .expect("inside suite")
                        .to_string_lossy()
                        .replace('\\', "/");
                    out.push((name, base));
                }
                walk(&path, root, out);
            }
        }
    }
    let root = suite_dir();
    let mut out = Vec::new();
    walk(&root, &root, &mut out);
    out
}

struct RawRequest {
    method: String,
    path: String,
    query: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// Parses a raw HTTP request of the suite. A line starting with whitespace continues the
/// previous header: the suite canonicalises it as one more value of that header.
fn parse_raw(bytes: &[u8]) -> RawRequest {
    let text = String::from_utf8(bytes.to_vec()).expect("suite files are UTF-8");
    let (head, body) = match text.find("\n\n") {
        Some(i) => (&text[..i], text[i + 2..].to_string()),
        None => (text.as_str(), String::new()),
    };
    let mut lines = head.lines().map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next().expect("request line");
    let (method, rest) = request_line.split_once(' ').expect("method");
    let (target, _version) = rest.rsplit_once(' ').expect("version");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers = HeaderMap::new();
    let mut last: Option<HeaderName> = None;
    for line in lines {
        if line.starts_with(' ') || line.starts_with('\t') {
            let name = last.clone().expect("continuation after a header");
            headers.append(name, HeaderValue::from_str(line.trim()).expect("value"));
            continue;
        }
        let (name, value) = line.split_once(':').expect("header line");
        let name = HeaderName::from_bytes(name.trim().to_ascii_lowercase().as_bytes())
            .expect("header name");
        headers.append(name.clone(), HeaderValue::from_str(value).expect("value"));
        last = Some(name);
    }
    RawRequest {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        headers,
        body: body.into_bytes(),
    }
}

fn read(base: &Path, ext: &str) -> String {
    std::fs::read_to_string(base.with_extension(ext)).expect("suite file")
}

fn suite_time() -> SystemTime {
    system_time(parse_amz_date("20150830T123600Z").expect("date"))
}

fn verify(raw: &RawRequest) -> Result<(), super::Error> {
    let body_hash = hex::encode(sha256(&raw.body));
    let req = RequestParts {
        content_sha256: Some(&body_hash),
        ..RequestParts::new(&raw.method, &raw.path, &raw.query, &raw.headers)
    };
    let cfg = VerifyConfig {
        region: REGION,
        service: SERVICE,
        now: suite_time(),
    };
    let keys = |id: &str| (id == KEY_ID).then(|| SECRET.to_string());
    verify_request(&req, &cfg, &keys).map(|v| {
        let v = v.expect("authenticated");
        assert_eq!(v.access_key_id, KEY_ID);
    })
}

#[test]
fn aws_sigv4_test_suite() {
    let cases = cases();
    assert!(cases.len() >= 30, "suite not found at {:?}", suite_dir());
    let params = SigningParams {
        access_key_id: KEY_ID,
        secret_key: SECRET,
        region: REGION,
        service: SERVICE,
        time: suite_time(),
    };
    let mut report = Vec::new();
    for (name, base) in &cases {
        let expect = expectation(name);
        let raw = parse_raw(read(base, "req").as_bytes());
        let mut headers = raw.headers.clone();
        let payload = hex::encode(sha256(&raw.body));
        let signed = sign_request(
            &raw.method,
            &raw.path,
            &raw.query,
            &mut headers,
            &payload,
            &params,
        )
        .expect("signing");
        let (creq, sts, authz) = (read(base, "creq"), read(base, "sts"), read(base, "authz"));

        match expect {
            Expect::SkipNormalizePath => {
                assert_ne!(signed.canonical_request, creq, "{name}: skip list is stale");
                report.push(format!("{name}: skipped (S3 does not normalise paths)"));
                continue;
            }
            Expect::InconsistentFormCase { .. } => {
                assert_eq!(signed.canonical_request, creq, "{name}: canonical request");
                assert_ne!(
                    sts.lines().last(),
                    Some(hex::encode(sha256(creq.as_bytes())).as_str()),
                    "{name}: the published .sts became consistent, update the expectation"
                );
            }
            Expect::Pass | Expect::UnsignedSecurityToken => {
                assert_eq!(signed.canonical_request, creq, "{name}: canonical request");
                assert_eq!(signed.string_to_sign, sts, "{name}: string to sign");
                assert_eq!(signed.value, authz, "{name}: Authorization");
            }
        }

        // The signed request of the suite against the verifier.
        let sreq = parse_raw(read(base, "sreq").as_bytes());
        let result = verify(&sreq);
        match expect {
            Expect::Pass | Expect::InconsistentFormCase { accepts_sreq: true } => {
                result.unwrap_or_else(|e| panic!("{name}: .sreq rejected: {e:?}"));
                check_tampering(name, &sreq);
                report.push(if expect == Expect::Pass {
                    format!("{name}: pass")
                } else {
                    format!("{name}: .creq and .sreq pass (published .sts/.authz inconsistent)")
                });
            }
            Expect::InconsistentFormCase {
                accepts_sreq: false,
            } => {
                let e = result.expect_err("inconsistent case");
                assert_eq!(e.s3_code(), "SignatureDoesNotMatch", "{name}");
                report.push(format!(
                    "{name}: .creq only (published .sts/.sreq inconsistent)"
                ));
            }
            Expect::UnsignedSecurityToken => {
                let e = result.expect_err("unsigned x-amz-security-token");
                assert_eq!(e.s3_code(), "AccessDenied", "{name}");
                let mut without = sreq;
                without.headers.remove("x-amz-security-token");
                verify(&without).unwrap_or_else(|e| panic!("{name}: {e:?}"));
                report.push(format!(
                    "{name}: pass; .sreq refused as S3 does (unsigned token)"
                ));
            }
            Expect::SkipNormalizePath => unreachable!(),
        }
    }
    eprintln!("{}", report.join("\n"));
}

/// One byte of the signature changed, or one signed header value changed: refused.
fn check_tampering(name: &str, sreq: &RawRequest) {
    let auth = sreq.headers.get("authorization").expect("authorization");
    let parsed = parse_authorization(auth.as_bytes()).expect("parsable");

    let mut bad_sig = sreq.headers.clone();
    let mut value = auth.as_bytes().to_vec();
    let last = value.len() - 1;
    value[last] = if value[last] == b'0' { b'1' } else { b'0' };
    bad_sig.insert(
        "authorization",
        HeaderValue::from_bytes(&value).expect("value"),
    );
    let tampered = RawRequest {
        headers: bad_sig,
        method: sreq.method.clone(),
        path: sreq.path.clone(),
        query: sreq.query.clone(),
        body: sreq.body.clone(),
    };
    let e = verify(&tampered).expect_err("tampered signature accepted");
    assert_eq!(e.s3_code(), "SignatureDoesNotMatch", "{name}");

    for header in parsed.signed_headers.iter().filter(|h| *h != "x-amz-date") {
        let mut headers = sreq.headers.clone();
        let old = headers
            .get(header.as_str())
            .map(|v| v.as_bytes().to_vec())
            .unwrap_or_default();
        let mut new = old.clone();
        new.push(b'x');
        headers.insert(
            HeaderName::from_bytes(header.as_bytes()).expect("name"),
            HeaderValue::from_bytes(&new).expect("value"),
        );
        let tampered = RawRequest {
            headers,
            method: sreq.method.clone(),
            path: sreq.path.clone(),
            query: sreq.query.clone(),
            body: sreq.body.clone(),
        };
        let e = verify(&tampered).expect_err("tampered header accepted");
        assert_eq!(e.s3_code(), "SignatureDoesNotMatch", "{name}: {header}");
    }
}
