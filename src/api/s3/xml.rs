//! XML for S3 responses (written by hand: the documents are small and fixed) and the parsing of
//! XML request bodies (quick-xml with serde, size-limited by the caller).

use serde::de::DeserializeOwned;

use super::error::S3Error;

/// The S3 XML namespace.
pub const XMLNS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// Escapes text for XML content and attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry: write them as character references of XML 1.1
            // style would still be invalid, so replace them.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {
                out.push_str(&format!("&#x{:X};", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

/// A small XML writer.
pub struct Xml {
    buf: String,
}

impl Xml {
    /// A document whose root element carries the S3 namespace.
    pub fn new(root: &str) -> Self {
        let mut buf = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
        buf.push_str(&format!("<{root} xmlns=\"{XMLNS}\">"));
        Self { buf }
    }
    /// A document without namespace.
    pub fn plain(root: &str) -> Self {
        let mut buf = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
        buf.push_str(&format!("<{root}>"));
        Self { buf }
    }
    pub fn open(&mut self, tag: &str) -> &mut Self {
        self.buf.push_str(&format!("<{tag}>"));
        self
    }
    pub fn close(&mut self, tag: &str) -> &mut Self {
        self.buf.push_str(&format!("</{tag}>"));
        self
    }
    /// `<tag>escaped text</tag>`.
    pub fn elem(&mut self, tag: &str, text: &str) -> &mut Self {
        self.buf
            .push_str(&format!("<{tag}>{}</{tag}>", escape(text)));
        self
    }
    pub fn finish(mut self, root: &str) -> String {
        self.buf.push_str(&format!("</{root}>"));
        self.buf
    }
}

/// Parses an XML request body.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, S3Error> {
    let text = std::str::from_utf8(body).map_err(|_| S3Error::MalformedXml("not UTF-8".into()))?;
    quick_xml::de::from_str(text).map_err(|e| S3Error::MalformedXml(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
        assert_eq!(escape("\u{1}"), "&#x1;");
        let mut x = Xml::new("R");
        x.elem("K", "a&b");
        assert!(x.finish("R").ends_with("<K>a&amp;b</K></R>"));
    }
}
