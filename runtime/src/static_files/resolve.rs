//! Path safety: a route-relative request path to what it names under the route's root.
//!
//! Owns: the containment rules — the path must be UTF-8 (so overlong and other invalid
//! sequences are refused), has no `.`/`..` segment and no backslash (after the server's one
//! percent-decoding, so `%2e%2e`, `%2f` and `%5c` are caught here too), names no dotfile unless
//! `hidden = true`, and its real path (symlinks resolved) stays under the root and names no
//! dotfile either. Then what a directory gives: a redirect adding the slash, its `index.html`,
//! a listing when allowed, or nothing. Must not touch: headers, bodies, or reading files.

use std::path::{Component, Path, PathBuf};

use super::options::StaticOptions;

/// What a request path names.
#[derive(Debug, PartialEq, Eq)]
pub enum Resolved {
    /// A regular file under the root (its real path).
    File(PathBuf),
    /// A directory asked for without its trailing slash.
    AddSlash,
    /// A directory without `index.html` on a route with `listing = true`; `shown` is the
    /// request path as the page names it.
    Listing {
        dir: PathBuf,
        shown: String,
    },
    NotFound,
}

/// Resolves `rel` (percent-decoded, relative to the route prefix) under `root` (canonical).
pub fn resolve(root: &Path, rel: &[u8], options: &StaticOptions) -> Resolved {
    let Some(segments) = segments(rel, options.hidden) else {
        return Resolved::NotFound;
    };
    let Ok(rel) = std::str::from_utf8(rel) else {
        return Resolved::NotFound;
    };
    let mut path = root.to_path_buf();
    for segment in segments {
        path.push(segment);
    }
    let Some(real) = contained(root, &path, options.hidden) else {
        return Resolved::NotFound;
    };
    let Ok(meta) = real.metadata() else {
        return Resolved::NotFound;
    };
    if meta.is_file() {
        return Resolved::File(real);
    }
    if !meta.is_dir() {
        return Resolved::NotFound;
    }
    if !rel.ends_with('/') {
        return Resolved::AddSlash;
    }
    let index = contained(root, &real.join("index.html"), options.hidden);
    if let Some(index) = index.filter(|p| p.is_file()) {
        return Resolved::File(index);
    }
    if options.listing {
        let shown = if rel.starts_with('/') {
            rel.to_string()
        } else {
            format!("/{rel}")
        };
        return Resolved::Listing { dir: real, shown };
    }
    Resolved::NotFound
}

/// The path's segments, or `None` when a rule refuses it: not UTF-8 (overlong forms included),
/// a `.` or `..` segment, a backslash, or a dotfile without `hidden`.
pub fn segments(rel: &[u8], hidden: bool) -> Option<Vec<&str>> {
    let rel = std::str::from_utf8(rel).ok()?;
    let mut out = Vec::new();
    for segment in rel.split('/').filter(|s| !s.is_empty()) {
        let refused = segment == "."
            || segment == ".."
            || segment.contains('\\')
            || (segment.starts_with('.') && !hidden);
        if refused {
            return None;
        }
        out.push(segment);
    }
    Some(out)
}

/// `path`'s real path when it exists, lies under `root` and (unless `hidden`) has no component
/// below the root starting with `.` (a symlink may not lead to a dotfile either).
fn contained(root: &Path, path: &Path, hidden: bool) -> Option<PathBuf> {
    let real = path.canonicalize().ok()?;
    let below = real.strip_prefix(root).ok()?;
    let dotted = below.components().any(|c| match c {
        Component::Normal(name) => name.as_encoded_bytes().starts_with(b"."),
        _ => true,
    });
    (hidden || !dotted).then_some(real)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("sub/deeper")).expect("dirs");
        std::fs::create_dir_all(root.join(".git")).expect("dirs");
        std::fs::write(root.join("a.txt"), "a").expect("file");
        std::fs::write(root.join(".env"), "secret").expect("file");
        std::fs::write(root.join(".git/config"), "x").expect("file");
        std::fs::write(root.join("sub/index.html"), "<p>").expect("file");
        std::fs::write(dir.path().join("outside"), "no").expect("file");
        std::os::unix::fs::symlink(dir.path().join("outside"), root.join("out")).expect("link");
        std::os::unix::fs::symlink(root.join(".env"), root.join("env")).expect("link");
        std::os::unix::fs::symlink(root.join("a.txt"), root.join("b.txt")).expect("link");
        let root = root.canonicalize().expect("canonical");
        (dir, root)
    }

    fn run(root: &Path, rel: &str, options: &StaticOptions) -> Resolved {
        resolve(root, rel.as_bytes(), options)
    }

    #[test]
    fn files_directories_and_redirects() {
        let (_dir, root) = tree();
        let o = StaticOptions::default();
        assert_eq!(run(&root, "/a.txt", &o), Resolved::File(root.join("a.txt")));
        assert_eq!(run(&root, "/b.txt", &o), Resolved::File(root.join("a.txt")));
        assert_eq!(run(&root, "/sub", &o), Resolved::AddSlash);
        assert_eq!(run(&root, "", &o), Resolved::AddSlash);
        let index = Resolved::File(root.join("sub/index.html"));
        assert_eq!(run(&root, "/sub/", &o), index);
        assert_eq!(run(&root, "/sub/deeper/", &o), Resolved::NotFound);
        assert_eq!(run(&root, "/nope", &o), Resolved::NotFound);
    }

    #[test]
    fn listings_only_when_enabled() {
        let (_dir, root) = tree();
        let listing = StaticOptions {
            listing: true,
            ..StaticOptions::default()
        };
        assert_eq!(
            run(&root, "/sub/deeper/", &listing),
            Resolved::Listing {
                dir: root.join("sub/deeper"),
                shown: "/sub/deeper/".to_string()
            }
        );
    }

    #[test]
    fn traversal_backslashes_and_bad_utf8_are_refused() {
        let (_dir, root) = tree();
        let o = StaticOptions::default();
        for rel in [
            "/../outside",
            "/sub/../../outside",
            "/./a.txt",
            "/..\\outside",
            "/out",
        ] {
            assert_eq!(run(&root, rel, &o), Resolved::NotFound, "{rel}");
        }
        // An overlong `/` (0xC0 0xAF) and an overlong `.` (0xC0 0xAE) are not UTF-8.
        for rel in [&b"/\xc0\xae\xc0\xae/outside"[..], b"/sub\xc0\xafa.txt"] {
            assert_eq!(resolve(&root, rel, &o), Resolved::NotFound);
        }
    }

    #[test]
    fn dotfiles_need_hidden() {
        let (_dir, root) = tree();
        let o = StaticOptions::default();
        assert_eq!(run(&root, "/.env", &o), Resolved::NotFound);
        assert_eq!(run(&root, "/.git/config", &o), Resolved::NotFound);
        assert_eq!(
            run(&root, "/env", &o),
            Resolved::NotFound,
            "link to a dotfile"
        );
        let hidden = StaticOptions {
            hidden: true,
            ..StaticOptions::default()
        };
        assert_eq!(
            run(&root, "/.env", &hidden),
            Resolved::File(root.join(".env"))
        );
        assert_eq!(run(&root, "/out", &hidden), Resolved::NotFound);
    }
}
