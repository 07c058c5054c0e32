//! Directory listings (`listing = true`): a plain HTML page of a directory's entries.
//!
//! Owns: reading the directory (on tokio's blocking pool: a large directory must not stall the
//! event loop), which entries are shown (no dotfiles unless `hidden`), their order, and escaping
//! (names are HTML-escaped in text and percent-encoded in links). Must not touch: deciding
//! whether a listing is allowed (`resolve`) or the response's headers (`send`).

use std::fmt::Write;
use std::path::PathBuf;

/// The listing page of `dir`, titled with the request path `shown`; `None` if it cannot be read.
pub async fn page(dir: PathBuf, shown: String, hidden: bool) -> Option<String> {
    let entries = tokio::task::spawn_blocking(move || read(&dir, hidden))
        .await
        .ok()??;
    Some(render(&shown, &entries))
}

/// `(name as bytes, is a directory)`, sorted by name.
fn read(dir: &std::path::Path, hidden: bool) -> Option<Vec<(Vec<u8>, bool)>> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).ok()? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name().as_encoded_bytes().to_vec();
        if name.starts_with(b".") && !hidden {
            continue;
        }
        // Follows symlinks, so a link to a directory is listed as one.
        let is_dir = entry.path().is_dir();
        entries.push((name, is_dir));
    }
    entries.sort();
    Some(entries)
}

fn render(shown: &str, entries: &[(Vec<u8>, bool)]) -> String {
    let title = escape(shown);
    let mut page = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of {title}</title>\
         </head>\n<body><h1>Index of {title}</h1>\n<ul>\n<li><a href=\"../\">../</a></li>\n"
    );
    for (name, is_dir) in entries {
        let slash = if *is_dir { "/" } else { "" };
        let text = escape(&String::from_utf8_lossy(name));
        let _ = writeln!(
            page,
            "<li><a href=\"{}{slash}\">{text}{slash}</a></li>",
            encode(name)
        );
    }
    page.push_str("</ul></body></html>\n");
    page
}

/// HTML text and attribute escaping.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A name as a relative link: every byte but unreserved ones percent-encoded.
fn encode(name: &[u8]) -> String {
    let mut out = String::with_capacity(name.len());
    for &b in name {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_in_text_and_links() {
        let entries = vec![(b"<b>&\"x\".txt".to_vec(), false), (b"dir".to_vec(), true)];
        let page = render("/a<b>/", &entries);
        assert!(page.contains("<title>Index of /a&lt;b&gt;/</title>"));
        assert!(
            page.contains("<a href=\"%3Cb%3E%26%22x%22.txt\">&lt;b&gt;&amp;&quot;x&quot;.txt</a>")
        );
        assert!(page.contains("<a href=\"dir/\">dir/</a>"));
        assert!(!page.contains("<b>"));
    }
}
