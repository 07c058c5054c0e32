//! HTTP header collections as plain Rust data.
//!
//! Owns [`Headers`]: an ordered, multi-valued list of `(name, value)` pairs with
//! case-insensitive name lookup. It is pure data (no wasi resources), so it is
//! built from a request's `fields` once and then read freely, and it is turned
//! into wasi `fields` only when a response is sent (see `responder`). This module
//! must not call any wasi import, so that its logic is testable on the host.

/// An ordered list of HTTP header fields.
///
/// Names compare case-insensitively (ASCII); a name may occur several times and
/// every occurrence is kept in order. Values are bytes, because HTTP allows
/// non-UTF-8 octets; the `&str` accessors skip values that are not UTF-8.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<(String, Vec<u8>)>,
}

impl Headers {
    /// An empty header list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builder form of [`Headers::append`]: adds a field and returns `self`.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.append(name, value);
        self
    }

    /// Adds a field, keeping any earlier fields of the same name.
    pub fn append(&mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) {
        self.entries.push((name.into(), value.into()));
    }

    /// Replaces every field called `name` by one field with `value`.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) {
        let name = name.into();
        self.remove(&name);
        self.entries.push((name, value.into()));
    }

    /// Removes every field called `name`; returns how many were removed.
    pub fn remove(&mut self, name: &str) -> usize {
        let before = self.entries.len();
        self.entries.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        before - self.entries.len()
    }

    /// Whether at least one field called `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get_all_raw(name).next().is_some()
    }

    /// The first value of `name` as text, or `None` if absent or not UTF-8.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_raw(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The first value of `name` as bytes, or `None` if absent.
    pub fn get_raw(&self, name: &str) -> Option<&[u8]> {
        self.get_all_raw(name).next()
    }

    /// Every value of `name` that is valid UTF-8, in order.
    pub fn get_all<'s, 'n>(&'s self, name: &'n str) -> impl Iterator<Item = &'s str> + use<'s, 'n> {
        self.get_all_raw(name)
            .filter_map(|v| std::str::from_utf8(v).ok())
    }

    /// Every value of `name` as bytes, in order.
    pub fn get_all_raw<'s, 'n>(
        &'s self,
        name: &'n str,
    ) -> impl Iterator<Item = &'s [u8]> + use<'s, 'n> {
        self.entries
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// All fields in order, as `(name, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }

    /// Number of fields (each occurrence counts).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The fields as the `(name, value)` list that wasi `fields.from-list` takes.
    pub fn as_list(&self) -> &[(String, Vec<u8>)] {
        &self.entries
    }
}

impl From<Vec<(String, Vec<u8>)>> for Headers {
    fn from(entries: Vec<(String, Vec<u8>)>) -> Self {
        Self { entries }
    }
}

impl<N: Into<String>, V: Into<Vec<u8>>> FromIterator<(N, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        Self {
            entries: iter
                .into_iter()
                .map(|(n, v)| (n.into(), v.into()))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Headers;

    fn sample() -> Headers {
        Headers::new()
            .with("Content-Type", "text/plain")
            .with("set-cookie", "a=1")
            .with("Set-Cookie", "b=2")
            .with("x-bin", vec![0xff, 0xfe])
    }

    #[test]
    fn lookup_is_case_insensitive() {
        let h = sample();
        assert_eq!(h.get("content-type"), Some("text/plain"));
        assert_eq!(h.get("CONTENT-TYPE"), Some("text/plain"));
        assert!(h.contains("Content-type"));
        assert_eq!(h.get("missing"), None);
    }

    #[test]
    fn multi_valued_fields_keep_order() {
        let h = sample();
        let all: Vec<&str> = h.get_all("SET-COOKIE").collect();
        assert_eq!(all, ["a=1", "b=2"]);
        assert_eq!(h.len(), 4);
    }

    #[test]
    fn non_utf8_values_only_as_bytes() {
        let h = sample();
        assert_eq!(h.get("x-bin"), None);
        assert_eq!(h.get_raw("x-bin"), Some(&[0xff, 0xfe][..]));
        assert_eq!(h.get_all("x-bin").count(), 0);
    }

    #[test]
    fn insert_replaces_and_remove_counts() {
        let mut h = sample();
        h.insert("Set-Cookie", "c=3");
        assert_eq!(h.get_all("set-cookie").collect::<Vec<_>>(), ["c=3"]);
        assert_eq!(h.remove("set-cookie"), 1);
        assert!(!h.contains("set-cookie"));
        assert_eq!(h.remove("nothing"), 0);
    }

    #[test]
    fn from_iter_and_list() {
        let h: Headers = [("a", "1"), ("b", "2")].into_iter().collect();
        assert_eq!(h.as_list()[1], ("b".to_string(), b"2".to_vec()));
        assert!(!h.is_empty());
        assert_eq!(h.iter().count(), 2);
    }
}
