//! [`FileInput`]: the `<input type=file>` of a blob field, as the widget reads it.

use std::fmt;
use std::sync::Arc;

use sea_orm::{ColumnTrait, EntityName};

use super::{Blobs, KeptUpload};
use crate::field::BlobValue;
use crate::upload::UploadField;
use crate::upload::plain::size_text;

/// Escape `text` for HTML content and (quoted) attribute values: `&`, `<`, `>`, `"` and `'`.
pub(crate) fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The file input of one blob field: `<input type="file" name="<column>" data-sea-gcp-field=..
/// data-max-size=.. accept=..>` plus, when set, the current file (`data-current`, and a link), a kept
/// upload of a refused form (`data-ticket`, `data-ticket-name`), `data-blank` for blankable fields and
/// `required`; then a hint with the limits. Every value is HTML-escaped. Render it with `Display`
/// (`format!("{input}")` or `.to_string()`).
#[derive(Debug, Clone)]
pub struct FileInput {
    field: Arc<UploadField>,
    name: String,
    current: Option<(String, Option<String>)>,
    kept: Option<KeptUpload>,
    required: bool,
    hint: bool,
}

impl Blobs {
    /// The file input of `column` (a registered blob field).
    ///
    /// # Panics
    ///
    /// When `column` is not a registered blob field with uploads (a programming error).
    pub fn input<C: ColumnTrait>(&self, column: C) -> FileInput {
        let id = format!("{}.{}", C::EntityName::default().table_name(), column.as_str());
        let field = self
            .upload_field(&id)
            .unwrap_or_else(|| panic!("`{id}` is not a blob field registered with Blobs::builder().entity(..)"));
        FileInput {
            field: field.clone(),
            name: column.as_str().to_string(),
            current: None,
            kept: None,
            required: false,
            hint: true,
        }
    }
}

impl FileInput {
    /// An input for `field`, named `name` (what [`BlobForm`](super::BlobForm) reads: the column name).
    pub fn new(field: Arc<UploadField>, name: impl Into<String>) -> Self {
        Self { field, name: name.into(), current: None, kept: None, required: false, hint: true }
    }

    /// The value the row holds now (edit forms): its file name is shown by the widget.
    pub fn current(mut self, value: Option<&BlobValue>) -> Self {
        self.current = value.map(|v| (display_name(v), None));
        self
    }

    /// The current value and a link to it (e.g. a download route).
    pub fn current_with_link(mut self, value: Option<&BlobValue>, href: impl Into<String>) -> Self {
        self.current = value.map(|v| (display_name(v), Some(href.into())));
        self
    }

    /// A finished upload of a refused form, shown as uploaded.
    pub fn kept(mut self, kept: Option<&KeptUpload>) -> Self {
        self.kept = kept.cloned();
        self
    }

    /// The upload of this input kept by a refused form, if it has one
    /// ([`BlobFormRejection::kept`](super::BlobFormRejection)).
    pub fn kept_from(self, refused: Option<&super::BlobFormRejection>) -> Self {
        let kept = refused.and_then(|r| r.kept.get(&self.name)).cloned();
        Self { kept, ..self }
    }

    /// Mark the input `required` when there is no current value and no kept upload.
    pub fn required(mut self, required: bool) -> Self {
        self.required = required;
        self
    }

    /// Show the limits hint below the input (default on).
    pub fn hint(mut self, hint: bool) -> Self {
        self.hint = hint;
        self
    }
}

fn display_name(v: &BlobValue) -> String {
    v.original_name.clone().unwrap_or_else(|| v.name.rsplit('/').next().unwrap_or(&v.name).to_string())
}

impl fmt::Display for FileInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = &self.field;
        let name = escape_html(&self.name);
        write!(
            f,
            "<input type=\"file\" id=\"{name}\" name=\"{name}\" data-sea-gcp-field=\"{}\" data-max-size=\"{}\"",
            escape_html(&field.id),
            field.max_size
        )?;
        if !field.accept.is_empty() {
            write!(f, " accept=\"{}\"", escape_html(&field.accept_attribute()))?;
        }
        if field.blank {
            f.write_str(" data-blank")?;
        }
        if let Some((current, _)) = &self.current {
            write!(f, " data-current=\"{}\"", escape_html(current))?;
        }
        if let Some(kept) = &self.kept {
            write!(
                f,
                " data-ticket=\"{}\" data-ticket-name=\"{}\"",
                escape_html(&kept.ticket),
                escape_html(&kept.original_name)
            )?;
        }
        if self.required && self.current.is_none() && self.kept.is_none() {
            f.write_str(" required")?;
        }
        f.write_str(">")?;
        if let Some((current, Some(href))) = &self.current {
            write!(
                f,
                "<div class=\"sea-gcp-current\"><a href=\"{}\">{}</a></div>",
                escape_html(href),
                escape_html(current)
            )?;
        }
        f.write_str("<noscript><div class=\"hint\">Uploading a file needs JavaScript: turn it on and reload the page.</div></noscript>")?;
        if self.hint {
            write!(f, "<div class=\"hint\">Up to {}", size_text(field.max_size))?;
            if !field.accept.is_empty() {
                write!(f, "; {}", escape_html(&field.accept.join(", ")))?;
            }
            f.write_str(".</div>")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MemoryStore;

    fn field() -> Arc<UploadField> {
        let store = Arc::new(MemoryStore::new("m", crate::StoreConfig::memory()).unwrap());
        Arc::new(UploadField::new("docs.file", store).max_size(2048).accept(["image/*", "text/plain"]).blank(true))
    }

    #[test]
    fn escapes_every_special_character() {
        assert_eq!(escape_html(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
        assert_eq!(escape_html("plain ü 文"), "plain ü 文");
    }

    #[test]
    fn renders_limits_and_escapes_names() {
        let mut value = BlobValue::uncached("docs/file/1/x.txt");
        value.original_name = Some("\"><script>alert(1)</script>.txt".into());
        let kept = KeptUpload { ticket: "a.b\"c".into(), original_name: "<b>.png".into() };
        let html = FileInput::new(field(), "file")
            .current_with_link(Some(&value), "/d?a=1&b=\"2\"")
            .kept(Some(&kept))
            .to_string();
        assert!(html.starts_with("<input type=\"file\" id=\"file\" name=\"file\" data-sea-gcp-field=\"docs.file\""));
        assert!(html.contains("data-max-size=\"2048\""), "{html}");
        assert!(html.contains("accept=\"image/*,text/plain\""), "{html}");
        assert!(html.contains(" data-blank"), "{html}");
        assert!(html.contains("data-current=\"&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;.txt\""), "{html}");
        assert!(html.contains("data-ticket=\"a.b&quot;c\" data-ticket-name=\"&lt;b&gt;.png\""), "{html}");
        assert!(html.contains("href=\"/d?a=1&amp;b=&quot;2&quot;\""), "{html}");
        assert!(!html.contains("<script>") && !html.contains("<b>"), "{html}");
        assert!(html.contains("Up to 2.0 KiB; image/*, text/plain."), "{html}");
        assert!(html.contains("<noscript>") && html.contains("needs JavaScript"), "{html}");
        assert!(!html.contains(" required"), "{html}");
    }

    #[test]
    fn required_only_without_a_value() {
        let html = FileInput::new(field(), "file").required(true).hint(false).to_string();
        assert!(html.ends_with(" required><noscript><div class=\"hint\">Uploading a file needs JavaScript: turn it on and reload the page.</div></noscript>"), "{html}");
        let kept = KeptUpload { ticket: "t.s".into(), original_name: "a".into() };
        assert!(!FileInput::new(field(), "file").required(true).kept(Some(&kept)).to_string().contains(" required"));
    }
}
