//! Bucket lifecycle configuration: PutBucketLifecycleConfiguration, GetBucketLifecycleConfiguration
//! and DeleteBucketLifecycle (owner permission). The rules are stored in the bucket entry and
//! applied by the lifecycle worker (`model::lifecycle_worker`).
//!
//! Parsing is strict: the document is read into an element tree, every element must be known;
//! elements of S3 that Garage does not apply (transitions, noncurrent versions, tag filters,
//! `ExpiredObjectDeleteMarker`) are refused with 501 NotImplemented rather than ignored, so a
//! client never believes a rule is in force when it is not.

use http::{Response, StatusCode};
use quick_xml::events::Event;

use super::error::S3Error;
use super::request::{Need, ReqCtx};
use super::xml::Xml;
use super::{empty_body, full_body, ResBody};
use crate::model::lifecycle::{LifecycleExpiration, LifecycleFilter, LifecycleRule, DAY_MS};
use crate::util::time::{msec_to_rfc3339, parse_iso8601};

/// Largest lifecycle document accepted.
const MAX_LIFECYCLE_BODY: usize = 256 << 10;
/// Most rules in a configuration (as S3).
const MAX_RULES: usize = 1000;
/// Longest rule ID (as S3).
const MAX_ID_LEN: usize = 255;
/// Deepest element nesting accepted.
const MAX_DEPTH: usize = 8;

/// An XML element: its local name, text and child elements.
#[derive(Debug, Default)]
struct Elem {
    name: String,
    text: String,
    children: Vec<Elem>,
}

fn malformed(m: impl Into<String>) -> S3Error {
    S3Error::MalformedXml(m.into())
}

/// Reads a document into an element tree (attributes, comments and declarations ignored).
fn parse_tree(body: &[u8]) -> Result<Elem, S3Error> {
    let text = std::str::from_utf8(body).map_err(|_| malformed("not UTF-8"))?;
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().trim_text(true);
    let mut stack: Vec<Elem> = vec![];
    let mut root: Option<Elem> = None;
    let open = |stack: &mut Vec<Elem>, root: &Option<Elem>, name: &[u8]| {
        if root.is_some() {
            return Err(malformed("content after the root element"));
        }
        if stack.len() >= MAX_DEPTH {
            return Err(malformed("elements are nested too deeply"));
        }
        let name = std::str::from_utf8(name).map_err(|_| malformed("element name not UTF-8"))?;
        stack.push(Elem {
            name: name.to_string(),
            ..Default::default()
        });
        Ok(())
    };
    let close = |stack: &mut Vec<Elem>, root: &mut Option<Elem>| {
        let e = stack.pop().ok_or_else(|| malformed("unbalanced end tag"))?;
        match stack.last_mut() {
            Some(parent) => parent.children.push(e),
            None => *root = Some(e),
        }
        Ok::<_, S3Error>(())
    };
    loop {
        match reader.read_event().map_err(|e| malformed(e.to_string()))? {
            Event::Start(e) => open(&mut stack, &root, e.local_name().as_ref())?,
            Event::Empty(e) => {
                open(&mut stack, &root, e.local_name().as_ref())?;
                close(&mut stack, &mut root)?;
            }
            Event::End(_) => close(&mut stack, &mut root)?,
            Event::Text(t) => {
                let t = t.unescape().map_err(|e| malformed(e.to_string()))?;
                match stack.last_mut() {
                    Some(cur) => cur.text.push_str(&t),
                    None => return Err(malformed("text outside of the root element")),
                }
            }
            Event::CData(t) => match stack.last_mut() {
                Some(cur) => cur
                    .text
                    .push_str(std::str::from_utf8(&t).map_err(|_| malformed("not UTF-8"))?),
                None => return Err(malformed("text outside of the root element")),
            },
            Event::DocType(_) => return Err(malformed("DOCTYPE is not allowed")),
            Event::Eof => break,
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => (),
        }
    }
    if !stack.is_empty() {
        return Err(malformed("unexpected end of the document"));
    }
    root.ok_or_else(|| malformed("empty document"))
}

/// Element names S3 defines in a lifecycle document that Garage does not apply.
const UNSUPPORTED: &[&str] = &[
    "Transition",
    "Transitions",
    "NoncurrentVersionTransition",
    "NoncurrentVersionExpiration",
    "ExpiredObjectDeleteMarker",
    "Tag",
];

impl Elem {
    /// Checks that every child is one of `allowed`; S3 elements Garage does not apply are 501.
    fn check_children(&self, allowed: &[&str]) -> Result<(), S3Error> {
        for c in &self.children {
            if allowed.contains(&c.name.as_str()) {
                continue;
            }
            if UNSUPPORTED.contains(&c.name.as_str()) {
                return Err(S3Error::NotImplemented(format!(
                    "lifecycle rules with <{}> are not supported by this server (supported: Expiration with Days or Date, AbortIncompleteMultipartUpload, filters on Prefix and object size)",
                    c.name
                )));
            }
            return Err(malformed(format!(
                "unexpected element <{}> in <{}>",
                c.name, self.name
            )));
        }
        if !self.children.is_empty() && !self.text.is_empty() {
            return Err(malformed(format!(
                "<{}> mixes text and elements",
                self.name
            )));
        }
        Ok(())
    }

    /// The child named `name`, if present once (repeated: MalformedXML).
    fn child(&self, name: &str) -> Result<Option<&Elem>, S3Error> {
        let mut it = self.children.iter().filter(|c| c.name == name);
        let first = it.next();
        if it.next().is_some() {
            return Err(malformed(format!("<{}> has several <{name}>", self.name)));
        }
        Ok(first)
    }

    /// The text of a leaf child.
    fn leaf(&self, name: &str) -> Result<Option<&str>, S3Error> {
        match self.child(name)? {
            None => Ok(None),
            Some(c) if !c.children.is_empty() => {
                Err(malformed(format!("<{name}> must hold text, not elements")))
            }
            Some(c) => Ok(Some(c.text.as_str())),
        }
    }

    fn number(&self, name: &str) -> Result<Option<u64>, S3Error> {
        match self.leaf(name)? {
            None => Ok(None),
            Some(t) => t.trim().parse::<u64>().map(Some).map_err(|_| {
                S3Error::InvalidArgument(format!(
                    "<{name}> must be a non-negative integer, not {t:?}"
                ))
            }),
        }
    }
}

/// Reads the conditions of a `<Filter>` or `<And>` element into `f`.
fn read_conditions(e: &Elem, f: &mut LifecycleFilter) -> Result<(), S3Error> {
    if let Some(p) = e.leaf("Prefix")? {
        f.prefix = Some(p.to_string()).filter(|p| !p.is_empty());
    }
    f.size_gt = e.number("ObjectSizeGreaterThan")?;
    f.size_lt = e.number("ObjectSizeLessThan")?;
    Ok(())
}

fn parse_filter(e: &Elem) -> Result<LifecycleFilter, S3Error> {
    e.check_children(&[
        "Prefix",
        "ObjectSizeGreaterThan",
        "ObjectSizeLessThan",
        "And",
    ])?;
    let mut f = LifecycleFilter::default();
    match e.child("And")? {
        Some(and) => {
            if e.children.len() > 1 {
                return Err(malformed("<Filter> with <And> must hold nothing else"));
            }
            and.check_children(&["Prefix", "ObjectSizeGreaterThan", "ObjectSizeLessThan"])?;
            read_conditions(and, &mut f)?;
        }
        None => {
            if e.children.len() > 1 {
                return Err(malformed(
                    "<Filter> holds one condition; combine several with <And>",
                ));
            }
            read_conditions(e, &mut f)?;
        }
    }
    if let (Some(gt), Some(lt)) = (f.size_gt, f.size_lt) {
        if gt >= lt {
            return Err(S3Error::InvalidArgument(
                "ObjectSizeLessThan must be greater than ObjectSizeGreaterThan".into(),
            ));
        }
    }
    Ok(f)
}

fn parse_days(e: &Elem, name: &str) -> Result<Option<u64>, S3Error> {
    match e.number(name)? {
        Some(0) => Err(S3Error::InvalidArgument(format!(
            "<{name}> must be a positive integer"
        ))),
        d => Ok(d),
    }
}

fn parse_expiration(e: &Elem) -> Result<LifecycleExpiration, S3Error> {
    e.check_children(&["Days", "Date"])?;
    let days = parse_days(e, "Days")?;
    let date = e.leaf("Date")?;
    match (days, date) {
        (Some(d), None) => Ok(LifecycleExpiration::AfterDays(d)),
        (None, Some(t)) => {
            let ms = parse_iso8601(t).ok_or_else(|| {
                S3Error::InvalidArgument(format!(
                    "<Date> must be an ISO 8601 date at midnight UTC (e.g. 2030-01-01T00:00:00Z), not {t:?}"
                ))
            })?;
            if ms % DAY_MS != 0 {
                return Err(S3Error::InvalidArgument(format!(
                    "<Date> must be at midnight UTC, not {t:?}"
                )));
            }
            Ok(LifecycleExpiration::AtDate(ms))
        }
        _ => Err(malformed(
            "<Expiration> needs exactly one of <Days> and <Date>",
        )),
    }
}

fn parse_rule(e: &Elem) -> Result<LifecycleRule, S3Error> {
    e.check_children(&[
        "ID",
        "Status",
        "Filter",
        "Prefix",
        "Expiration",
        "AbortIncompleteMultipartUpload",
    ])?;
    let id = e.leaf("ID")?.map(String::from);
    if id.as_ref().is_some_and(|i| i.len() > MAX_ID_LEN) {
        return Err(S3Error::InvalidArgument(format!(
            "rule IDs are at most {MAX_ID_LEN} characters long"
        )));
    }
    let enabled = match e.leaf("Status")? {
        Some("Enabled") => true,
        Some("Disabled") => false,
        Some(other) => {
            return Err(malformed(format!(
                "<Status> must be Enabled or Disabled, not {other:?}"
            )))
        }
        None => return Err(malformed("a <Rule> needs a <Status>")),
    };
    let filter = match (e.child("Filter")?, e.leaf("Prefix")?) {
        (Some(_), Some(_)) => {
            return Err(malformed(
                "a <Rule> has either <Filter> or the older <Prefix>, not both",
            ))
        }
        (Some(f), None) => parse_filter(f)?,
        (None, Some(p)) => LifecycleFilter {
            prefix: Some(p.to_string()).filter(|p| !p.is_empty()),
            ..Default::default()
        },
        (None, None) => LifecycleFilter::default(),
    };
    let expiration = e.child("Expiration")?.map(parse_expiration).transpose()?;
    let abort_incomplete_mpu_days = match e.child("AbortIncompleteMultipartUpload")? {
        Some(a) => {
            a.check_children(&["DaysAfterInitiation"])?;
            Some(parse_days(a, "DaysAfterInitiation")?.ok_or_else(|| {
                malformed("<AbortIncompleteMultipartUpload> needs <DaysAfterInitiation>")
            })?)
        }
        None => None,
    };
    if expiration.is_none() && abort_incomplete_mpu_days.is_none() {
        return Err(S3Error::InvalidRequest(
            "a lifecycle rule needs at least one action (Expiration or AbortIncompleteMultipartUpload)"
                .into(),
        ));
    }
    if abort_incomplete_mpu_days.is_some() && filter.has_size_condition() {
        return Err(S3Error::InvalidRequest(
            "AbortIncompleteMultipartUpload cannot be used with an object size filter".into(),
        ));
    }
    Ok(LifecycleRule {
        id,
        enabled,
        filter,
        expiration,
        abort_incomplete_mpu_days,
    })
}

/// Parses a `<LifecycleConfiguration>` document.
pub fn parse_lifecycle(body: &[u8]) -> Result<Vec<LifecycleRule>, S3Error> {
    let root = parse_tree(body)?;
    if root.name != "LifecycleConfiguration" {
        return Err(malformed(format!(
            "the root element is <{}>, expected <LifecycleConfiguration>",
            root.name
        )));
    }
    root.check_children(&["Rule"])?;
    if root.children.is_empty() {
        return Err(malformed(
            "a lifecycle configuration needs at least one <Rule>",
        ));
    }
    if root.children.len() > MAX_RULES {
        return Err(malformed(format!("at most {MAX_RULES} rules are allowed")));
    }
    let rules = root
        .children
        .iter()
        .map(parse_rule)
        .collect::<Result<Vec<_>, _>>()?;
    let mut ids: Vec<&str> = rules.iter().filter_map(|r| r.id.as_deref()).collect();
    ids.sort_unstable();
    if ids.windows(2).any(|w| w[0] == w[1]) {
        return Err(S3Error::InvalidArgument("rule IDs must be unique".into()));
    }
    Ok(rules)
}

/// Writes the rules as a `<LifecycleConfiguration>` document.
pub fn lifecycle_xml(rules: &[LifecycleRule]) -> String {
    let mut x = Xml::new("LifecycleConfiguration");
    for r in rules {
        x.open("Rule");
        if let Some(id) = &r.id {
            x.elem("ID", id);
        }
        let f = &r.filter;
        let mut conds: Vec<(&str, String)> = vec![];
        if let Some(p) = &f.prefix {
            conds.push(("Prefix", p.clone()));
        }
        if let Some(n) = f.size_gt {
            conds.push(("ObjectSizeGreaterThan", n.to_string()));
        }
        if let Some(n) = f.size_lt {
            conds.push(("ObjectSizeLessThan", n.to_string()));
        }
        x.open("Filter");
        match conds.len() {
            0 => {
                x.elem("Prefix", "");
            }
            1 => {
                x.elem(conds[0].0, &conds[0].1);
            }
            _ => {
                x.open("And");
                for (n, v) in &conds {
                    x.elem(n, v);
                }
                x.close("And");
            }
        }
        x.close("Filter");
        x.elem("Status", if r.enabled { "Enabled" } else { "Disabled" });
        match &r.expiration {
            Some(LifecycleExpiration::AfterDays(d)) => {
                x.open("Expiration")
                    .elem("Days", &d.to_string())
                    .close("Expiration");
            }
            Some(LifecycleExpiration::AtDate(t)) => {
                x.open("Expiration")
                    .elem("Date", &msec_to_rfc3339(*t))
                    .close("Expiration");
            }
            None => (),
        }
        if let Some(d) = r.abort_incomplete_mpu_days {
            x.open("AbortIncompleteMultipartUpload")
                .elem("DaysAfterInitiation", &d.to_string())
                .close("AbortIncompleteMultipartUpload");
        }
        x.close("Rule");
    }
    x.finish("LifecycleConfiguration")
}

async fn set_rules(
    ctx: &ReqCtx,
    mut bucket: crate::model::bucket::Bucket,
    rules: Option<Vec<LifecycleRule>>,
) -> Result<(), S3Error> {
    if let Some(p) = bucket.params_mut() {
        p.lifecycle_config.update(rules);
    }
    ctx.api.model.buckets.insert(&bucket).await?;
    Ok(())
}

/// PUT /bucket?lifecycle
pub async fn put_lifecycle(mut ctx: ReqCtx) -> Result<Response<ResBody>, S3Error> {
    let bucket = ctx.bucket(Need::Owner).await?;
    let body = ctx.read_small_body(MAX_LIFECYCLE_BODY).await?;
    let rules = parse_lifecycle(&body)?;
    set_rules(&ctx, bucket, Some(rules)).await?;
    Response::builder()
        .status(StatusCode::OK)
        .body(empty_body())
        .map_err(|e| S3Error::Internal(e.to_string()))
}

/// GET /bucket?lifecycle
pub async fn get_lifecycle(ctx: &ReqCtx) -> Result<Response<ResBody>, S3Error> {
    let bucket = ctx.bucket(Need::Owner).await?;
    let rules = bucket
        .params()
        .and_then(|p| p.lifecycle_config.get().clone())
        .ok_or(S3Error::NoSuchLifecycleConfiguration)?;
    Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "application/xml")
        .body(full_body(lifecycle_xml(&rules)))
        .map_err(|e| S3Error::Internal(e.to_string()))
}

/// DELETE /bucket?lifecycle
pub async fn delete_lifecycle(ctx: &ReqCtx) -> Result<Response<ResBody>, S3Error> {
    let bucket = ctx.bucket(Need::Owner).await?;
    set_rules(ctx, bucket, None).await?;
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(empty_body())
        .map_err(|e| S3Error::Internal(e.to_string()))
}

#[cfg(test)]
#[path = "lifecycle_tests.rs"]
mod tests;
