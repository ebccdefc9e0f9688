//! Unit tests of lifecycle document parsing and writing.
use super::*;

fn doc(rules: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?><LifecycleConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{rules}</LifecycleConfiguration>"
    )
}

fn parse(rules: &str) -> Result<Vec<LifecycleRule>, S3Error> {
    parse_lifecycle(doc(rules).as_bytes())
}

#[test]
fn parses_and_round_trips() {
    let rules = parse(
        "<Rule><ID>a</ID><Filter><Prefix>logs/</Prefix></Filter><Status>Enabled</Status>\
         <Expiration><Days>3</Days></Expiration></Rule>\
         <Rule><ID>b</ID><Filter><And><Prefix>x</Prefix><ObjectSizeGreaterThan>10</ObjectSizeGreaterThan>\
         <ObjectSizeLessThan>20</ObjectSizeLessThan></And></Filter><Status>Disabled</Status>\
         <Expiration><Date>2030-01-01T00:00:00.000Z</Date></Expiration></Rule>\
         <Rule><Filter/><Status>Enabled</Status><AbortIncompleteMultipartUpload>\
         <DaysAfterInitiation>7</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>\
         <Rule><Prefix>old/</Prefix><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>",
    )
    .expect("valid");
    assert_eq!(rules.len(), 4);
    assert_eq!(rules[0].filter.prefix.as_deref(), Some("logs/"));
    assert_eq!(rules[0].expiration, Some(LifecycleExpiration::AfterDays(3)));
    assert!(!rules[1].enabled);
    assert_eq!(rules[1].filter.size_gt, Some(10));
    assert_eq!(rules[1].filter.size_lt, Some(20));
    assert_eq!(
        rules[1].expiration,
        Some(LifecycleExpiration::AtDate(1_893_456_000_000))
    );
    assert_eq!(rules[2].abort_incomplete_mpu_days, Some(7));
    assert_eq!(rules[2].filter, LifecycleFilter::default());
    assert_eq!(rules[3].filter.prefix.as_deref(), Some("old/"));
    let again = parse_lifecycle(lifecycle_xml(&rules).as_bytes()).expect("round trip");
    assert_eq!(again, rules);
}

fn code(r: Result<Vec<LifecycleRule>, S3Error>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

#[test]
fn refuses_bad_documents() {
    let exp = "<Expiration><Days>1</Days></Expiration>";
    let st = "<Status>Enabled</Status>";
    for (body, want) in [
        ("<LifecycleConfiguration><Rule>".to_string(), "MalformedXML"),
        ("not xml at all".into(), "MalformedXML"),
        ("<Other/>".into(), "MalformedXML"),
        (doc(""), "MalformedXML"),
        (doc(&format!("<Rule>{exp}</Rule>")), "MalformedXML"),
        (
            doc(&format!("<Rule><Status>On</Status>{exp}</Rule>")),
            "MalformedXML",
        ),
        (doc(&format!("<Rule>{st}{exp}<Foo/></Rule>")), "MalformedXML"),
        (doc(&format!("<Rule>{st}{exp}{exp}</Rule>")), "MalformedXML"),
        (
            doc(&format!("<Rule>{st}<Expiration><Days>0</Days></Expiration></Rule>")),
            "InvalidArgument",
        ),
        (
            doc(&format!("<Rule>{st}<Expiration><Days>-1</Days></Expiration></Rule>")),
            "InvalidArgument",
        ),
        (
            doc(&format!(
                "<Rule>{st}<Expiration><Date>2030-01-01T10:00:00Z</Date></Expiration></Rule>"
            )),
            "InvalidArgument",
        ),
        (
            doc(&format!(
                "<Rule>{st}<Expiration><Date>tomorrow</Date></Expiration></Rule>"
            )),
            "InvalidArgument",
        ),
        (
            doc(&format!("<Rule>{st}<Expiration></Expiration></Rule>")),
            "MalformedXML",
        ),
        (doc(&format!("<Rule>{st}</Rule>")), "InvalidRequest"),
        (
            doc(&format!(
                "<Rule>{st}<Transition><Days>1</Days><StorageClass>GLACIER</StorageClass></Transition></Rule>"
            )),
            "NotImplemented",
        ),
        (
            doc(&format!(
                "<Rule>{st}<NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays></NoncurrentVersionExpiration></Rule>"
            )),
            "NotImplemented",
        ),
        (
            doc(&format!(
                "<Rule>{st}<Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration></Rule>"
            )),
            "NotImplemented",
        ),
        (
            doc(&format!(
                "<Rule>{st}{exp}<Filter><Tag><Key>a</Key><Value>b</Value></Tag></Filter></Rule>"
            )),
            "NotImplemented",
        ),
        (
            doc(&format!(
                "<Rule>{st}{exp}<Filter><Prefix>a</Prefix><ObjectSizeLessThan>3</ObjectSizeLessThan></Filter></Rule>"
            )),
            "MalformedXML",
        ),
        (
            doc(&format!(
                "<Rule>{st}{exp}<Filter><And><ObjectSizeGreaterThan>5</ObjectSizeGreaterThan><ObjectSizeLessThan>3</ObjectSizeLessThan></And></Filter></Rule>"
            )),
            "InvalidArgument",
        ),
        (
            doc(&format!(
                "<Rule>{st}<Filter><ObjectSizeLessThan>3</ObjectSizeLessThan></Filter><AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>"
            )),
            "InvalidRequest",
        ),
        (
            doc(&format!(
                "<Rule><ID>x</ID>{st}{exp}</Rule><Rule><ID>x</ID>{st}{exp}</Rule>"
            )),
            "InvalidArgument",
        ),
        (
            format!(
                "<!DOCTYPE x [<!ENTITY e \"e\">]>{}",
                doc(&format!("<Rule>{st}{exp}</Rule>"))
            ),
            "MalformedXML",
        ),
        (
            format!("{}{}", "<a>".repeat(20), "</a>".repeat(20)),
            "MalformedXML",
        ),
    ] {
        assert_eq!(code(parse_lifecycle(body.as_bytes())), want, "{body}");
    }
}
