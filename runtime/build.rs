//! Build script: link libpython with an rpath, and embed the `python/` package tree.
//!
//! Owns: telling rustc where libpython lives (so the binary starts in a fresh shell without
//! LD_LIBRARY_PATH) and generating `embedded_python.rs`, the list of Python files compiled into
//! the binary. Must not touch anything outside `OUT_DIR`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    link_libpython_with_rpath();
    embed_python_tree();
}

fn link_libpython_with_rpath() {
    let config = pyo3_build_config::get();
    if let Some(dir) = &config.lib_dir {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}

/// Writes `$OUT_DIR/embedded_python.rs`: `pub static FILES: &[(&str, &str)]` of
/// (path relative to `python/`, contents) for every `.py`/`.pyi` file and `py.typed` marker.
fn embed_python_tree() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets this"));
    let root = manifest.join("..").join("python");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect(&root, &root, &mut files);
    files.sort();
    let mut out = String::from("pub static FILES: &[(&str, &str)] = &[\n");
    for (rel, abs) in &files {
        println!("cargo:rerun-if-changed={}", abs.display());
        let _ = writeln!(
            out,
            "    ({rel:?}, include_str!({:?})),",
            abs.display().to_string()
        );
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets this"))
        .join("embedded_python.rs");
    std::fs::write(dest, out).expect("OUT_DIR is writable");
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if path.is_dir() {
            if name != "__pycache__" {
                println!("cargo:rerun-if-changed={}", path.display());
                collect(root, &path, files);
            }
        } else if name.ends_with(".py") || name.ends_with(".pyi") || name == "py.typed" {
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .to_string();
            files.push((rel, path));
        }
    }
}
