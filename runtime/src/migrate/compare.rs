//! Comparing the primary's response with the shadow's.
//!
//! Owns: `Captured` (status, headers, body of one side) and `compare`, the rules: the status;
//! then the headers that matter — every header both sides send except hop-by-hop ones,
//! `date`, `server`, `content-length`, `transfer-encoding`, `wsrun-*` and those listed as
//! `header:NAME` in `ignore` (content-type always counts); then the body: when both parse as
//! JSON, structurally (key order and whitespace do not count; `ignore` JSON paths are left
//! out), else byte for byte. The first difference is named by a path: `status`,
//! `header:NAME`, a JSON path such as `$.items[2].id`, or `body` for bytes.
//! Must not touch: running handlers, the store, or how often anything is compared.

use http::{HeaderMap, StatusCode};
use serde_json::Value;

use crate::config::{JsonPath, Step};

/// What one side answered (the body possibly truncated: then `complete` is false).
#[derive(Debug, Clone)]
pub struct Captured {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// What the comparison ignores.
pub struct Rules<'a> {
    pub ignore_paths: &'a [JsonPath],
    pub ignore_headers: &'a [String],
}

/// Headers never compared: they describe the transfer, not the answer.
const SKIPPED_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
    "date",
    "server",
];

/// `None` when the two agree, else the first difference's path.
pub fn compare(primary: &Captured, shadow: &Captured, rules: &Rules) -> Option<String> {
    if primary.status != shadow.status {
        return Some("status".to_string());
    }
    if let Some(name) = header_difference(&primary.headers, &shadow.headers, rules) {
        return Some(format!("header:{name}"));
    }
    body_difference(&primary.body, &shadow.body, rules.ignore_paths)
}

fn header_difference(a: &HeaderMap, b: &HeaderMap, rules: &Rules) -> Option<String> {
    let counts = |name: &str| {
        !SKIPPED_HEADERS.contains(&name)
            && !name.starts_with("wsrun-")
            && !rules.ignore_headers.iter().any(|h| h == name)
    };
    let mut names: Vec<&str> = a.keys().chain(b.keys()).map(|n| n.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .filter(|n| counts(n))
        .find(|name| {
            let values = |m: &HeaderMap| -> Vec<Vec<u8>> {
                m.get_all(*name)
                    .iter()
                    .map(|v| v.as_bytes().to_vec())
                    .collect()
            };
            values(a) != values(b)
        })
        .map(str::to_string)
}

fn body_difference(a: &[u8], b: &[u8], ignore: &[JsonPath]) -> Option<String> {
    let parsed = (
        serde_json::from_slice::<Value>(a),
        serde_json::from_slice::<Value>(b),
    );
    if let (Ok(mut x), Ok(mut y)) = parsed {
        for path in ignore {
            remove(&mut x, &path.0);
            remove(&mut y, &path.0);
        }
        let mut at = String::from("$");
        return json_difference(&x, &y, &mut at).then_some(at);
    }
    (a != b).then(|| "body".to_string())
}

/// Removes what `steps` names from `value` (every match of a `[*]`).
fn remove(value: &mut Value, steps: &[Step]) {
    let Some((first, rest)) = steps.split_first() else {
        return;
    };
    let last = rest.is_empty();
    match (first, value) {
        (Step::Key(k), Value::Object(map)) if last => {
            map.remove(k);
        }
        (Step::Key(k), Value::Object(map)) => {
            if let Some(v) = map.get_mut(k) {
                remove(v, rest);
            }
        }
        (Step::Index(i), Value::Array(items)) if last && *i < items.len() => {
            items[*i] = Value::Null;
        }
        (Step::Index(i), Value::Array(items)) => {
            if let Some(v) = items.get_mut(*i) {
                remove(v, rest);
            }
        }
        (Step::Any, Value::Array(items)) if last => items.iter_mut().for_each(|v| *v = Value::Null),
        (Step::Any, Value::Array(items)) => items.iter_mut().for_each(|v| remove(v, rest)),
        (Step::Any, Value::Object(map)) if last => map.clear(),
        (Step::Any, Value::Object(map)) => map.values_mut().for_each(|v| remove(v, rest)),
        _ => {}
    }
}

/// True when `a` and `b` differ; `at` is then the path of the first difference.
fn json_difference(a: &Value, b: &Value, at: &mut String) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort_unstable();
            keys.dedup();
            for key in keys {
                let len = at.len();
                push_key(at, key);
                match (x.get(key), y.get(key)) {
                    (Some(p), Some(q)) if !json_difference(p, q, at) => at.truncate(len),
                    _ => return true,
                }
            }
            false
        }
        (Value::Array(x), Value::Array(y)) => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                let len = at.len();
                at.push_str(&format!("[{i}]"));
                if json_difference(p, q, at) {
                    return true;
                }
                at.truncate(len);
            }
            if x.len() != y.len() {
                at.push_str(&format!("[{}]", x.len().min(y.len())));
                return true;
            }
            false
        }
        (Value::Number(x), Value::Number(y)) => x.as_f64() != y.as_f64(),
        _ => a != b,
    }
}

fn push_key(at: &mut String, key: &str) {
    let plain = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        at.push('.');
        at.push_str(key);
    } else {
        at.push_str(&format!("['{key}']"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(status: u16, ct: &str, body: &str) -> Captured {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", ct.parse().expect("a value"));
        Captured {
            status: StatusCode::from_u16(status).expect("a status"),
            headers,
            body: body.as_bytes().to_vec(),
        }
    }

    fn run(a: &Captured, b: &Captured, ignore: &[&str]) -> Option<String> {
        let paths: Vec<JsonPath> = ignore
            .iter()
            .filter(|s| s.starts_with('$'))
            .map(|p| JsonPath::parse(p).expect("path"))
            .collect();
        let headers: Vec<String> = ignore
            .iter()
            .filter(|s| !s.starts_with('$'))
            .map(|h| h.to_string())
            .collect();
        let rules = Rules {
            ignore_paths: &paths,
            ignore_headers: &headers,
        };
        compare(a, b, &rules)
    }

    #[test]
    fn json_key_order_and_whitespace_do_not_count() {
        let a = side(200, "application/json", r#"{"a": 1, "b": [1, 2]}"#);
        let b = side(200, "application/json", r#"{"b":[1,2],"a":1.0}"#);
        assert_eq!(run(&a, &b, &[]), None);
    }

    #[test]
    fn the_first_difference_is_named_by_path() {
        let a = side(
            200,
            "application/json",
            r#"{"items": [{"id": 1, "n": "x"}], "z": 1}"#,
        );
        let b = side(
            200,
            "application/json",
            r#"{"items": [{"id": 2, "n": "x"}], "z": 2}"#,
        );
        assert_eq!(run(&a, &b, &[]).as_deref(), Some("$.items[0].id"));
        assert_eq!(run(&a, &b, &["$.items[*].id"]).as_deref(), Some("$.z"));
        assert_eq!(run(&a, &b, &["$.items[*].id", "$.z"]), None);
        let c = side(
            200,
            "application/json",
            r#"{"items": [], "z": 1, "extra": true}"#,
        );
        assert_eq!(run(&a, &c, &[]).as_deref(), Some("$.extra"));
    }

    #[test]
    fn status_headers_then_bytes() {
        let a = side(200, "text/plain", "hi");
        assert_eq!(
            run(&a, &side(404, "text/plain", "hi"), &[]).as_deref(),
            Some("status")
        );
        assert_eq!(
            run(&a, &side(200, "text/html", "hi"), &[]).as_deref(),
            Some("header:content-type")
        );
        assert_eq!(
            run(&a, &side(200, "text/plain", "ho"), &[]).as_deref(),
            Some("body")
        );
        let mut b = side(200, "text/plain", "hi");
        b.headers.insert("date", "x".parse().expect("v"));
        b.headers.insert("x-build", "2".parse().expect("v"));
        assert_eq!(run(&a, &b, &[]).as_deref(), Some("header:x-build"));
        assert_eq!(run(&a, &b, &["x-build"]), None);
    }
}
