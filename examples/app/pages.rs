//! Server-rendered HTML of the example (plain strings, every value escaped).

use std::sync::OnceLock;

use sea_gcp::Blobs;
use sea_gcp::blobs::BlobFormRejection;
use sea_gcp::field::BlobValue;

use super::{activity, document};

/// Where the upload routes are mounted (`{prefix}/uploads`), for the widget's script and stylesheet.
pub static UPLOADS: OnceLock<String> = OnceLock::new();

fn uploads() -> &'static str {
    UPLOADS.get().map(String::as_str).unwrap_or("/gcp/uploads")
}

/// Escape text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
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

fn layout(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · sea-gcp example</title>
<link rel="stylesheet" href="{uploads}/widget.css">
<style>
  body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 56rem; padding: 0 1rem; }}
  table {{ border-collapse: collapse; width: 100%; }}
  th, td {{ text-align: left; padding: 0.4rem; border-bottom: 1px solid #ddd; vertical-align: top; overflow-wrap: anywhere; }}
  .notice {{ color: #0b6e2e; font-weight: 600; }}
  form.inline {{ display: inline; }}
  label {{ display: block; font-weight: 600; margin-top: 1rem; }}
  .error {{ color: #b3261e; font-weight: 600; }}
  .hint {{ color: #5f6368; font-size: 0.9em; }}
</style>
<script src="{uploads}/widget.js" defer></script>
</head>
<body>
<h1>{title}</h1>
{body}
</body>
</html>
"#,
        title = esc(title),
        uploads = esc(uploads()),
    )
}

fn size_text(bytes: Option<u64>) -> String {
    match bytes {
        Some(n) if n >= 1024 * 1024 => format!("{:.1} MiB", n as f64 / 1048576.0),
        Some(n) if n >= 1024 => format!("{:.1} KiB", n as f64 / 1024.0),
        Some(n) => format!("{n} B"),
        None => String::new(),
    }
}

fn file_cell(id: i32, column: &str, value: Option<&BlobValue>) -> String {
    match value {
        None => "<span class=\"hint\">none</span>".into(),
        Some(v) => {
            let name = v.original_name.clone().unwrap_or_else(|| v.name.clone());
            format!(
                "<a class=\"download\" data-column=\"{column}\" href=\"/documents/{id}/download/{column}\">{}</a> \
                 <span class=\"hint\">{} {}</span>",
                esc(&name),
                esc(v.content_type.as_deref().unwrap_or("")),
                size_text(v.size)
            )
        }
    }
}

/// The hidden CSRF input every form carries.
fn csrf_input(token: &str) -> String {
    format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", esc(token))
}

/// An attachment's thumbnail: its URL and size in pixels.
pub struct Thumb {
    /// The variant's URL.
    pub url: String,
    /// Its width.
    pub width: Option<u32>,
    /// Its height.
    pub height: Option<u32>,
}

fn thumb_img(thumb: Option<&Thumb>) -> String {
    let Some(t) = thumb else { return String::new() };
    let size = |name: &str, v: Option<u32>| v.map(|v| format!(" {name}=\"{v}\"")).unwrap_or_default();
    format!(
        "<img class=\"thumb\" src=\"{}\"{}{} alt=\"\"> ",
        esc(&t.url),
        size("width", t.width),
        size("height", t.height)
    )
}

/// The list of documents (`thumbs`: attachment thumbnails by row id; `csrf`: the session's token, for
/// the delete forms; `notice`: a message to show above it).
pub fn list(
    rows: &[document::Model],
    log: &[activity::Model],
    thumbs: &std::collections::HashMap<i32, Thumb>,
    backend: &str,
    csrf: &str,
    notice: Option<&str>,
) -> String {
    let mut body =
        notice.map(|n| format!("<p class=\"notice\" role=\"status\" id=\"notice\">{}</p>", esc(n))).unwrap_or_default();
    body += &format!(
        "<p><a href=\"/documents/new\" id=\"new\">New document</a> <span class=\"hint\">({} store)</span></p>",
        esc(backend)
    );
    if rows.is_empty() {
        body.push_str("<p id=\"empty\">No documents yet.</p>");
    } else {
        body.push_str("<table id=\"documents\"><thead><tr><th>Title</th><th>File</th><th>Attachment</th><th></th></tr></thead><tbody>");
        for row in rows {
            body.push_str(&format!(
                "<tr data-id=\"{id}\"><td class=\"title\">{title}</td><td>{file}</td><td>{att}</td><td>\
                 <a href=\"/documents/{id}/edit\">Edit</a> \
                 <form class=\"inline\" method=\"post\" action=\"/documents/{id}/delete\">{csrf}\
                 <button type=\"submit\" aria-label=\"Delete {title}\">Delete</button></form></td></tr>",
                id = row.id,
                title = esc(&row.title),
                file = file_cell(row.id, "file", Some(&row.file)),
                att = thumb_img(thumbs.get(&row.id)) + &file_cell(row.id, "attachment", row.attachment.as_ref()),
                csrf = csrf_input(csrf),
            ));
        }
        body.push_str("</tbody></table>");
    }
    // What the background work did: receipts sent by the task, the nightly report, pushed events.
    body.push_str("<h2>Activity</h2><ul id=\"activity\">");
    for entry in log {
        body.push_str(&format!("<li>{} <span class=\"hint\">{}</span></li>", esc(&entry.text), esc(&entry.at)));
    }
    if log.is_empty() {
        body.push_str("<li class=\"hint\">Nothing yet: save a document and its receipt task runs.</li>");
    }
    body.push_str("</ul>");
    layout("Documents", &body)
}

/// What the create / edit form shows.
#[derive(Default)]
pub struct Form<'a> {
    /// The row being edited (`None`: a new document).
    pub row: Option<&'a document::Model>,
    /// The title to show.
    pub title: &'a str,
    /// The session's CSRF token.
    pub csrf: &'a str,
    /// The refusal of a posted form (its message; its finished uploads are kept).
    pub refused: Option<&'a BlobFormRejection>,
}

/// The create / edit form.
pub fn form(blobs: &Blobs, f: &Form<'_>) -> String {
    let (row, title, error) = (f.row, f.title, f.refused.map(|r| r.refusal.message.as_str()));
    let action = row.map(|r| format!("/documents/{}", r.id)).unwrap_or_else(|| "/documents".into());
    let mut body = String::new();
    if let Some(e) = error {
        body.push_str(&format!("<p class=\"error\" role=\"alert\" id=\"form-error\">{}</p>", esc(e)));
    }
    body.push_str(&format!(
        "<form method=\"post\" action=\"{action}\" id=\"document-form\">{csrf}\
         <label for=\"title\">Title</label><input id=\"title\" name=\"title\" required maxlength=\"200\" value=\"{title}\">\
         <label for=\"file\">File</label>{file}\
         <label for=\"attachment\">Attachment (optional)</label>{attachment}\
         <p><button type=\"submit\" id=\"save\">Save</button> <a href=\"/\">Cancel</a></p></form>",
        title = esc(title),
        csrf = csrf_input(f.csrf),
        file = blobs.input(document::Column::File).current(row.map(|r| &r.file)).kept_from(f.refused).required(true),
        attachment = blobs.input(document::Column::Attachment).current(row.and_then(|r| r.attachment.as_ref())).kept_from(f.refused),
    ));
    layout(if row.is_some() { "Edit document" } else { "New document" }, &body)
}

/// A page with one message.
pub fn message(title: &str, text: &str) -> String {
    layout(title, &format!("<p>{}</p><p><a href=\"/\">Back</a></p>", esc(text)))
}
