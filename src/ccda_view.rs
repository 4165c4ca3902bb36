//! A C-CDA document (HL7 CDA R2) as readable HTML, for the contact a document is shared with: the
//! header (patient, author, custodian, date), then each section's title and its narrative block.
//!
//! Written here from the CDA R2 narrative block's schema rather than with the HL7 stylesheet (an
//! XSLT engine and a stylesheet that copies attributes through). Safety comes from what is
//! written, not from what is filtered: every text is escaped, and the only markup is a fixed set
//! of elements this module chooses, with no attribute a document can set except a number of
//! table columns or rows. So no script, no style, no link and no reference to anything outside
//! the page can come from the document. A document with a DTD is refused (no entity expansion,
//! no external entity), and its size, its number of nodes and its nesting are bounded.

use std::fmt::Write;

use roxmltree::{Document, Node, ParsingOptions};

const HL7: &str = "urn:hl7-org:v3";

/// The largest document shown (larger ones are downloaded).
pub const MAX_BYTES: usize = 16 << 20;
const MAX_NODES: u32 = 2_000_000;
/// Nesting of the narrative's elements, and of sections within sections.
const MAX_DEPTH: usize = 64;
const MAX_SECTION_DEPTH: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderField {
    pub label: &'static str,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionView {
    /// The heading's level: 2 for a top-level section, deeper for nested ones (at most 6).
    pub level: usize,
    pub title: String,
    /// The narrative block as HTML this module wrote (safe to put in a page as it is).
    pub html: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CcdaView {
    pub title: String,
    pub header: Vec<HeaderField>,
    pub sections: Vec<SectionView>,
    /// Why there is no section to show, when there is none (an unstructured body).
    pub body_note: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ViewError {
    #[error("the document is larger than {} MiB", MAX_BYTES >> 20)]
    TooLarge,
    #[error("the document is not UTF-8 text")]
    NotText,
    #[error("the document declares a DTD, which is refused (entities could reach outside it or expand without end)")]
    Dtd,
    #[error("the document is not well-formed XML: {0}")]
    NotXml(String),
    #[error("the document is nested too deeply")]
    TooDeep,
    #[error("the document is not an HL7 CDA document (its root is not ClinicalDocument in urn:hl7-org:v3)")]
    NotCda,
    #[error("the CDA document is not a C-CDA one (no templateId of a C-CDA document, {CCDA_DOCUMENT}*)")]
    NotCcda,
}

/// The arc of C-CDA's document templates: 1.1 the US Realm Header, 1.2 the CCD, 1.14 the
/// referral note, 1.13 the transfer summary... (C-CDA R2.1, Volume 2).
pub const CCDA_DOCUMENT: &str = "2.16.840.1.113883.10.20.22.1.";

/// Checks that `bytes` is a C-CDA document: well-formed XML without a DTD, a ClinicalDocument root
/// in the HL7 v3 namespace, and a templateId of a C-CDA document.
pub fn check_ccda(bytes: &[u8]) -> Result<(), ViewError> {
    with_document(bytes, |root| {
        let ccda = |t: Node| {
            t.attribute("root").is_some_and(|r| {
                r.strip_prefix(CCDA_DOCUMENT).is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            })
        };
        if children(root, "templateId").any(ccda) {
            Ok(())
        } else {
            Err(ViewError::NotCcda)
        }
    })
}

/// Who a C-CDA is about, as a key to find the same patient in another practice's records: the
/// family and given names, the date of birth (YYYYMMDD) and the sex code of its recordTarget,
/// lowercased, letters and digits only ("smith|jane|19750601|f"); None when the name or the date
/// of birth is missing (too little to match on).
pub fn patient_key(bytes: &[u8]) -> Option<String> {
    with_document(bytes, |root| {
        let patient = path(root, &["recordTarget", "patientRole", "patient"]).ok_or(ViewError::NotCcda)?;
        let name = child(patient, "name").ok_or(ViewError::NotCcda)?;
        let plain = |text: String| -> String {
            text.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
        };
        let family = child(name, "family").map(text_of).map(plain).unwrap_or_default();
        let given = child(name, "given").map(text_of).map(plain).unwrap_or_default();
        let birth: String = child(patient, "birthTime")
            .and_then(|b| b.attribute("value"))
            .map(|v| v.chars().take_while(char::is_ascii_digit).take(8).collect())
            .unwrap_or_default();
        let sex =
            child(patient, "administrativeGenderCode").and_then(|g| g.attribute("code")).unwrap_or("").to_lowercase();
        if family.is_empty() || given.is_empty() || birth.len() != 8 {
            return Err(ViewError::NotCcda);
        }
        Ok(format!("{family}|{given}|{birth}|{sex}"))
    })
    .ok()
}

/// A coded value of the header: code, code system, display name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Coded {
    pub code: String,
    pub system: String,
    pub display: String,
}

/// What XDS metadata takes from a CDA document's header (IHE PCC's CDA to XDS mapping).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct XdsFacts {
    /// The document's id: root, and extension when it has one.
    pub id: (String, Option<String>),
    /// The patient's first identifier with an extension: (root, extension).
    pub patient_id: Option<(String, String)>,
    pub title: Option<String>,
    pub code: Option<Coded>,
    /// The effectiveTime as it is written (HL7 TS).
    pub effective_time: Option<String>,
    pub language: Option<String>,
    pub confidentiality: Option<Coded>,
    pub author_family: Option<String>,
    pub author_given: Option<String>,
    pub author_organization: Option<String>,
    /// The body is structured (sections), not a nonXMLBody.
    pub structured: bool,
}

/// The header facts of a CDA document (None when `bytes` is not one).
pub fn xds_facts(bytes: &[u8]) -> Option<XdsFacts> {
    with_document(bytes, |root| {
        let id = child(root, "id").ok_or(ViewError::NotCda)?;
        let attr = |n: Node, a: &str| n.attribute(a).map(tidy).filter(|v| !v.is_empty());
        let coded = |n: Node| {
            Some(Coded {
                code: attr(n, "code")?,
                system: attr(n, "codeSystem").unwrap_or_default(),
                display: attr(n, "displayName").unwrap_or_default(),
            })
        };
        let patient_id = path(root, &["recordTarget", "patientRole"])
            .and_then(|role| children(role, "id").find_map(|i| Some((attr(i, "root")?, attr(i, "extension")?))));
        let person = path(root, &["author", "assignedAuthor", "assignedPerson", "name"]);
        Ok(XdsFacts {
            id: (attr(id, "root").ok_or(ViewError::NotCda)?, attr(id, "extension")),
            patient_id,
            title: child(root, "title").map(text_of).filter(|t| !t.is_empty()),
            code: child(root, "code").and_then(coded),
            effective_time: child(root, "effectiveTime").and_then(|t| attr(t, "value")),
            language: child(root, "languageCode").and_then(|l| attr(l, "code")),
            confidentiality: child(root, "confidentialityCode").and_then(coded),
            author_family: person.and_then(|n| child(n, "family")).map(text_of).filter(|t| !t.is_empty()),
            author_given: person.and_then(|n| child(n, "given")).map(text_of).filter(|t| !t.is_empty()),
            author_organization: path(root, &["author", "assignedAuthor", "representedOrganization", "name"])
                .map(text_of)
                .filter(|t| !t.is_empty()),
            structured: path(root, &["component", "structuredBody"]).is_some(),
        })
    })
    .ok()
}

/// Runs `read` on the root of the CDA document `bytes`, parsed within the bounds above.
fn with_document<T>(bytes: &[u8], read: impl FnOnce(Node) -> Result<T, ViewError>) -> Result<T, ViewError> {
    if bytes.len() > MAX_BYTES {
        return Err(ViewError::TooLarge);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| ViewError::NotText)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let options = ParsingOptions { allow_dtd: false, nodes_limit: MAX_NODES };
    let doc = Document::parse_with_options(text, options).map_err(|e| match e {
        roxmltree::Error::DtdDetected => ViewError::Dtd,
        roxmltree::Error::NodesLimitReached => ViewError::TooLarge,
        e => ViewError::NotXml(e.to_string()),
    })?;
    let root = doc.root_element();
    if !root.has_tag_name((HL7, "ClinicalDocument")) {
        return Err(ViewError::NotCda);
    }
    read(root)
}

/// Whether a file is worth reading as a C-CDA: XML by its type or its name.
pub fn is_xml(content_type: &str, filename: &str) -> bool {
    let ct = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    ct == "text/xml"
        || ct == "application/xml"
        || ct.ends_with("+xml")
        || filename.to_ascii_lowercase().ends_with(".xml")
}

/// Reads `bytes` as a CDA document and writes its view.
pub fn render(bytes: &[u8]) -> Result<CcdaView, ViewError> {
    with_document(bytes, view)
}

fn view(root: Node) -> Result<CcdaView, ViewError> {
    let title = child(root, "title")
        .map(text_of)
        .filter(|t| !t.is_empty())
        .or_else(|| child(root, "code").and_then(|c| c.attribute("displayName")).map(tidy))
        .unwrap_or_else(|| "Clinical document".to_string());
    let mut sections = Vec::new();
    let mut body_note = None;
    let body = child(root, "component");
    if let Some(structured) = body.and_then(|c| child(c, "structuredBody")) {
        for component in children(structured, "component") {
            if let Some(section) = child(component, "section") {
                add_section(section, 0, &mut sections)?;
            }
        }
    } else if let Some(unstructured) = body.and_then(|c| child(c, "nonXMLBody")) {
        body_note = Some(match child(unstructured, "text") {
            Some(t)
                if t.attribute("mediaType").is_none_or(|m| m == "text/plain") && child(t, "reference").is_none() =>
            {
                text_of(t)
            }
            _ => "The document's body is a file this page does not show: download the original.".to_string(),
        });
    }
    if sections.is_empty() && body_note.is_none() {
        body_note = Some("The document has no sections.".to_string());
    }
    Ok(CcdaView { title, header: header(root), sections, body_note })
}

fn header(root: Node) -> Vec<HeaderField> {
    let mut fields = Vec::new();
    let mut add = |label, value: Option<String>| {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            fields.push(HeaderField { label, value });
        }
    };
    let patient_role = path(root, &["recordTarget", "patientRole"]);
    let patient = patient_role.and_then(|r| child(r, "patient"));
    add("Patient", patient.and_then(|p| child(p, "name")).map(person_name));
    add("Date of birth", patient.and_then(|p| child(p, "birthTime")).and_then(|t| t.attribute("value")).map(when));
    add(
        "Sex",
        patient.and_then(|p| child(p, "administrativeGenderCode")).and_then(|g| {
            g.attribute("displayName").map(tidy).or_else(|| {
                g.attribute("code").map(|c| match c {
                    "F" => "Female".to_string(),
                    "M" => "Male".to_string(),
                    "UN" => "Undifferentiated".to_string(),
                    other => tidy(other),
                })
            })
        }),
    );
    let author = path(root, &["author", "assignedAuthor"]);
    let author_name = author.and_then(|a| {
        path(a, &["assignedPerson", "name"])
            .map(person_name)
            .or_else(|| path(a, &["assignedAuthoringDevice", "softwareName"]).map(text_of))
    });
    let author_org = author.and_then(|a| path(a, &["representedOrganization", "name"])).map(text_of);
    add(
        "Author",
        match (author_name, author_org) {
            (Some(n), Some(o)) if !o.is_empty() => Some(format!("{n}, {o}")),
            (n, o) => n.or(o),
        },
    );
    add(
        "Custodian",
        path(root, &["custodian", "assignedCustodian", "representedCustodianOrganization", "name"]).map(text_of),
    );
    add("Date", child(root, "effectiveTime").and_then(|t| t.attribute("value")).map(when));
    fields
}

fn add_section(section: Node, depth: usize, out: &mut Vec<SectionView>) -> Result<(), ViewError> {
    if depth >= MAX_SECTION_DEPTH {
        return Err(ViewError::TooDeep);
    }
    let title = child(section, "title")
        .map(text_of)
        .filter(|t| !t.is_empty())
        .or_else(|| child(section, "code").and_then(|c| c.attribute("displayName")).map(tidy))
        .unwrap_or_else(|| "Section".to_string());
    let mut html = String::new();
    if let Some(text) = child(section, "text") {
        narrative(text, 0, &mut html)?;
    }
    out.push(SectionView { level: (depth + 2).min(6), title, html });
    for component in children(section, "component") {
        if let Some(inner) = child(component, "section") {
            add_section(inner, depth + 1, out)?;
        }
    }
    Ok(())
}

/// The narrative block's children as HTML (CDA R2 `StrucDoc.Text`): each known element becomes
/// its HTML counterpart without the document's attributes; an unknown one keeps only its text.
fn narrative(node: Node, depth: usize, out: &mut String) -> Result<(), ViewError> {
    if depth >= MAX_DEPTH {
        return Err(ViewError::TooDeep);
    }
    for n in node.children() {
        if n.is_text() {
            escape_into(out, n.text().unwrap_or(""));
            continue;
        }
        if !n.is_element() {
            continue; // comments and processing instructions
        }
        let inner = |tag: &str, out: &mut String| -> Result<(), ViewError> {
            let _ = write!(out, "<{tag}>");
            narrative(n, depth + 1, out)?;
            let _ = write!(out, "</{tag}>");
            Ok(())
        };
        let name = if n.tag_name().namespace() == Some(HL7) { n.tag_name().name() } else { "" };
        match name {
            "paragraph" => inner("p", out)?,
            "br" => out.push_str("<br>"),
            "sub" | "sup" | "thead" | "tbody" | "tfoot" | "tr" | "colgroup" => inner(name, out)?,
            "col" => out.push_str("<col>"),
            "list" if n.attribute("listType") == Some("ordered") => inner("ol", out)?,
            "list" => inner("ul", out)?,
            "item" => inner("li", out)?,
            "table" => inner("table", out)?,
            "caption" if node.has_tag_name((HL7, "table")) => inner("caption", out)?,
            "caption" => inner("strong", out)?,
            "th" | "td" => {
                let _ = write!(out, "<{name}{}>", spans(n));
                narrative(n, depth + 1, out)?;
                let _ = write!(out, "</{name}>");
            }
            "content" => {
                let _ = write!(out, "<span{}>", styles(n));
                narrative(n, depth + 1, out)?;
                out.push_str("</span>");
            }
            "footnote" => {
                out.push_str("<small>[");
                narrative(n, depth + 1, out)?;
                out.push_str("]</small>");
            }
            "footnoteRef" => {}
            "renderMultiMedia" => out.push_str("<span class=\"hint\">[an image or other media, not shown]</span>"),
            // linkHtml's text without its link: nothing on the page points outside it.
            _ => narrative(n, depth + 1, out)?,
        }
    }
    Ok(())
}

/// A table cell's colspan and rowspan, when they are small numbers.
fn spans(cell: Node) -> String {
    let mut out = String::new();
    for name in ["colspan", "rowspan"] {
        if let Some(v) = cell.attribute(name) {
            if let Ok(n @ 1..=100) = v.trim().parse::<u8>() {
                let _ = write!(out, " {name}=\"{n}\"");
            }
        }
    }
    out
}

/// `styleCode` (bold, italics, underline, emphasis) as this stylesheet's classes.
fn styles(content: Node) -> String {
    let classes: Vec<&str> = content
        .attribute("styleCode")
        .unwrap_or("")
        .split_ascii_whitespace()
        .filter_map(|s| match s.to_ascii_lowercase().as_str() {
            "bold" => Some("cda-bold"),
            "italics" => Some("cda-italics"),
            "underline" => Some("cda-underline"),
            "emphasis" => Some("cda-emphasis"),
            _ => None,
        })
        .collect();
    if classes.is_empty() {
        String::new()
    } else {
        format!(" class=\"{}\"", classes.join(" "))
    }
}

/// Text for HTML or XML, as text or an attribute's value: markup characters as entities, control
/// characters other than line breaks and tabs dropped (XML 1.0 cannot carry them).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_into(&mut out, text);
    out
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
}

fn child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    node.children().find(|n| n.has_tag_name((HL7, name)))
}

fn children<'a, 'i: 'a>(node: Node<'a, 'i>, name: &'a str) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    node.children().filter(move |n| n.has_tag_name((HL7, name)))
}

fn path<'a, 'i>(node: Node<'a, 'i>, names: &[&str]) -> Option<Node<'a, 'i>> {
    names.iter().try_fold(node, |n, name| child(n, name))
}

/// All the text under `node`, its white space collapsed (the depth of a tree roxmltree built is
/// walked without recursion).
fn text_of(node: Node) -> String {
    let text: String = node.descendants().filter(|n| n.is_text()).filter_map(|n| n.text()).collect();
    tidy(&text)
}

fn tidy(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ").chars().filter(|c| !c.is_control()).collect()
}

/// A person's name: prefix, given names, family, suffix in the document's order, else its text.
fn person_name(name: Node) -> String {
    let parts: Vec<String> = name
        .children()
        .filter(|n| ["prefix", "given", "family", "suffix"].iter().any(|p| n.has_tag_name((HL7, *p))))
        .map(text_of)
        .filter(|t| !t.is_empty())
        .collect();
    if parts.is_empty() {
        text_of(name)
    } else {
        parts.join(" ")
    }
}

/// An HL7 TS value (YYYYMMDDHHMMSS.UUUU±ZZZZ, each part after the year optional) as
/// "2013-08-15 10:30 -0800"; an unreadable one as it is.
fn when(value: &str) -> String {
    let value = value.trim();
    let (stamp, zone) = match value.find(['+', '-']) {
        Some(i) => (&value[..i], Some(&value[i..])),
        None => (value, None),
    };
    let digits = stamp.split('.').next().unwrap_or("");
    if digits.len() < 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return tidy(value);
    }
    let mut out = digits[..4].to_string();
    for (at, sep) in [(4, '-'), (6, '-'), (8, ' '), (10, ':')] {
        if digits.len() >= at + 2 {
            out.push(sep);
            out.push_str(&digits[at..at + 2]);
        }
    }
    if let Some(zone) = zone.filter(|_| digits.len() >= 12) {
        out.push(' ');
        out.push_str(&tidy(zone));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/ccda").join(name)).unwrap()
    }

    fn cda(body: &str) -> String {
        format!(
            r#"<?xml version="1.0"?><ClinicalDocument xmlns="urn:hl7-org:v3"><title>Note</title>
            <component><structuredBody><component><section><title>Plan</title><text>{body}</text></section>
            </component></structuredBody></component></ClinicalDocument>"#
        )
    }

    #[test]
    fn the_header_gives_what_xds_metadata_takes() {
        let facts = xds_facts(&fixture("ccd.xml")).unwrap();
        assert_eq!(
            facts.code.as_ref().map(|c| (c.code.as_str(), c.system.as_str())),
            Some(("34133-9", "2.16.840.1.113883.6.1"))
        );
        assert_eq!(facts.title.as_deref(), Some("Patient Chart Summary"));
        assert_eq!(facts.language.as_deref(), Some("en-US"));
        assert_eq!(facts.confidentiality.map(|c| c.code).as_deref(), Some("N"));
        assert_eq!(
            (facts.author_given.as_deref(), facts.author_family.as_deref()),
            (Some("Patricia"), Some("Primary"))
        );
        assert!(facts.patient_id.is_some() && facts.structured);
        assert_eq!(xds_facts(b"<x/>"), None);
    }

    #[test]
    fn a_c_cda_names_its_patient_by_name_birth_and_sex() {
        assert_eq!(patient_key(&fixture("ccd.xml")).as_deref(), Some("betterhalf|eve|19750501|f"));
        assert!(patient_key(&fixture("referral-note.xml")).is_some());
        assert_eq!(patient_key(cda("x").as_bytes()), None, "no recordTarget");
    }

    #[test]
    fn a_c_cda_is_told_from_other_xml_and_from_a_plain_cda() {
        for name in ["ccd.xml", "referral-note.xml", "transfer-summary.xml"] {
            check_ccda(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        assert!(matches!(check_ccda(cda("x").as_bytes()), Err(ViewError::NotCcda)));
        assert!(matches!(check_ccda(b"<note>hi</note>"), Err(ViewError::NotCda)));
        assert!(matches!(check_ccda(b"<ClinicalDocument"), Err(ViewError::NotXml(_))));
        let wrong_arc = cda("x").replace("<title>", r#"<templateId root="2.16.840.1.113883.10.20.22.2.21"/><title>"#);
        assert!(matches!(check_ccda(wrong_arc.as_bytes()), Err(ViewError::NotCcda)), "a section's template");
    }

    #[test]
    fn the_fixtures_show_their_header_and_every_section() {
        let view = render(&fixture("ccd.xml")).unwrap();
        assert_eq!(view.title, "Patient Chart Summary");
        let field = |label| view.header.iter().find(|f| f.label == label).map(|f| f.value.as_str());
        assert_eq!(field("Patient"), Some("Eve Betterhalf"));
        assert_eq!(field("Date"), Some("2013-08-15 10:30 -0800"));
        assert!(field("Date of birth").is_some() && field("Author").is_some() && field("Custodian").is_some());
        let titles: Vec<&str> = view.sections.iter().map(|s| s.title.as_str()).collect();
        assert_eq!(titles.len(), 15, "{titles:?}");
        assert_eq!(titles[..3], ["ADVANCE DIRECTIVES", "ALLERGIES AND ADVERSE REACTIONS", "ENCOUNTERS"]);
        assert!(view.sections.iter().any(|s| s.html.contains("<table>")));
        for name in ["referral-note.xml", "transfer-summary.xml"] {
            let view = render(&fixture(name)).unwrap();
            assert!(view.sections.len() > 3, "{name}: {} sections", view.sections.len());
            assert!(view.header.iter().any(|f| f.label == "Patient"), "{name}");
        }
    }

    #[test]
    fn markup_in_a_document_is_text_and_its_attributes_are_dropped() {
        let view = render(
            cda(r#"<paragraph onclick="x()">a &lt;script&gt;alert(1)&lt;/script&gt; b</paragraph>
                <content styleCode="Bold xx" ID="c1" style="background:url(http://evil.test/)">bold</content>
                <linkHtml href="javascript:alert(1)">here</linkHtml>
                <renderMultiMedia referencedObject="img1"/>
                <table border="1"><tbody><tr><td colspan="2" onmouseover="x">1</td><td rowspan="999">2</td></tr></tbody></table>
                <script xmlns="http://www.w3.org/1999/xhtml">alert(2)</script>"#)
            .as_bytes(),
        )
        .unwrap();
        let html = &view.sections[0].html;
        assert!(html.contains("<p>a &lt;script&gt;alert(1)&lt;/script&gt; b</p>"), "{html}");
        assert!(html.contains(r#"<span class="cda-bold">bold</span>"#), "{html}");
        assert!(html.contains(r#"<td colspan="2">1</td><td>2</td>"#), "{html}");
        assert!(html.contains("alert(2)") && !html.contains("<script"), "{html}");
        for banned in ["onclick", "onmouseover", "href", "javascript:", "evil.test", "style=", "img1", "border"] {
            assert!(!html.contains(banned), "{banned} in {html}");
        }
    }

    #[test]
    fn a_dtd_is_refused_so_no_entity_reaches_out_or_expands() {
        let xxe = r#"<?xml version="1.0"?><!DOCTYPE ClinicalDocument [<!ENTITY x SYSTEM "file:///etc/passwd">]>
            <ClinicalDocument xmlns="urn:hl7-org:v3"><title>&x;</title></ClinicalDocument>"#;
        assert_eq!(render(xxe.as_bytes()), Err(ViewError::Dtd));
        let mut laughs = String::from(r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">"#);
        for i in 1..10 {
            let prev = if i == 1 { "lol".to_string() } else { format!("lol{}", i - 1) };
            laughs.push_str(&format!("<!ENTITY lol{i} \"{}\">", format!("&{prev};").repeat(10)));
        }
        laughs.push_str(r#"]><ClinicalDocument xmlns="urn:hl7-org:v3"><title>&lol9;</title></ClinicalDocument>"#);
        assert_eq!(render(laughs.as_bytes()), Err(ViewError::Dtd));
    }

    #[test]
    fn what_is_not_a_cda_document_is_refused_with_the_reason() {
        assert_eq!(render(b"<html xmlns=\"urn:hl7-org:v3\"/>"), Err(ViewError::NotCda));
        assert_eq!(render(b"<ClinicalDocument/>"), Err(ViewError::NotCda), "no namespace");
        assert!(matches!(render(b"<ClinicalDocument xmlns=\"urn:hl7-org:v3\">"), Err(ViewError::NotXml(_))));
        assert_eq!(render(&[0xff, 0xfe, 0]), Err(ViewError::NotText));
        let deep = cda(&format!("{}x{}", "<content>".repeat(100), "</content>".repeat(100)));
        assert_eq!(render(deep.as_bytes()), Err(ViewError::TooDeep));
        let mut sections = String::from(r#"<ClinicalDocument xmlns="urn:hl7-org:v3"><component><structuredBody>"#);
        sections.push_str(&"<component><section>".repeat(20));
        sections.push_str(&"</section></component>".repeat(20));
        sections.push_str("</structuredBody></component></ClinicalDocument>");
        assert_eq!(render(sections.as_bytes()), Err(ViewError::TooDeep));
        assert_eq!(render(&vec![b' '; MAX_BYTES + 1]), Err(ViewError::TooLarge));
    }

    #[test]
    fn times_read_as_dates() {
        assert_eq!(when("19750501"), "1975-05-01");
        assert_eq!(when("201308151030-0800"), "2013-08-15 10:30 -0800");
        assert_eq!(when("20130815"), "2013-08-15");
        assert_eq!(when("nonsense"), "nonsense");
        assert!(is_xml("text/xml; charset=utf-8", "x.bin") && is_xml("application/octet-stream", "CCD.XML"));
        assert!(!is_xml("application/pdf", "a.pdf"));
    }
}
