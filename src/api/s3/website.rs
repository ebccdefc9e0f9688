//! PutBucketWebsite, GetBucketWebsite and DeleteBucketWebsite (`?website` on a bucket, owner
//! permission). The stored configuration is the bucket's `website_config`, the same register
//! `garage bucket website --allow|--deny` writes: putting a configuration enables the web
//! endpoint for the bucket, deleting it disables it.
//!
//! The XML body is read with a size bound and checked strictly: a document that is not XML, not a
//! `WebsiteConfiguration`, or that has unknown or repeated elements is `MalformedXML`; values or
//! combinations AWS refuses (no index document and no redirect-all, redirect-all together with
//! other settings, both key replacements in one rule, a redirect code that is not 3xx, …) are
//! `InvalidArgument`.

use http::{Response, StatusCode};
use serde::Deserialize;

use super::error::S3Error;
use super::request::{Need, ReqCtx};
use super::xml::{parse, Xml};
use super::{empty_body, full_body, ResBody};
use crate::model::bucket::{
    RedirectAll, RedirectProtocol, RoutingRule, RuleCondition, RuleRedirect, WebsiteConfig,
};

/// Largest website configuration document accepted (AWS allows 50 rules; this leaves room).
pub const MAX_WEBSITE_BODY: usize = 128 * 1024;
/// Most routing rules in one configuration (as AWS).
pub const MAX_ROUTING_RULES: usize = 50;
/// Longest key, prefix or document name in a configuration (the object key limit).
const MAX_VALUE_LEN: usize = 1024;
/// Longest host name (DNS limit, plus a port).
const MAX_HOST_LEN: usize = 260;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct WebsiteXml {
    #[serde(rename = "@xmlns", default)]
    _xmlns: Option<String>,
    error_document: Option<ErrorDocumentXml>,
    index_document: Option<IndexDocumentXml>,
    redirect_all_requests_to: Option<RedirectAllXml>,
    routing_rules: Option<RoutingRulesXml>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct ErrorDocumentXml {
    key: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct IndexDocumentXml {
    suffix: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct RedirectAllXml {
    host_name: String,
    protocol: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoutingRulesXml {
    #[serde(rename = "RoutingRule", default)]
    rules: Vec<RoutingRuleXml>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct RoutingRuleXml {
    condition: Option<ConditionXml>,
    redirect: RedirectXml,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct ConditionXml {
    http_error_code_returned_equals: Option<String>,
    key_prefix_equals: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct RedirectXml {
    host_name: Option<String>,
    http_redirect_code: Option<String>,
    protocol: Option<String>,
    replace_key_prefix_with: Option<String>,
    replace_key_with: Option<String>,
}

fn invalid(msg: impl Into<String>) -> S3Error {
    S3Error::InvalidArgument(msg.into())
}

/// The name of the document's root element, if the document has one.
fn root_element(body: &[u8]) -> Result<String, S3Error> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut buf = vec![];
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => {
                return Ok(String::from_utf8_lossy(e.local_name().as_ref()).into_owned())
            }
            Ok(Event::Eof) => return Err(S3Error::MalformedXml("empty document".into())),
            Ok(_) => buf.clear(),
            Err(e) => return Err(S3Error::MalformedXml(e.to_string())),
        }
    }
}

fn parse_protocol(p: Option<String>) -> Result<Option<RedirectProtocol>, S3Error> {
    match p.as_deref().map(str::trim) {
        None => Ok(None),
        Some("http") => Ok(Some(RedirectProtocol::Http)),
        Some("https") => Ok(Some(RedirectProtocol::Https)),
        Some(other) => Err(invalid(format!(
            "invalid protocol {other:?}: the protocol can be http or https, or be left out"
        ))),
    }
}

/// A host name (with an optional port) safe to put in a `Location` header.
fn check_host(h: &str) -> Result<String, S3Error> {
    let h = h.trim();
    let ok = !h.is_empty()
        && h.len() <= MAX_HOST_LEN
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']'));
    if ok {
        Ok(h.to_string())
    } else {
        Err(invalid(format!("invalid host name {:?}", truncate(h))))
    }
}

fn check_len(what: &str, v: &str) -> Result<(), S3Error> {
    if v.len() > MAX_VALUE_LEN {
        return Err(invalid(format!(
            "{what} is longer than {MAX_VALUE_LEN} bytes"
        )));
    }
    Ok(())
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn parse_rule(r: RoutingRuleXml) -> Result<RoutingRule, S3Error> {
    let condition = match r.condition {
        None => None,
        Some(c) => {
            let code = match c.http_error_code_returned_equals.as_deref().map(str::trim) {
                None => None,
                Some(s) => Some(
                    s.parse::<u16>()
                        .ok()
                        .filter(|c| (400..=599).contains(c))
                        .ok_or_else(|| {
                            invalid(format!(
                                "the HTTP error code {:?} is not valid: valid codes are 4XX or 5XX",
                                truncate(s)
                            ))
                        })?,
                ),
            };
            if let Some(p) = &c.key_prefix_equals {
                check_len("KeyPrefixEquals", p)?;
            }
            if code.is_none() && c.key_prefix_equals.is_none() {
                return Err(invalid(
                    "a Condition needs KeyPrefixEquals or HttpErrorCodeReturnedEquals \
                     (leave the Condition out to redirect every request)",
                ));
            }
            Some(RuleCondition {
                key_prefix_equals: c.key_prefix_equals,
                http_error_code_returned_equals: code,
            })
        }
    };
    let x = r.redirect;
    if x.replace_key_prefix_with.is_some() && x.replace_key_with.is_some() {
        return Err(invalid(
            "a Redirect can define ReplaceKeyPrefixWith or ReplaceKeyWith, not both",
        ));
    }
    let code = match x.http_redirect_code.as_deref().map(str::trim) {
        None => None,
        Some(s) => Some(
            s.parse::<u16>()
                .ok()
                .filter(|c| matches!(c, 301 | 302 | 303 | 307 | 308))
                .ok_or_else(|| {
                    invalid(format!(
                        "the HTTP redirect code {:?} is not valid: use 301, 302, 303, 307 or 308",
                        truncate(s)
                    ))
                })?,
        ),
    };
    for (what, v) in [
        ("ReplaceKeyPrefixWith", &x.replace_key_prefix_with),
        ("ReplaceKeyWith", &x.replace_key_with),
    ] {
        if let Some(v) = v {
            check_len(what, v)?;
        }
    }
    let redirect = RuleRedirect {
        host_name: x.host_name.as_deref().map(check_host).transpose()?,
        protocol: parse_protocol(x.protocol)?,
        http_redirect_code: code,
        replace_key_prefix_with: x.replace_key_prefix_with,
        replace_key_with: x.replace_key_with,
    };
    if redirect == RuleRedirect::default() {
        return Err(invalid(
            "a Redirect needs at least one of HostName, Protocol, HttpRedirectCode, \
             ReplaceKeyPrefixWith, ReplaceKeyWith",
        ));
    }
    Ok(RoutingRule {
        condition,
        redirect,
    })
}

/// Parses and validates a `WebsiteConfiguration` document.
pub fn parse_website(body: &[u8]) -> Result<WebsiteConfig, S3Error> {
    let root = root_element(body)?;
    if root != "WebsiteConfiguration" {
        return Err(S3Error::MalformedXml(format!(
            "the root element is {:?}, not WebsiteConfiguration",
            truncate(&root)
        )));
    }
    let x: WebsiteXml = parse(body)?;
    if let Some(all) = x.redirect_all_requests_to {
        if x.index_document.is_some() || x.error_document.is_some() || x.routing_rules.is_some() {
            return Err(invalid(
                "RedirectAllRequestsTo cannot be given together with IndexDocument, \
                 ErrorDocument or RoutingRules",
            ));
        }
        return Ok(WebsiteConfig {
            index_document: String::new(),
            error_document: None,
            redirect_all: Some(RedirectAll {
                host_name: check_host(&all.host_name)?,
                protocol: parse_protocol(all.protocol)?,
            }),
            routing_rules: vec![],
        });
    }
    let index = x.index_document.ok_or_else(|| {
        invalid(
            "a value for IndexDocument Suffix must be provided if RedirectAllRequestsTo is empty",
        )
    })?;
    let suffix = index.suffix;
    if suffix.is_empty() || suffix.contains('/') || suffix.len() > MAX_VALUE_LEN {
        return Err(invalid(
            "the IndexDocument Suffix is not well formed: it must be a non-empty name without /",
        ));
    }
    let error_document = match x.error_document {
        Some(e) if e.key.is_empty() => {
            return Err(invalid("the ErrorDocument Key must not be empty"))
        }
        Some(e) => {
            check_len("ErrorDocument Key", &e.key)?;
            Some(e.key)
        }
        None => None,
    };
    let rules = match x.routing_rules {
        None => vec![],
        Some(r) if r.rules.is_empty() => {
            return Err(S3Error::MalformedXml(
                "RoutingRules must contain at least one RoutingRule".into(),
            ))
        }
        Some(r) => r.rules,
    };
    if rules.len() > MAX_ROUTING_RULES {
        return Err(invalid(format!(
            "at most {MAX_ROUTING_RULES} routing rules are allowed"
        )));
    }
    let routing_rules = rules
        .into_iter()
        .map(parse_rule)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(WebsiteConfig {
        index_document: suffix,
        error_document,
        redirect_all: None,
        routing_rules,
    })
}

/// Writes a configuration as GetBucketWebsite answers it.
pub fn website_xml(w: &WebsiteConfig) -> String {
    let mut x = Xml::new("WebsiteConfiguration");
    if let Some(all) = &w.redirect_all {
        x.open("RedirectAllRequestsTo")
            .elem("HostName", &all.host_name);
        if let Some(p) = all.protocol {
            x.elem("Protocol", p.as_str());
        }
        x.close("RedirectAllRequestsTo");
        return x.finish("WebsiteConfiguration");
    }
    x.open("IndexDocument")
        .elem("Suffix", &w.index_document)
        .close("IndexDocument");
    if let Some(e) = &w.error_document {
        x.open("ErrorDocument")
            .elem("Key", e)
            .close("ErrorDocument");
    }
    if !w.routing_rules.is_empty() {
        x.open("RoutingRules");
        for r in &w.routing_rules {
            x.open("RoutingRule");
            if let Some(c) = &r.condition {
                x.open("Condition");
                if let Some(code) = c.http_error_code_returned_equals {
                    x.elem("HttpErrorCodeReturnedEquals", &code.to_string());
                }
                if let Some(p) = &c.key_prefix_equals {
                    x.elem("KeyPrefixEquals", p);
                }
                x.close("Condition");
            }
            let d = &r.redirect;
            x.open("Redirect");
            if let Some(h) = &d.host_name {
                x.elem("HostName", h);
            }
            if let Some(code) = d.http_redirect_code {
                x.elem("HttpRedirectCode", &code.to_string());
            }
            if let Some(p) = d.protocol {
                x.elem("Protocol", p.as_str());
            }
            if let Some(p) = &d.replace_key_prefix_with {
                x.elem("ReplaceKeyPrefixWith", p);
            }
            if let Some(k) = &d.replace_key_with {
                x.elem("ReplaceKeyWith", k);
            }
            x.close("Redirect").close("RoutingRule");
        }
        x.close("RoutingRules");
    }
    x.finish("WebsiteConfiguration")
}

fn empty(status: StatusCode) -> Result<Response<ResBody>, S3Error> {
    Response::builder()
        .status(status)
        .body(empty_body())
        .map_err(|e| S3Error::Internal(e.to_string()))
}

/// PUT /bucket?website
pub async fn put_website(mut ctx: ReqCtx) -> Result<Response<ResBody>, S3Error> {
    let mut bucket = ctx.bucket(Need::Owner).await?;
    let body = ctx.read_small_body(MAX_WEBSITE_BODY).await?;
    let conf = parse_website(&body)?;
    if let Some(p) = bucket.params_mut() {
        p.website_config.update(Some(conf));
    }
    ctx.api.model.buckets.insert(&bucket).await?;
    empty(StatusCode::OK)
}

/// GET /bucket?website
pub async fn get_website(ctx: &ReqCtx) -> Result<Response<ResBody>, S3Error> {
    let bucket = ctx.bucket(Need::Owner).await?;
    let name = ctx.bucket_name()?;
    let conf = bucket
        .params()
        .and_then(|p| p.website_config.get().clone())
        .ok_or_else(|| S3Error::NoSuchWebsiteConfiguration(name.to_string()))?;
    Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "application/xml")
        .body(full_body(website_xml(&conf)))
        .map_err(|e| S3Error::Internal(e.to_string()))
}

/// DELETE /bucket?website (204 whether a configuration existed or not).
pub async fn delete_website(ctx: &ReqCtx) -> Result<Response<ResBody>, S3Error> {
    let mut bucket = ctx.bucket(Need::Owner).await?;
    let had = bucket
        .params()
        .is_some_and(|p| p.website_config.get().is_some());
    if had {
        if let Some(p) = bucket.params_mut() {
            p.website_config.update(None);
        }
        ctx.api.model.buckets.insert(&bucket).await?;
    }
    empty(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(inner: &str) -> Vec<u8> {
        format!(
            "<WebsiteConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{inner}</WebsiteConfiguration>"
        )
        .into_bytes()
    }

    fn code(r: Result<WebsiteConfig, S3Error>) -> &'static str {
        match r {
            Ok(c) => panic!("should fail, parsed {c:?}"),
            Err(e) => e.code(),
        }
    }

    #[test]
    fn documents_and_rules_round_trip() {
        let body = doc("<IndexDocument><Suffix>index.html</Suffix></IndexDocument>\
             <ErrorDocument><Key>err/404.html</Key></ErrorDocument>\
             <RoutingRules>\
               <RoutingRule><Condition><KeyPrefixEquals>docs/</KeyPrefixEquals></Condition>\
                 <Redirect><ReplaceKeyPrefixWith>documents/</ReplaceKeyPrefixWith></Redirect></RoutingRule>\
               <RoutingRule><Condition><HttpErrorCodeReturnedEquals>404</HttpErrorCodeReturnedEquals></Condition>\
                 <Redirect><HostName>fallback.example.com</HostName><Protocol>https</Protocol>\
                 <HttpRedirectCode>302</HttpRedirectCode><ReplaceKeyWith>missing.html</ReplaceKeyWith></Redirect></RoutingRule>\
             </RoutingRules>");
        let c = parse_website(&body).expect("valid");
        assert_eq!(c.index_document, "index.html");
        assert_eq!(c.error_document.as_deref(), Some("err/404.html"));
        assert_eq!(c.routing_rules.len(), 2);
        let r = &c.routing_rules[1];
        assert_eq!(
            r.condition
                .as_ref()
                .and_then(|c| c.http_error_code_returned_equals),
            Some(404)
        );
        assert_eq!(r.redirect.protocol, Some(RedirectProtocol::Https));
        assert_eq!(r.redirect.http_redirect_code, Some(302));
        // What Get answers parses back to the same configuration.
        assert_eq!(parse_website(website_xml(&c).as_bytes()).expect("again"), c);
    }

    #[test]
    fn redirect_all_round_trip() {
        let body = doc("<RedirectAllRequestsTo><HostName>example.com</HostName>\
             <Protocol>https</Protocol></RedirectAllRequestsTo>");
        let c = parse_website(&body).expect("valid");
        let all = c.redirect_all.clone().expect("redirect all");
        assert_eq!(all.host_name, "example.com");
        assert_eq!(all.protocol, Some(RedirectProtocol::Https));
        assert_eq!(parse_website(website_xml(&c).as_bytes()).expect("again"), c);
    }

    #[test]
    fn malformed_documents() {
        assert_eq!(code(parse_website(b"")), "MalformedXML");
        assert_eq!(
            code(parse_website(b"<WebsiteConfiguration><Index")),
            "MalformedXML"
        );
        assert_eq!(code(parse_website(b"not xml at all")), "MalformedXML");
        assert_eq!(
            code(parse_website(
                b"<Other><IndexDocument><Suffix>i</Suffix></IndexDocument></Other>"
            )),
            "MalformedXML"
        );
        // Unknown and repeated elements.
        assert_eq!(
            code(parse_website(&doc(
                "<IndexDocument><Suffix>i</Suffix></IndexDocument><Foo/>"
            ))),
            "MalformedXML"
        );
        assert_eq!(
            code(parse_website(&doc(
                "<IndexDocument><Suffix>a</Suffix></IndexDocument>\
                 <IndexDocument><Suffix>b</Suffix></IndexDocument>"
            ))),
            "MalformedXML"
        );
        // A rule without Redirect, and empty RoutingRules.
        assert_eq!(
            code(parse_website(&doc(
                "<IndexDocument><Suffix>i</Suffix></IndexDocument><RoutingRules><RoutingRule>\
                 <Condition><KeyPrefixEquals>a</KeyPrefixEquals></Condition></RoutingRule></RoutingRules>"
            ))),
            "MalformedXML"
        );
        assert_eq!(
            code(parse_website(&doc(
                "<IndexDocument><Suffix>i</Suffix></IndexDocument><RoutingRules></RoutingRules>"
            ))),
            "MalformedXML"
        );
    }

    #[test]
    fn invalid_combinations() {
        let idx = "<IndexDocument><Suffix>index.html</Suffix></IndexDocument>";
        let rule = |cond: &str, redir: &str| {
            doc(&format!(
                "{idx}<RoutingRules><RoutingRule>{cond}<Redirect>{redir}</Redirect></RoutingRule></RoutingRules>"
            ))
        };
        // Nothing at all, or redirect-all with other settings.
        assert_eq!(code(parse_website(&doc(""))), "InvalidArgument");
        assert_eq!(
            code(parse_website(&doc(&format!(
                "{idx}<RedirectAllRequestsTo><HostName>h</HostName></RedirectAllRequestsTo>"
            )))),
            "InvalidArgument"
        );
        // Bad index suffixes and host names.
        for s in ["", "a/b"] {
            let d = doc(&format!(
                "<IndexDocument><Suffix>{s}</Suffix></IndexDocument>"
            ));
            assert_eq!(code(parse_website(&d)), "InvalidArgument", "suffix {s:?}");
        }
        assert_eq!(
            code(parse_website(&doc(
                "<RedirectAllRequestsTo><HostName>a b\r\nX: y</HostName></RedirectAllRequestsTo>"
            ))),
            "InvalidArgument"
        );
        assert_eq!(
            code(parse_website(&doc(
                "<RedirectAllRequestsTo><HostName>h</HostName><Protocol>ftp</Protocol></RedirectAllRequestsTo>"
            ))),
            "InvalidArgument"
        );
        // Both key replacements; redirect codes; error codes; empty condition or redirect.
        assert_eq!(
            code(parse_website(&rule(
                "",
                "<ReplaceKeyWith>a</ReplaceKeyWith><ReplaceKeyPrefixWith>b</ReplaceKeyPrefixWith>"
            ))),
            "InvalidArgument"
        );
        for c in ["200", "300", "304", "abc", "99999"] {
            let d = rule("", &format!("<HttpRedirectCode>{c}</HttpRedirectCode>"));
            assert_eq!(
                code(parse_website(&d)),
                "InvalidArgument",
                "redirect code {c}"
            );
        }
        for c in ["200", "301", "x"] {
            let d = rule(
                &format!("<Condition><HttpErrorCodeReturnedEquals>{c}</HttpErrorCodeReturnedEquals></Condition>"),
                "<HostName>h</HostName>",
            );
            assert_eq!(code(parse_website(&d)), "InvalidArgument", "error code {c}");
        }
        assert_eq!(
            code(parse_website(&rule(
                "<Condition></Condition>",
                "<HostName>h</HostName>"
            ))),
            "InvalidArgument"
        );
        assert_eq!(code(parse_website(&rule("", ""))), "InvalidArgument");
        // Too many rules.
        let many: String = (0..=MAX_ROUTING_RULES)
            .map(|i| {
                format!(
                    "<RoutingRule><Condition><KeyPrefixEquals>p{i}/</KeyPrefixEquals></Condition>\
                     <Redirect><HostName>h</HostName></Redirect></RoutingRule>"
                )
            })
            .collect();
        let d = doc(&format!("{idx}<RoutingRules>{many}</RoutingRules>"));
        assert_eq!(code(parse_website(&d)), "InvalidArgument");
    }

    #[test]
    fn hostile_values_are_escaped_on_output() {
        let c = WebsiteConfig::documents("i<&>.html".into(), Some("e\"'.html".into()));
        let x = website_xml(&c);
        assert!(x.contains("<Suffix>i&lt;&amp;&gt;.html</Suffix>"), "{x}");
        assert_eq!(parse_website(x.as_bytes()).expect("parse back"), c);
    }
}
