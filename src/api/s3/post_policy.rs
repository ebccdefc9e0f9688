//! The policy document of a browser POST upload (PostObject): base64 of a JSON object
//!
//! ```text
//! { "expiration": "2030-01-01T00:00:00.000Z",
//!   "conditions": [ {"bucket": "b"},                       exact match (object form)
//!                   ["eq", "$x-amz-meta-tag", "v"],        exact match
//!                   ["starts-with", "$key", "user/"],      prefix ("" accepts any value)
//!                   ["content-length-range", 1, 1048576] ] size of the file, bytes, inclusive
//! }
//! ```
//! Rules (as S3): the policy must not be expired; every condition must hold (field names are
//! case-insensitive; `bucket` is the bucket of the URL; a missing field counts as empty); and
//! every form field must be named by an `eq` or `starts-with` condition, except `policy`,
//! `x-amz-signature`, `file` and fields starting with `x-ignore-`. For `Content-Type`, a
//! comma-separated list must have every element start with the prefix.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::Value;

use super::error::S3Error;
use crate::api::signature::date::parse_amz_date;

/// Largest policy document accepted (base64 text, bytes).
pub const MAX_POLICY_LEN: usize = 32 << 10;

/// One condition of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    Eq { field: String, value: String },
    StartsWith { field: String, prefix: String },
    LengthRange { min: u64, max: u64 },
}

/// A decoded policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Seconds since the Unix epoch.
    pub expiration: i64,
    pub conditions: Vec<Condition>,
}

fn invalid(msg: impl Into<String>) -> S3Error {
    S3Error::InvalidPolicyDocument(msg.into())
}

fn denied(msg: impl std::fmt::Display) -> S3Error {
    S3Error::AccessDenied(format!("Invalid according to Policy: {msg}"))
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff]Z`.
fn parse_iso8601(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    if b[13] != b':' || b[16] != b':' || *b.last()? != b'Z' {
        return None;
    }
    let frac = &s[19..s.len() - 1];
    if !(frac.is_empty()
        || (frac.len() > 1
            && frac.starts_with('.')
            && frac[1..].bytes().all(|c| c.is_ascii_digit())))
    {
        return None;
    }
    let compact = format!(
        "{}{}{}T{}{}{}Z",
        &s[0..4],
        &s[5..7],
        &s[8..10],
        &s[11..13],
        &s[14..16],
        &s[17..19]
    );
    parse_amz_date(&compact)
}

fn field_name(v: &Value) -> Result<String, S3Error> {
    v.as_str()
        .and_then(|s| s.strip_prefix('$'))
        .map(str::to_ascii_lowercase)
        .ok_or_else(|| invalid(format!("a condition names a field as \"$name\", not {v}")))
}

fn number(v: &Value) -> Result<u64, S3Error> {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        .ok_or_else(|| invalid(format!("content-length-range bound {v} is not a number")))
}

fn text(v: &Value) -> Result<String, S3Error> {
    v.as_str()
        .map(String::from)
        .ok_or_else(|| invalid(format!("condition value {v} is not a string")))
}

fn parse_condition(c: &Value, out: &mut Vec<Condition>) -> Result<(), S3Error> {
    match c {
        Value::Object(map) => {
            for (field, value) in map {
                out.push(Condition::Eq {
                    field: field.to_ascii_lowercase(),
                    value: text(value)?,
                });
            }
        }
        Value::Array(a) => {
            let op = a
                .first()
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase)
                .unwrap_or_default();
            if a.len() != 3 {
                return Err(invalid(format!("condition {c} must have 3 elements")));
            }
            out.push(match op.as_str() {
                "eq" => Condition::Eq {
                    field: field_name(&a[1])?,
                    value: text(&a[2])?,
                },
                "starts-with" => Condition::StartsWith {
                    field: field_name(&a[1])?,
                    prefix: text(&a[2])?,
                },
                "content-length-range" => {
                    let (min, max) = (number(&a[1])?, number(&a[2])?);
                    if min > max {
                        return Err(invalid(format!("empty content-length-range in {c}")));
                    }
                    Condition::LengthRange { min, max }
                }
                _ => return Err(invalid(format!("unknown condition {c}"))),
            });
        }
        _ => {
            return Err(invalid(format!(
                "condition {c} is neither an object nor a list"
            )))
        }
    }
    Ok(())
}

/// Decodes a base64 policy document.
pub fn parse_policy(b64: &str) -> Result<Policy, S3Error> {
    if b64.len() > MAX_POLICY_LEN {
        return Err(invalid(format!(
            "the policy is longer than {MAX_POLICY_LEN} bytes"
        )));
    }
    let json = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| invalid("the policy is not valid base64"))?;
    let doc: Value = serde_json::from_slice(&json)
        .map_err(|e| invalid(format!("the policy is not JSON: {e}")))?;
    let expiration = doc
        .get("expiration")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("the policy has no expiration"))?;
    let expiration = parse_iso8601(expiration)
        .ok_or_else(|| invalid(format!("invalid expiration {expiration:?}")))?;
    let list = doc
        .get("conditions")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("the policy has no conditions list"))?;
    let mut conditions = vec![];
    for c in list {
        parse_condition(c, &mut conditions)?;
    }
    Ok(Policy {
        expiration,
        conditions,
    })
}

/// Form fields that no condition needs to name.
fn is_exempt(field: &str) -> bool {
    matches!(field, "policy" | "x-amz-signature" | "file") || field.starts_with("x-ignore-")
}

fn condition_text(op: &str, field: &str, value: &str) -> String {
    format!(
        "[\"{op}\", \"${field}\", {}]",
        Value::String(value.to_string())
    )
}

impl Policy {
    /// Checks expiration and conditions. `values` are the fields as checked (lower-case names,
    /// with `key` after `${filename}` substitution and `bucket` from the URL); `form_fields`
    /// the names of the fields the form carried.
    pub fn check<'a>(
        &self,
        now_secs: i64,
        values: &BTreeMap<String, String>,
        form_fields: impl IntoIterator<Item = &'a String>,
    ) -> Result<(), S3Error> {
        if now_secs >= self.expiration {
            return Err(denied("Policy expired."));
        }
        let get = |f: &str| values.get(f).map(String::as_str).unwrap_or("");
        for c in &self.conditions {
            match c {
                Condition::Eq { field, value } => {
                    if get(field) != value {
                        return Err(denied(format!(
                            "Policy Condition failed: {}",
                            condition_text("eq", field, value)
                        )));
                    }
                }
                Condition::StartsWith { field, prefix } => {
                    let v = get(field);
                    let ok = if field == "content-type" {
                        v.split(',').all(|p| p.trim().starts_with(prefix.as_str()))
                    } else {
                        v.starts_with(prefix.as_str())
                    };
                    if !ok {
                        return Err(denied(format!(
                            "Policy Condition failed: {}",
                            condition_text("starts-with", field, prefix)
                        )));
                    }
                }
                Condition::LengthRange { .. } => {}
            }
        }
        for f in form_fields {
            let covered = self.conditions.iter().any(|c| match c {
                Condition::Eq { field, .. } | Condition::StartsWith { field, .. } => field == f,
                Condition::LengthRange { .. } => false,
            });
            if !covered && !is_exempt(f) {
                return Err(denied(format!("Extra input fields: {f}")));
            }
        }
        Ok(())
    }

    /// The allowed file sizes (inclusive): the intersection of every content-length-range.
    pub fn length_range(&self) -> (u64, u64) {
        self.conditions
            .iter()
            .fold((0, u64::MAX), |(lo, hi), c| match c {
                Condition::LengthRange { min, max } => (lo.max(*min), hi.min(*max)),
                _ => (lo, hi),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(json: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(json)
    }

    const NOW: i64 = 1_900_000_000; // 2030-03-17

    fn policy(conditions: &str) -> Policy {
        parse_policy(&b64(&format!(
            r#"{{"expiration": "2030-04-01T00:00:00.000Z", "conditions": [{conditions}]}}"#
        )))
        .expect("valid policy")
    }

    fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn dates() {
        assert_eq!(parse_iso8601("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_iso8601("1970-01-01T00:01:00.123Z"), Some(60));
        assert_eq!(parse_iso8601("1970-01-01T00:01:00.Z"), None);
        assert_eq!(parse_iso8601("1970-01-01 00:01:00Z"), None);
        assert_eq!(parse_iso8601("1970-13-01T00:01:00Z"), None);
        assert_eq!(parse_iso8601("é"), None);
    }

    #[test]
    fn parsing() {
        let p = policy(
            r#"{"bucket": "b"}, ["starts-with", "$Key", "u/"], ["content-length-range", 1, "10"],
               ["EQ", "$x-amz-meta-a", "v"]"#,
        );
        assert_eq!(
            p.conditions,
            vec![
                Condition::Eq {
                    field: "bucket".into(),
                    value: "b".into()
                },
                Condition::StartsWith {
                    field: "key".into(),
                    prefix: "u/".into()
                },
                Condition::LengthRange { min: 1, max: 10 },
                Condition::Eq {
                    field: "x-amz-meta-a".into(),
                    value: "v".into()
                },
            ]
        );
        assert_eq!(p.length_range(), (1, 10));
        let code = |s: &str| parse_policy(s).map(|_| ()).map_err(|e| e.code());
        assert_eq!(code("%%%"), Err("InvalidPolicyDocument"));
        assert_eq!(code(&b64("not json")), Err("InvalidPolicyDocument"));
        assert_eq!(
            code(&b64(r#"{"conditions": []}"#)),
            Err("InvalidPolicyDocument")
        );
        let with = |c: &str| {
            code(&b64(&format!(
                r#"{{"expiration": "2030-01-01T00:00:00Z", "conditions": [{c}]}}"#
            )))
        };
        assert_eq!(with(""), Ok(()));
        assert_eq!(with(r#"["eq", "key", "x"]"#), Err("InvalidPolicyDocument"));
        assert_eq!(with(r#"["lt", "$key", "x"]"#), Err("InvalidPolicyDocument"));
        assert_eq!(with(r#"["eq", "$key"]"#), Err("InvalidPolicyDocument"));
        assert_eq!(
            with(r#"["content-length-range", 5, 1]"#),
            Err("InvalidPolicyDocument")
        );
        assert_eq!(with(r#"{"key": 3}"#), Err("InvalidPolicyDocument"));
        assert_eq!(with("3"), Err("InvalidPolicyDocument"));
    }

    #[test]
    fn checks() {
        let p = policy(
            r#"{"bucket": "b"}, ["starts-with", "$key", "u/"], ["starts-with", "$content-type", "image/"],
               ["eq", "$x-amz-date", "d"]"#,
        );
        let v = fields(&[
            ("bucket", "b"),
            ("key", "u/1"),
            ("content-type", "image/png"),
            ("x-amz-date", "d"),
        ]);
        let form: Vec<String> = ["key", "content-type", "x-amz-date", "policy", "x-ignore-me"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(p.check(NOW, &v, &form).is_ok());
        let err = |r: Result<(), S3Error>| r.map_err(|e| (e.code(), e.to_string()));
        let e = err(p.check(p.expiration, &v, &form)).expect_err("expired");
        assert!(e.1.contains("Policy expired"), "{e:?}");
        let mut bad = v.clone();
        bad.insert("key".into(), "x/1".into());
        let e = err(p.check(NOW, &bad, &form)).expect_err("key");
        assert_eq!(e.0, "AccessDenied");
        assert!(e.1.contains(r#"["starts-with", "$key", "u/"]"#), "{e:?}");
        let mut bad = v.clone();
        bad.insert("bucket".into(), "other".into());
        assert!(p.check(NOW, &bad, &form).is_err());
        let mut bad = v.clone();
        bad.insert("content-type".into(), "image/png, text/html".into());
        assert!(p.check(NOW, &bad, &form).is_err());
        let mut extra = form.clone();
        extra.push("x-amz-meta-z".into());
        let e = err(p.check(NOW, &v, &extra)).expect_err("extra field");
        assert!(e.1.contains("Extra input fields: x-amz-meta-z"), "{e:?}");
        assert_eq!(p.length_range(), (0, u64::MAX));
    }
}
