//! `api-v2`: the new users API of the migration demo (`examples/migrate/`), a
//! `wasi:http/proxy` component that wsrun serves at `/api/v2` while the legacy
//! Flask app keeps everything else.
//!
//! Paths are matched relative to the prefix the handler is mounted at: wsrun
//! passes the full path and the prefix in the `wsrun-script-name` header
//! ([`Request::script_name`]), so the same component works at any prefix.
//!
//! | request | answer |
//! | --- | --- |
//! | `GET users` | `200` `{"users":[...],"count":N}` |
//! | `GET users/<id>` | `200` one user, or `404` JSON |
//! | `GET health` | `200` `{"status":"ok","runtime":"wasm","api_version":...}` |
//! | a known path, another method | `405` JSON with `allow: GET, HEAD` |
//! | anything else | `404` JSON |
//!
//! `api_version` is the `API_VERSION` variable from the route's `env` in
//! wsrun.toml (`null` when it is not set): a guest sees no other environment.
//! JSON is written by hand ([`json`]) to keep the component small.

use wsrun_sdk::{Error, Handler, Method, Request, Response};

/// The value of the `allow` header on a `405`.
const ALLOW: &str = "GET, HEAD";

/// A user of the demo's in-memory directory (the same people the legacy app lists).
#[derive(Debug, PartialEq)]
struct User {
    id: u32,
    name: &'static str,
    email: &'static str,
}

const USERS: &[User] = &[
    User {
        id: 1,
        name: "Ada Lovelace",
        email: "ada@example.com",
    },
    User {
        id: 2,
        name: "Grace Hopper",
        email: "grace@example.com",
    },
    User {
        id: 3,
        name: "Alan Turing",
        email: "alan@example.com",
    },
];

/// What a path under the prefix names.
#[derive(Debug, PartialEq)]
enum Route {
    Users,
    /// `users/<id>`: the user, if the id names one.
    User(Option<&'static User>),
    Health,
}

/// Matches the path below the prefix (`users`, `users/2`, `health`); `None` if unknown.
fn route(relative: &str) -> Option<Route> {
    let relative = relative.trim_matches('/');
    let mut parts = relative.split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("users"), None, None) => Some(Route::Users),
        (Some("users"), Some(id), None) if !id.is_empty() => {
            Some(Route::User(id.parse().ok().and_then(find)))
        }
        (Some("health"), None, None) => Some(Route::Health),
        _ => None,
    }
}

fn find(id: u32) -> Option<&'static User> {
    USERS.iter().find(|u| u.id == id)
}

struct ApiV2;

impl Handler for ApiV2 {
    fn handle(request: Request) -> Result<Response, Error> {
        let path = request.path();
        let relative = path.strip_prefix(request.script_name()).unwrap_or(path);
        let Some(found) = route(relative) else {
            return Ok(not_found("no such endpoint", path));
        };
        if !matches!(request.method(), Method::Get | Method::Head) {
            let body = format!(
                "{{\"error\":\"method not allowed\",\"method\":{},\"allow\":{}}}",
                json::string(request.method().as_str()),
                json::string(ALLOW),
            );
            return Ok(json_response(405, body).with_header("allow", ALLOW));
        }
        Ok(match found {
            Route::Users => {
                let items: Vec<String> = USERS.iter().map(user_json).collect();
                let body = format!(
                    "{{\"users\":[{}],\"count\":{}}}",
                    items.join(","),
                    items.len()
                );
                json_response(200, body)
            }
            Route::User(Some(user)) => json_response(200, user_json(user)),
            Route::User(None) => not_found("no such user", path),
            Route::Health => {
                let version = std::env::var("API_VERSION")
                    .map_or_else(|_| "null".to_string(), |v| json::string(&v));
                let body =
                    format!("{{\"status\":\"ok\",\"runtime\":\"wasm\",\"api_version\":{version}}}");
                json_response(200, body)
            }
        })
    }
}

fn user_json(user: &User) -> String {
    format!(
        "{{\"id\":{},\"name\":{},\"email\":{}}}",
        user.id,
        json::string(user.name),
        json::string(user.email)
    )
}

fn not_found(error: &str, path: &str) -> Response {
    let body = format!(
        "{{\"error\":{},\"path\":{}}}",
        json::string(error),
        json::string(path)
    );
    json_response(404, body)
}

/// An `application/json` response, marked as served by the WebAssembly side.
fn json_response(status: u16, body: String) -> Response {
    Response::bytes(status, "application/json", body.into_bytes())
        .with_header("x-served-by", "wsrun-wasm")
}

/// The JSON this crate needs, by hand.
mod json {
    use std::fmt::Write as _;

    /// `s` as a quoted JSON string: `"` and `\` escaped, control characters as
    /// `\n`, `\t`, ... or `\u00XX`; everything else (UTF-8 included) as is.
    pub fn string(s: &str) -> String {
        let mut out = String::with_capacity(s.len() + 2);
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{08}' => out.push_str("\\b"),
                '\u{0c}' => out.push_str("\\f"),
                c if u32::from(c) < 0x20 => {
                    let _ = write!(out, "\\u{:04x}", u32::from(c));
                }
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }
}

wsrun_sdk::export!(ApiV2);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped() {
        assert_eq!(json::string("plain"), "\"plain\"");
        assert_eq!(json::string("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(json::string("l1\nl2\t\u{1}"), "\"l1\\nl2\\t\\u0001\"");
        assert_eq!(json::string("café"), "\"café\"");
    }

    #[test]
    fn routes() {
        assert_eq!(route("/users"), Some(Route::Users));
        assert_eq!(route("/users/"), Some(Route::Users));
        assert_eq!(route("/users/2"), Some(Route::User(find(2))));
        assert!(find(2).is_some());
        assert_eq!(route("/users/99"), Some(Route::User(None)));
        assert_eq!(route("/users/x"), Some(Route::User(None)));
        assert_eq!(route("/health"), Some(Route::Health));
        for unknown in ["", "/", "/nope", "/users/1/more", "/healthz"] {
            assert_eq!(route(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn answers() {
        let call = |method: Method, path: &str| {
            let request = Request::new(method, path).with_header("wsrun-script-name", "/api/v2");
            ApiV2::handle(request).unwrap()
        };
        let res = call(Method::Get, "/api/v2/users/1");
        assert_eq!(res.status(), 200);
        assert_eq!(
            res.body(),
            br#"{"id":1,"name":"Ada Lovelace","email":"ada@example.com"}"#
        );
        let res = call(Method::Get, "/api/v2/nope\"");
        assert_eq!(res.status(), 404);
        assert_eq!(
            res.body(),
            br#"{"error":"no such endpoint","path":"/api/v2/nope\""}"#
        );
        let res = call(Method::Post, "/api/v2/users");
        assert_eq!(res.status(), 405);
        assert_eq!(res.headers().get("allow"), Some(ALLOW));
        // Mounted elsewhere, the same paths below the prefix work.
        let request =
            Request::new(Method::Get, "/v2/health").with_header("wsrun-script-name", "/v2");
        assert_eq!(ApiV2::handle(request).unwrap().status(), 200);
    }
}
