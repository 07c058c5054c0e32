//! Unit tests of `address`: authority normalisation, origin matching, address classes.

use super::*;
use crate::config::Origin;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn authorities_are_normalised() {
    let a = Authority::parse("HTTP", "API.Example.COM.:8080").unwrap();
    assert_eq!(a.scheme, "http");
    assert_eq!(a.host, Host::Name("api.example.com".into()));
    assert_eq!(a.port, 8080);
    assert_eq!(Authority::parse("https", "x.test").unwrap().port, 443);
    assert_eq!(Authority::parse("http", "x.test").unwrap().port, 80);
    let v6 = Authority::parse("http", "[::1]:9000").unwrap();
    assert_eq!(v6.host, Host::Ip(ip("::1")));
    assert_eq!(v6.to_string(), "http://[::1]:9000");
    assert_eq!(
        Authority::parse("http", "[::1]").unwrap().to_string(),
        "http://[::1]:80"
    );
    let v4 = Authority::parse("http", "127.0.0.1:1").unwrap();
    assert_eq!(v4.host, Host::Ip(ip("127.0.0.1")));
}

#[test]
fn bad_authorities_are_refused() {
    for (scheme, authority) in [
        ("http", "evil@allowed.test"),
        ("http", "user:pw@allowed.test:80"),
        ("http", "@allowed.test"),
        ("http", ""),
        ("http", ":80"),
        ("http", "."),
        ("http", "x.test:"),
        ("http", "x.test:0"),
        ("http", "x.test:65536"),
        ("http", "x.test:+80"),
        ("http", "x.test:8o"),
        ("http", "::1"),
        ("http", "[::1"),
        ("http", "[nope]:80"),
        ("http", "a b.test"),
        ("http", "a%2e.test"),
        ("http", "a..test"),
        ("ftp", "x.test"),
    ] {
        assert!(
            Authority::parse(scheme, authority).is_err(),
            "{scheme}://{authority}"
        );
    }
}

#[test]
fn origins_match_by_normalised_host_and_literal() {
    let named = Origin::Exact {
        scheme: "http".into(),
        host: "localhost".into(),
        port: 9000,
    };
    let literal = Origin::Exact {
        scheme: "http".into(),
        host: "127.0.0.1".into(),
        port: 9000,
    };
    let v6 = Origin::Exact {
        scheme: "http".into(),
        host: "[::1]".into(),
        port: 9000,
    };
    let at = |s: &str| Authority::parse("http", s).unwrap();
    assert_eq!(origin_match(&named, &at("LOCALHOST.:9000")), Match::Public);
    assert_eq!(origin_match(&named, &at("localhost:9001")), Match::No);
    assert_eq!(
        origin_match(&literal, &at("127.0.0.1:9000")),
        Match::Literal
    );
    assert_eq!(origin_match(&literal, &at("localhost:9000")), Match::No);
    assert_eq!(origin_match(&v6, &at("[0:0::1]:9000")), Match::Literal);
    assert_eq!(
        origin_match(&Origin::Any, &at("127.0.0.1:9000")),
        Match::Public
    );
    assert_eq!(
        allowed_by(&[Origin::Any, literal.clone()], &at("127.0.0.1:9000")),
        Match::Literal
    );
    assert_eq!(
        allowed_by(&[named, literal], &at("10.0.0.1:9000")),
        Match::No
    );
    let https = Authority::parse("https", "127.0.0.1:9000").unwrap();
    assert_eq!(allowed_by(&[v6], &https), Match::No);
}

#[test]
fn every_non_public_range_is_named() {
    for (addr, why) in [
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "unspecified"),
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("10.0.0.1", "private"),
        ("10.255.255.1", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("169.254.1.1", "link-local"),
        ("169.254.169.254", "cloud metadata"),
        ("100.64.0.1", "shared (CGNAT)"),
        ("100.127.255.255", "shared (CGNAT)"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("255.255.255.255", "broadcast"),
        ("240.0.0.1", "reserved"),
        ("::", "unspecified"),
        ("::1", "loopback"),
        ("fc00::1", "private (unique local)"),
        ("fdff::1", "private (unique local)"),
        ("fd00:ec2::254", "cloud metadata"),
        ("fe80::1", "link-local"),
        ("febf::1", "link-local"),
        ("fec0::1", "site-local"),
        ("ff02::1", "multicast"),
        // IPv4 inside IPv6: the IPv4 address decides.
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.1.2.3", "private"),
        ("::ffff:169.254.169.254", "cloud metadata"),
        ("::ffff:0.0.0.0", "unspecified"),
        ("::127.0.0.1", "loopback"),
        ("::192.168.0.1", "private"),
        ("64:ff9b::127.0.0.1", "loopback"),
        ("64:ff9b::a9fe:a9fe", "cloud metadata"),
        ("2002:7f00:1::", "loopback"),
        ("2002:c0a8:101::1", "private"),
    ] {
        assert_eq!(non_public(ip(addr)), Some(why), "{addr}");
    }
}

#[test]
fn public_addresses_pass() {
    for addr in [
        "1.1.1.1",
        "8.8.8.8",
        "93.184.216.34",
        "172.15.255.255",
        "172.32.0.1",
        "100.63.255.255",
        "100.128.0.1",
        "169.253.1.1",
        "192.167.1.1",
        "223.255.255.255",
        "2606:4700:4700::1111",
        "2001:4860:4860::8888",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
        "2002:808:808::1",
    ] {
        assert_eq!(non_public(ip(addr)), None, "{addr}");
    }
}
