//! A small read-only element tree over quick-xml, for Wazuh's XML dialect.
//!
//! Wazuh files are not single-root documents (a rules file is a run of `<group>` elements,
//! and `ossec.conf` may hold several `<ossec_config>` roots), so this reads a *list* of roots.
//! It records each element's byte span in the source, which lets [`super::ossec_conf`] splice
//! new text into the original bytes instead of re-serialising (and reformatting) the file.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

/// One element: name, attributes, direct text, children, and where it sits in the source.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    /// The element's own text (entity references kept as written), trimmed.
    pub text: String,
    pub children: Vec<Element>,
    /// Byte offset of the `<` of the start tag.
    pub start: usize,
    /// Byte offset of the `<` of the end tag (equal to `end` for an empty element).
    pub close_start: usize,
    /// Byte offset just after the end tag.
    pub end: usize,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// This element and all its descendants, depth first.
    pub fn walk(&self) -> Vec<&Element> {
        let mut out = vec![self];
        for c in &self.children {
            out.extend(c.walk());
        }
        out
    }
}

/// Parses a multi-root document. The error names the byte offset.
pub fn parse(text: &str) -> Result<Vec<Element>, String> {
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut roots = Vec::new();
    loop {
        let before = reader.buffer_position() as usize;
        let event = reader
            .read_event()
            .map_err(|e| format!("XML error at byte {}: {e}", reader.error_position()))?;
        let after = reader.buffer_position() as usize;
        match event {
            Event::Start(tag) => stack.push(element(&tag, before)?),
            Event::Empty(tag) => {
                let mut el = element(&tag, before)?;
                el.close_start = after;
                el.end = after;
                attach(&mut stack, &mut roots, el);
            }
            Event::End(_) => {
                let mut el = stack
                    .pop()
                    .ok_or_else(|| format!("XML error at byte {before}: unexpected end tag"))?;
                el.text = el.text.trim().to_string();
                el.close_start = before;
                el.end = after;
                attach(&mut stack, &mut roots, el);
            }
            Event::Text(t) => append_text(&mut stack, &t.xml10_content()),
            Event::CData(t) => append_text(&mut stack, &t.xml10_content()),
            Event::GeneralRef(r) => append_text(&mut stack, &format!("&{};", &*r)),
            Event::Eof => break,
            _ => {}
        }
    }
    match stack.last() {
        Some(open) => Err(format!("XML error: <{}> is never closed", open.name)),
        None => Ok(roots),
    }
}

fn element(tag: &BytesStart, start: usize) -> Result<Element, String> {
    let mut attrs = Vec::new();
    for attr in tag.attributes() {
        let attr = attr.map_err(|e| format!("XML error at byte {start}: {e}"))?;
        attrs.push((attr.key.into_inner().to_string(), attr.value.into_owned()));
    }
    Ok(Element {
        name: tag.name().into_inner().to_string(),
        attrs,
        start,
        ..Element::default()
    })
}

fn append_text(stack: &mut [Element], text: &str) {
    if let Some(top) = stack.last_mut() {
        top.text.push_str(text);
    }
}

fn attach(stack: &mut [Element], roots: &mut Vec<Element>, el: Element) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(el),
        None => roots.push(el),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_several_roots_with_spans() {
        let text = "<!-- c --><a x=\"1\"><b>hi</b><c/></a>\n<a><b> there </b></a>";
        let roots = parse(text).unwrap();
        assert_eq!(roots.len(), 2);
        assert_eq!(roots[0].attr("x"), Some("1"));
        assert_eq!(roots[0].child("b").unwrap().text, "hi");
        assert_eq!(roots[1].child("b").unwrap().text, "there");
        let a = &roots[0];
        assert_eq!(&text[a.start..a.end], "<a x=\"1\"><b>hi</b><c/></a>");
        assert_eq!(&text[a.close_start..a.end], "</a>");
        assert_eq!(a.walk().len(), 3);
    }

    #[test]
    fn broken_documents_are_errors() {
        assert!(parse("<a><b></a>").is_err());
        assert!(parse("<a>").is_err());
        assert!(parse("</a>").is_err());
    }
}
