//! A static route's own settings, as `wsrun.toml` gives them (`config::toml_routes` reads them).
//!
//! Owns: `StaticOptions`, plain data. Must not touch: anything else; every file of
//! `static_files` reads it from here.

/// What a static route does beyond sending files (the route's TOML keys).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StaticOptions {
    /// `Cache-Control: max-age=N` on files (and their 304s) when set.
    pub max_age: Option<u64>,
    /// Send `FILE.zst`, `FILE.br` or `FILE.gz` in place of `FILE` when the client accepts it.
    pub precompressed: bool,
    /// An HTML listing for a directory without `index.html` (404 otherwise).
    pub listing: bool,
    /// Serve names starting with `.` (404 otherwise).
    pub hidden: bool,
}
