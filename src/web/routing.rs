//! Redirect decisions of the website endpoint: `RedirectAllRequestsTo` and `RoutingRules`.
//!
//! Rules are tried in their configured order and the first one that holds wins. A rule's
//! condition is a key prefix (compared with the key as requested, before the index document is
//! appended) and/or the HTTP error status the request would otherwise get. A rule with no
//! error condition can be decided before the object is looked up; as soon as an error-conditioned
//! rule comes first among the rules whose prefix matches, the lookup is needed to decide.
//!
//! A redirect keeps the request's protocol and host unless the rule names others; its key is the
//! rule's `ReplaceKeyWith`, or the requested key with the matched prefix replaced by
//! `ReplaceKeyPrefixWith`, or the requested key unchanged. Keys are percent-encoded in the
//! `Location` header; the status is the rule's code, 301 by default.

use http::StatusCode;

use crate::api::signature::canonical::uri_encode;
use crate::model::bucket::{RedirectAll, RoutingRule};

/// Where the request came from, for redirects that keep its protocol and host.
#[derive(Clone, Copy, Debug)]
pub struct Origin<'a> {
    /// `http` or `https` (from `X-Forwarded-Proto` behind a proxy; `http` otherwise).
    pub protocol: &'a str,
    /// The Host header as received, port included; empty when the request had none.
    pub host: &'a str,
}

/// A redirect answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redirect {
    pub status: StatusCode,
    pub location: String,
}

/// What a request's routing depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Not known yet: only rules without an error condition can be decided.
    Unknown,
    /// The object (or a folder redirect, or a 304) would be answered.
    Success,
    /// The request would fail with this status.
    Error(u16),
}

/// The `Location` for `key` on `host` (relative when no host is known).
fn location(protocol: &str, host: &str, key: &str) -> String {
    let path = uri_encode(key.trim_start_matches('/').as_bytes(), false);
    if host.is_empty() {
        format!("/{path}")
    } else {
        format!("{protocol}://{host}/{path}")
    }
}

/// `RedirectAllRequestsTo`: the same key on the configured host, always 301.
pub fn redirect_all(all: &RedirectAll, origin: Origin<'_>, key: &str) -> Redirect {
    let protocol = all.protocol.map(|p| p.as_str()).unwrap_or(origin.protocol);
    Redirect {
        status: StatusCode::MOVED_PERMANENTLY,
        location: location(protocol, &all.host_name, key),
    }
}

/// Whether a rule's key-prefix condition (if any) holds.
fn prefix_matches(rule: &RoutingRule, key: &str) -> bool {
    match rule
        .condition
        .as_ref()
        .and_then(|c| c.key_prefix_equals.as_deref())
    {
        Some(p) => key.starts_with(p),
        None => true,
    }
}

fn error_condition(rule: &RoutingRule) -> Option<u16> {
    rule.condition
        .as_ref()
        .and_then(|c| c.http_error_code_returned_equals)
}

/// What the rules say about a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision<'a> {
    /// This rule applies.
    Apply(&'a RoutingRule),
    /// No rule applies.
    NoRule,
    /// The outcome is needed to decide (an error rule whose prefix matches comes first).
    NeedOutcome,
}

/// The rule that applies to `key` given what is known of the outcome.
pub fn find_rule<'a>(rules: &'a [RoutingRule], key: &str, outcome: Outcome) -> Decision<'a> {
    for rule in rules.iter().filter(|r| prefix_matches(r, key)) {
        match (error_condition(rule), outcome) {
            (None, _) => return Decision::Apply(rule),
            (Some(_), Outcome::Unknown) => return Decision::NeedOutcome,
            (Some(code), Outcome::Error(status)) if code == status => return Decision::Apply(rule),
            (Some(_), _) => continue,
        }
    }
    Decision::NoRule
}

/// The redirect a rule answers for `key`.
pub fn apply_rule(rule: &RoutingRule, origin: Origin<'_>, key: &str) -> Redirect {
    let r = &rule.redirect;
    let new_key = if let Some(k) = &r.replace_key_with {
        k.clone()
    } else if let Some(p) = &r.replace_key_prefix_with {
        let matched = rule
            .condition
            .as_ref()
            .and_then(|c| c.key_prefix_equals.as_deref())
            .unwrap_or("");
        format!("{p}{}", key.strip_prefix(matched).unwrap_or(key))
    } else {
        key.to_string()
    };
    let protocol = r.protocol.map(|p| p.as_str()).unwrap_or(origin.protocol);
    let host = r.host_name.as_deref().unwrap_or(origin.host);
    let status = r
        .http_redirect_code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .filter(StatusCode::is_redirection)
        .unwrap_or(StatusCode::MOVED_PERMANENTLY);
    Redirect {
        status,
        location: location(protocol, host, &new_key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::bucket::{RedirectProtocol, RuleCondition, RuleRedirect};

    const ORIGIN: Origin<'static> = Origin {
        protocol: "http",
        host: "site.web.garage:3902",
    };

    fn rule(prefix: Option<&str>, code: Option<u16>, redirect: RuleRedirect) -> RoutingRule {
        RoutingRule {
            condition: (prefix.is_some() || code.is_some()).then(|| RuleCondition {
                key_prefix_equals: prefix.map(String::from),
                http_error_code_returned_equals: code,
            }),
            redirect,
        }
    }

    fn to_host(h: &str) -> RuleRedirect {
        RuleRedirect {
            host_name: Some(h.into()),
            ..Default::default()
        }
    }

    #[test]
    fn redirect_all_keeps_the_key() {
        let all = RedirectAll {
            host_name: "example.com".into(),
            protocol: Some(RedirectProtocol::Https),
        };
        let r = redirect_all(&all, ORIGIN, "a b/c.html");
        assert_eq!(r.status, StatusCode::MOVED_PERMANENTLY);
        assert_eq!(r.location, "https://example.com/a%20b/c.html");
        let all = RedirectAll {
            protocol: None,
            ..all
        };
        assert_eq!(
            redirect_all(&all, ORIGIN, "").location,
            "http://example.com/"
        );
    }

    #[test]
    fn rules_in_order() {
        let rules = vec![
            rule(Some("old/"), Some(404), to_host("a")),
            rule(Some("old/"), None, to_host("b")),
            rule(None, Some(404), to_host("c")),
        ];
        let host = |d: Decision<'_>| match d {
            Decision::Apply(r) => r.redirect.host_name.clone(),
            Decision::NoRule => None,
            Decision::NeedOutcome => panic!("undecided"),
        };
        // The error rule comes first for old/: the outcome is needed.
        assert_eq!(
            find_rule(&rules, "old/x", Outcome::Unknown),
            Decision::NeedOutcome
        );
        assert_eq!(
            host(find_rule(&rules, "old/x", Outcome::Error(404))),
            Some("a".into())
        );
        assert_eq!(
            host(find_rule(&rules, "old/x", Outcome::Success)),
            Some("b".into())
        );
        assert_eq!(
            host(find_rule(&rules, "old/x", Outcome::Error(416))),
            Some("b".into())
        );
        // Elsewhere only the 404 rule can apply.
        assert_eq!(
            find_rule(&rules, "new/x", Outcome::Unknown),
            Decision::NeedOutcome
        );
        assert_eq!(host(find_rule(&rules, "new/x", Outcome::Success)), None);
        assert_eq!(
            host(find_rule(&rules, "new/x", Outcome::Error(404))),
            Some("c".into())
        );
        // A prefix-only rule first decides without a lookup.
        let rules = vec![rule(Some("p"), None, to_host("d"))];
        assert_eq!(
            host(find_rule(&rules, "p/q", Outcome::Unknown)),
            Some("d".into())
        );
        assert_eq!(host(find_rule(&rules, "q", Outcome::Unknown)), None);
    }

    #[test]
    fn rule_targets() {
        let r = rule(
            Some("docs/"),
            None,
            RuleRedirect {
                replace_key_prefix_with: Some("documents/".into()),
                ..Default::default()
            },
        );
        let x = apply_rule(&r, ORIGIN, "docs/a/b.html");
        assert_eq!(x.status, StatusCode::MOVED_PERMANENTLY);
        assert_eq!(x.location, "http://site.web.garage:3902/documents/a/b.html");
        let r = rule(
            None,
            Some(404),
            RuleRedirect {
                host_name: Some("other.example".into()),
                protocol: Some(RedirectProtocol::Https),
                http_redirect_code: Some(307),
                replace_key_with: Some("/error.html".into()),
                ..Default::default()
            },
        );
        let x = apply_rule(&r, ORIGIN, "missing");
        assert_eq!(x.status, StatusCode::TEMPORARY_REDIRECT);
        assert_eq!(x.location, "https://other.example/error.html");
        // Prefix replacement without a prefix condition prepends.
        let r = rule(
            None,
            Some(404),
            RuleRedirect {
                replace_key_prefix_with: Some("fallback/".into()),
                ..Default::default()
            },
        );
        let x = apply_rule(&r, ORIGIN, "x?y#z");
        assert_eq!(x.location, "http://site.web.garage:3902/fallback/x%3Fy%23z");
        // Without any host: a relative location.
        let origin = Origin {
            protocol: "http",
            host: "",
        };
        assert_eq!(apply_rule(&r, origin, "k").location, "/fallback/k");
    }
}
