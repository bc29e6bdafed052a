//! URLs the client refuses before dialling, each with the error that names the problem, and
//! the edge cases it accepts.

use tolqin::{Client, Error, UrlError};

/// `Client::new(url)`'s error, or a panic if it accepted the URL.
fn url_error(url: &str) -> UrlError {
    match Client::new(url) {
        Err(Error::Url(e)) => *e,
        other => panic!("{url}: expected a URL error, got {other:?}"),
    }
}

#[test]
fn bad_urls_are_refused_with_the_part_that_is_wrong() {
    use UrlError as U;
    let out_of_range = |u: &str, p: &str| U::PortOutOfRange {
        url: u.into(),
        port: p.into(),
    };
    let no_host = |u: &str| U::MissingHost { url: u.into() };
    #[rustfmt::skip]
    let cases: Vec<(&str, UrlError, &str)> = vec![
        (
            "ws://127.0.0.1:99999/",
            out_of_range("ws://127.0.0.1:99999/", "99999"),
            r#"invalid URL "ws://127.0.0.1:99999/": the port 99999 is out of range; a port to connect to is 1 to 65535"#,
        ),
        (
            "ws://127.0.0.1:0/",
            out_of_range("ws://127.0.0.1:0/", "0"),
            r#"invalid URL "ws://127.0.0.1:0/": the port 0 is out of range; a port to connect to is 1 to 65535"#,
        ),
        (
            "ws://h:123456789012345678901/",
            out_of_range("ws://h:123456789012345678901/", "123456789012345678901"),
            r#"invalid URL "ws://h:123456789012345678901/": the port 123456789012345678901 is out of range; a port to connect to is 1 to 65535"#,
        ),
        (
            "ws://127.0.0.1:abc/",
            U::PortNotANumber { url: "ws://127.0.0.1:abc/".into(), port: "abc".into() },
            r#"invalid URL "ws://127.0.0.1:abc/": the port "abc" is not a number"#,
        ),
        (
            "ws://[::1]:-1/",
            U::PortNotANumber { url: "ws://[::1]:-1/".into(), port: "-1".into() },
            r#"invalid URL "ws://[::1]:-1/": the port "-1" is not a number"#,
        ),
        (
            "ws:///x",
            no_host("ws:///x"),
            r#"invalid URL "ws:///x": no host; write ws://HOST[:PORT]/PATH"#,
        ),
        (
            "ws://:9001/",
            no_host("ws://:9001/"),
            r#"invalid URL "ws://:9001/": no host; write ws://HOST[:PORT]/PATH"#,
        ),
        (
            "wss://",
            no_host("wss://"),
            r#"invalid URL "wss://": no host; write ws://HOST[:PORT]/PATH"#,
        ),
        (
            "ftp://h/",
            U::UnsupportedScheme { url: "ftp://h/".into(), scheme: "ftp".into() },
            r#"invalid URL "ftp://h/": the scheme "ftp" is not supported; use ws:// or wss://"#,
        ),
        (
            "127.0.0.1:9001",
            U::MissingScheme { url: "127.0.0.1:9001".into() },
            r#"invalid URL "127.0.0.1:9001": no scheme; write ws://127.0.0.1:9001 (or wss://127.0.0.1:9001 for TLS)"#,
        ),
        (
            "ws://h/#frag",
            U::Fragment { url: "ws://h/#frag".into(), fragment: "#frag".into() },
            r##"invalid URL "ws://h/#frag": a WebSocket URL cannot have a fragment ("#frag"; RFC 6455 section 3); remove it, or write a # that belongs to the path or query as %23"##,
        ),
        (
            "ws://h/chat?room=1#",
            U::Fragment { url: "ws://h/chat?room=1#".into(), fragment: "#".into() },
            r##"invalid URL "ws://h/chat?room=1#": a WebSocket URL cannot have a fragment ("#"; RFC 6455 section 3); remove it, or write a # that belongs to the path or query as %23"##,
        ),
        (
            "ws://alice:s3cret@h/",
            U::UserInfo { url: "ws://alice:***@h/".into(), user: "alice".into() },
            r#"invalid URL "ws://alice:***@h/": credentials in the URL ("alice") are not sent; remove them and send them in a header: Client::header(http::header::AUTHORIZATION, ...)"#,
        ),
        (
            "ws://[::g]:9001/",
            U::InvalidHost { url: "ws://[::g]:9001/".into(), host: "[::g]".into() },
            r#"invalid URL "ws://[::g]:9001/": "[::g]" is not a valid host name or IP address"#,
        ),
        (
            "ws://[::1/",
            U::InvalidHost { url: "ws://[::1/".into(), host: "[::1".into() },
            r#"invalid URL "ws://[::1/": "[::1" is not a valid host name or IP address"#,
        ),
        (
            "ws://ex ample/",
            U::InvalidHost { url: "ws://ex ample/".into(), host: "ex ample".into() },
            r#"invalid URL "ws://ex ample/": "ex ample" is not a valid host name or IP address"#,
        ),
        (
            "ws://h/a b",
            U::Malformed { url: "ws://h/a b".into(), reason: "invalid uri character".into() },
            r#"invalid URL "ws://h/a b": invalid uri character"#,
        ),
        (
            "ws:h",
            U::Malformed { url: "ws:h".into(), reason: "expected scheme://host[:port]/path".into() },
            r#"invalid URL "ws:h": expected scheme://host[:port]/path"#,
        ),
    ];
    for (url, expected, text) in cases {
        let error = url_error(url);
        assert_eq!(error, expected, "{url}");
        assert_eq!(error.to_string(), text, "{url}");
        // Through the crate's error, the text is the same.
        assert_eq!(Error::from(error).to_string(), text, "{url}");
    }
}

#[test]
fn a_password_never_appears_in_the_error() {
    let error = Client::new("ws://alice:s3cret@h:99999/").unwrap_err();
    assert!(
        !format!("{error} {error:?}").contains("s3cret"),
        "{error:?}"
    );
}

#[test]
fn valid_urls_and_their_edge_cases() {
    // url, host, port, path and query sent.
    let cases = [
        ("ws://[::1]:9001/", "::1", 9001, "/"),
        ("ws://[2001:db8::1]/", "2001:db8::1", 80, "/"),
        ("ws://h/", "h", 80, "/"),
        ("wss://h/", "h", 443, "/"),
        ("ws://h:/", "h", 80, "/"),
        ("ws://h", "h", 80, "/"),
        ("ws://h:8080", "h", 8080, "/"),
        ("wss://h:65535/x", "h", 65535, "/x"),
        ("WSS://Example.COM:8443/chat", "Example.COM", 8443, "/chat"),
        ("ws://h/chat?room=7&x", "h", 80, "/chat?room=7&x"),
        ("ws://h?q=%23", "h", 80, "/?q=%23"),
        ("ws://127.0.0.1:9001/a%20b", "127.0.0.1", 9001, "/a%20b"),
        // The browser's aliases.
        ("http://h/", "h", 80, "/"),
        ("https://h/", "h", 443, "/"),
    ];
    for (url, host, port, target) in cases {
        let client = Client::new(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(client.host(), host, "{url}");
        assert_eq!(client.port(), port, "{url}");
        let uri = client.uri();
        let sent = match uri.query() {
            Some(q) => format!(
                "{}?{q}",
                if uri.path().is_empty() {
                    "/"
                } else {
                    uri.path()
                }
            ),
            None => uri.path().to_string(),
        };
        assert_eq!(sent, target, "{url}");
    }
}

#[tokio::test]
async fn connect_refuses_a_bad_url_before_dialling() {
    // Today's bug: these dialled port 80. Now they fail at once, with nothing dialled.
    for url in ["ws://127.0.0.1:99999/", "ws://127.0.0.1:abc/", "ws:///x"] {
        let result = tokio::time::timeout(std::time::Duration::from_secs(5), tolqin::connect(url))
            .await
            .expect("no dialling, no waiting");
        assert!(matches!(result, Err(Error::Url(_))), "{url}: {result:?}");
    }
}
