//! Tests of `plan` (kept apart so the module stays readable).
use clap::Parser;

use super::*;
use crate::args::BenchArgs;

#[derive(Parser)]
struct Wrap {
    #[command(flatten)]
    bench: BenchArgs,
}

fn plan_of(args: &[&str]) -> Result<Plan, PlanError> {
    let argv = std::iter::once("bench").chain(args.iter().copied());
    let wrap = Wrap::try_parse_from(argv).map_err(|e| PlanError(e.to_string()))?;
    build(&wrap.bench.load)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn url_gives_address_host_header_and_path() {
    let t = parse_url("http://127.0.0.1:8123/a/b?x=1").unwrap();
    assert_eq!(t.addr, "127.0.0.1:8123".parse().unwrap());
    assert_eq!(t.authority, "127.0.0.1:8123");
    assert_eq!(t.path, "/a/b?x=1");
    let t = parse_url("http://127.0.0.1").unwrap();
    assert_eq!((t.addr.port(), t.path.as_str()), (80, "/"));
    let t = parse_url("http://[::1]:9/").unwrap();
    assert_eq!(t.addr, "[::1]:9".parse().unwrap());
}

#[test]
fn bad_urls_are_refused_with_the_reason() {
    assert!(parse_url("https://x/")
        .unwrap_err()
        .contains("only http://"));
    assert!(parse_url("127.0.0.1:80")
        .unwrap_err()
        .contains("not an http:// URL"));
    assert!(parse_url("http://127.0.0.1:99999/")
        .unwrap_err()
        .contains("not a port"));
    assert!(parse_url("http:///path").is_err());
}

#[test]
fn durations_take_units() {
    assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
    assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
    assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
    assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
    assert!(parse_duration("-1s").is_err());
    assert!(parse_duration("soon").is_err());
}

#[test]
fn get_request_is_serialised_with_host_and_no_body() {
    let plan = plan_of(&["http://127.0.0.1:8000/hello", "-n", "5"]).unwrap();
    assert_eq!(plan.stop, Stop::Requests(5));
    assert_eq!(
        text(&plan.request),
        "GET /hello HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUser-Agent: wsrun-bench\r\n\r\n"
    );
}

#[test]
fn body_size_alone_makes_every_connection_post() {
    let plan = plan_of(&["http://127.0.0.1:8000/", "--body-size", "10"]).unwrap();
    assert_eq!(plan.method, "POST");
    assert!(text(plan.request_for(5)).ends_with("Content-Length: 10\r\n\r\nxxxxxxxxxx"));
}

#[test]
fn post_clients_post_while_the_rest_get() {
    let plan = plan_of(&["http://127.0.0.1:8000/", "-c", "4", "--post-clients", "1"]).unwrap();
    assert!(text(plan.request_for(0)).starts_with("POST / HTTP/1.1\r\n"));
    assert!(text(plan.request_for(0)).contains("Content-Length: 1024\r\n"));
    assert!(text(plan.request_for(1)).starts_with("GET / HTTP/1.1\r\n"));
    assert!(!text(plan.request_for(3)).contains("Content-Length"));
}

#[test]
fn user_headers_replace_defaults_and_no_keepalive_asks_to_close() {
    let plan = plan_of(&[
        "http://127.0.0.1:1/",
        "-H",
        "Host: other",
        "-H",
        "X-A: 1",
        "--no-keepalive",
    ]);
    let request = text(&plan.unwrap().request);
    assert!(request.contains("\r\nHost: other\r\n") && !request.contains("127.0.0.1"));
    assert!(request.contains("\r\nConnection: close\r\n"));
    assert!(request.ends_with("\r\nX-A: 1\r\n\r\n"));
}

#[test]
fn flag_errors_name_the_flag() {
    let err = |args: &[&str]| plan_of(args).unwrap_err().0;
    assert!(err(&["http://127.0.0.1/", "-c", "0"]).starts_with("--connections"));
    assert!(
        err(&["http://127.0.0.1/", "-c", "2", "--post-clients", "3"]).starts_with("--post-clients")
    );
    assert!(err(&["http://127.0.0.1/", "--rate", "0"]).starts_with("--rate"));
    assert!(err(&["http://127.0.0.1/", "-H", "nocolon"]).starts_with("-H"));
    assert!(err(&["http://127.0.0.1/", "--method", "G T"]).starts_with("--method"));
    assert!(err(&["http://127.0.0.1/", "-d", "forever"]).starts_with("--duration"));
    assert!(err(&[]).starts_with("URL"));
}

#[test]
fn duration_and_requests_conflict() {
    assert!(plan_of(&["http://127.0.0.1/", "-n", "1", "-d", "1s"]).is_err());
}
