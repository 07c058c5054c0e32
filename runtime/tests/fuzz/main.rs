//! Fuzzing on stable Rust: the request-head guard, the chunked body framing, the config loader
//! and the unit grammars, each run for a bounded time under `cargo test` (see `driver.rs` for
//! how, and `WSRUN_FUZZ_SECS` / `WSRUN_FUZZ_SEED`). Seeds are in `corpus/<target>/`; inputs that
//! once failed are in `regressions/<target>/` (replayed on every run) and, for each finding, a
//! named test below.
//!
//! Owns: wiring targets to the driver, their dictionaries and the named regressions. Must not
//! touch: wsrun internals beyond its public API.

mod chunked_ref;
mod config_target;
mod driver;
mod guard_run;
mod guard_targets;
mod units_target;

use driver::{fuzz, run_one, Rng};

const HTTP_DICT: &[&[u8]] = &[
    b"\r\n",
    b"\r\n\r\n",
    b"GET / HTTP/1.1\r\n",
    b"POST /x HTTP/1.1\r\n",
    b" HTTP/1.0\r\n",
    b"Host: a\r\n",
    b"Host: ",
    b"Content-Length: 5\r\n",
    b"Content-Length: ",
    b"Transfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: gzip, chunked\r\n",
    b"Connection: close\r\n",
    b"Expect: 100-continue\r\n",
    b"Upgrade: h2c\r\n",
    b"0\r\n\r\n",
    b"5;a=\"b\"\r\nhello\r\n",
    b"ffffffffffffffff\r\n",
    b";ext=v",
    b"Trailer-Field: x\r\n",
    b"Content-Type: text/plain\r\n",
    b"http://a/b",
    b"\t",
    b" ",
    b":",
    b"%00",
];

const TOML_DICT: &[&[u8]] = &[
    b"[server]\n",
    b"[[route]]\n",
    b"[[tenant]]\n",
    b"[jobs]\n",
    b"[[timer]]\n",
    b"[admin]\n",
    b"prefix = \"/a\"\n",
    b"wasm = \"h.wasm\"\n",
    b"app = \"app:app\"\n",
    b"static = \"public\"\n",
    b"host = \"*.example.com\"\n",
    b"bind = \"127.0.0.1:0\"\n",
    b"workers = 2\n",
    b"max_body_size = \"1MiB\"\n",
    b"timeout = \"1.5s\"\n",
    b" = ",
    b"\"\"\"",
    b"'",
    b"{ a = 1 }",
    b"[1, 2]",
    b"-1",
    b"1e999",
    b"true",
    b"\n",
    b"#",
];

const UNITS_DICT: &[&[u8]] = &[
    b"KiB",
    b"MiB",
    b"GiB",
    b"TiB",
    b"kb",
    b"ms",
    b"s",
    b"m",
    b"h",
    b".",
    b"18446744073709551615",
    b"340282366920938463463374607431768",
    b"[::1]",
    b":8080",
    b"localhost",
    b"/",
    b"//",
    b"..",
];

fn units_seed(rng: &mut Rng) -> Vec<u8> {
    units_target::numbers(rng)
}

#[test]
fn fuzz_request_head() {
    let r = fuzz(
        "head",
        HTTP_DICT,
        &guard_targets::valid_requests,
        &guard_targets::check_head,
    );
    assert!(
        r.classes > 3,
        "the head fuzzer reached only {} outcomes",
        r.classes
    );
}

#[test]
fn fuzz_chunked_body() {
    let r = fuzz(
        "chunked",
        HTTP_DICT,
        &guard_targets::valid_chunked,
        &guard_targets::check_chunked,
    );
    assert!(
        r.classes > 3,
        "the chunked fuzzer reached only {} outcomes",
        r.classes
    );
}

#[test]
fn fuzz_config_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    config_target::sandbox(dir.path()).expect("sandbox");
    let check = |input: &[u8]| config_target::check_config(dir.path(), input);
    let r = fuzz("config", TOML_DICT, &|_| Vec::new(), &check);
    assert!(
        r.classes > 3,
        "the config fuzzer reached only {} outcomes",
        r.classes
    );
}

#[test]
fn fuzz_units() {
    let r = fuzz("units", UNITS_DICT, &units_seed, &units_target::check_units);
    assert!(r.runs > 0 && r.corpus > 0);
}

/// Generated well-formed requests (some pipelined, some chunked) pass the guard unchanged.
#[test]
fn valid_requests_pass_the_guard_unchanged() {
    let mut rng = Rng::new(17);
    for _ in 0..3000 {
        let input = guard_targets::valid_requests(&mut rng);
        let o = guard_run::drive(&input, 1 + rng.below(64), 1 + rng.below(4096));
        assert_eq!(
            (o.err.clone(), o.rejection),
            (None, None),
            "{}",
            driver::show(&input)
        );
        assert_eq!(o.out, input, "{}", driver::show(&input));
    }
}

/// The reference decoder reads back what the encoder wrote (so it can judge the guard).
#[test]
fn reference_chunked_decoder_round_trips() {
    let mut rng = Rng::new(9);
    for _ in 0..3000 {
        let data: Vec<u8> = (0..rng.below(3000)).map(|_| rng.below(256) as u8).collect();
        let body = chunked_ref::encode(&mut rng, &data);
        assert_eq!(
            chunked_ref::decode(&body),
            chunked_ref::Decoded::Complete(data, body.len())
        );
    }
}

/// Each target's properties can fail: a known-bad input is reported, not passed.
#[test]
fn targets_detect_violations() {
    let bad = |_: &[u8]| -> driver::Verdict { Err("always".into()) };
    assert!(run_one(&bad, b"x").is_err());
    let panics = |_: &[u8]| -> driver::Verdict { panic!("boom") };
    assert_eq!(run_one(&panics, b"x"), Err("panicked: boom".into()));
    assert!(
        chunked_ref::decode(b"5\r\nhello\n").ne(&chunked_ref::decode(b"5\r\nhello\r\n0\r\n\r\n"))
    );
}

/// Finding (issue 17): a whole part just under u128 nanoseconds plus a fraction wrapped around
/// to a tiny duration instead of "too long" (`...768.9ms` read as 688 µs).
#[test]
fn regression_duration_fraction_does_not_wrap() {
    let s = "340282366920938463463374607431768.9ms";
    let err = wsrun::config::parse_duration(s).expect_err("must be too long");
    assert!(err.to_string().contains("too long"), "{err}");
    assert_eq!(units_target::check_units(s.as_bytes()).map(|_| ()), Ok(()));
}
