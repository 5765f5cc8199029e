//! The HTTP client against scripted raw replies: retries, conditional requests, the document cap,
//! redirects.

mod common;

use common::tls::TlsServer;
use common::Server;
use runtime_stager_core::testkit::{Fetched, Field, Http};
use runtime_stager_core::{Control, Limit, NetConfig, StageError};
use std::time::Duration;

#[tokio::test]
async fn retries_5xx_then_succeeds_and_stops_on_404() {
    let replies = [
        "HTTP/1.1 503 Busy\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
        "HTTP/1.1 404 Nope\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    ];
    let server = Server::script(replies.iter().map(|r| r.as_bytes().to_vec()).collect()).await;
    let reg = server.url.clone();
    let net = NetConfig {
        retries: 2,
        ..NetConfig::default()
    };
    let http = Http::new(&net, &reg).unwrap();
    let (ctl, _h) = Control::new(Duration::from_secs(20));
    let body = http
        .get_bytes(&format!("{reg}kanban"), "*/*", 1 << 20, &ctl)
        .await
        .unwrap();
    assert_eq!(body, b"ok");
    let e = http
        .get_bytes(&format!("{reg}kanban"), "*/*", 1 << 20, &ctl)
        .await
        .unwrap_err();
    assert!(matches!(e, StageError::Http { status: 404, .. }), "{e}");
    assert_eq!(server.finished().await, [true; 3]);
}

/// A client without retries and a call with a 20 s budget, for one test server.
fn client(reg: &str) -> (Http, Control) {
    let net = NetConfig {
        retries: 0,
        ..NetConfig::default()
    };
    (
        Http::new(&net, reg).unwrap(),
        Control::new(Duration::from_secs(20)).0,
    )
}

#[tokio::test]
async fn conditional_document_fetch_sends_validators_and_reads_304() {
    let mut first =
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\netag: \"d1\"\r\nlast-modified: Tue, 01 Dec 2026 00:00:00 GMT\r\nconnection: close\r\n\r\n"
            .to_vec();
    first.extend_from_slice(b"{}");
    let not_modified =
        b"HTTP/1.1 304 Not Modified\r\netag: \"d1\"\r\nconnection: close\r\n\r\n".to_vec();
    let server = Server::script(vec![first, not_modified.clone(), not_modified]).await;
    let (http, ctl) = client(&server.url);
    let url = format!("{}kanban", server.url);
    let Fetched::Body { body, validators } = http
        .get_document(&url, "*/*", 100, None, &ctl)
        .await
        .unwrap()
    else {
        panic!("expected a body")
    };
    assert_eq!(body, b"{}");
    assert_eq!(validators.etag.as_deref(), Some("\"d1\""));
    assert!(validators.last_modified.is_some());
    let again = http
        .get_document(&url, "*/*", 100, Some(&validators), &ctl)
        .await
        .unwrap();
    assert!(matches!(again, Fetched::NotModified));
    // A 304 to a request that asked nothing is the server's error.
    let e = http.get_bytes(&url, "*/*", 100, &ctl).await.unwrap_err();
    assert!(matches!(e, StageError::Http { status: 304, .. }), "{e}");
    server.finished().await;
}

#[tokio::test]
async fn document_over_the_cap_is_refused_with_and_without_content_length() {
    let cap = 1000u64;
    let big = vec![b' '; 5000];
    let mut with_len = format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        big.len()
    )
    .into_bytes();
    with_len.extend_from_slice(&big);
    // Chunked: no length up front, the cap is found while streaming.
    let mut chunked =
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n".to_vec();
    for _ in 0..10 {
        chunked.extend_from_slice(format!("{:x}\r\n", 500).as_bytes());
        chunked.extend_from_slice(&big[..500]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let mut exact =
        b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\nconnection: close\r\n\r\n".to_vec();
    exact.extend_from_slice(&big[..1000]);
    let server = Server::script(vec![with_len, chunked, exact]).await;
    let (http, ctl) = client(&server.url);
    let url = format!("{}kanban", server.url);
    for _ in 0..2 {
        let e = http.get_bytes(&url, "*/*", cap, &ctl).await.unwrap_err();
        assert!(
            matches!(
                &e,
                StageError::TooLarge {
                    limit: Limit::Document,
                    ..
                }
            ),
            "{e}"
        );
        assert!(!e.is_retryable());
    }
    // A document exactly at the cap is read.
    assert_eq!(
        http.get_bytes(&url, "*/*", cap, &ctl).await.unwrap().len(),
        1000
    );
    server.finished().await;
}

/// A redirect to `location`.
fn redirect(location: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 302 Found\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    )
    .into_bytes()
}

fn ok(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A client that trusts `ca_pem` and retries twice, and a call with a 20 s budget.
fn trusting(reg: &str, ca_pem: &str) -> (Http, Control) {
    let net = NetConfig {
        retries: 2,
        ca: vec![ca_pem.to_string()],
        ..NetConfig::default()
    };
    (
        Http::new(&net, reg).unwrap(),
        Control::new(Duration::from_secs(20)).0,
    )
}

#[tokio::test]
async fn a_redirect_from_https_to_http_is_refused_for_documents_and_tarballs() {
    // The cleartext copies the redirects point at: never asked for.
    let plain = Server::registry("1.0.0", None).await;
    let doc_http = format!("{}kanban", plain.url);
    let tgz_http = format!("{}kanban/-/kanban-1.0.0.tgz", plain.url);
    let secure = TlsServer::script(vec![redirect(&doc_http), redirect(&tgz_http)]).await;
    let (http, ctl) = trusting(&secure.url, &secure.ca_pem);
    let doc = format!("{}kanban", secure.url);
    let tgz = format!("{}kanban/-/kanban-1.0.0.tgz", secure.url);

    let e = http
        .get_bytes(&doc, "*/*", 1 << 20, &ctl)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "EINSECURE_REDIRECT", "{e}");
    assert!(!e.is_retryable());
    assert_eq!(
        e.fields(),
        [
            ("url", Field::Str(doc.clone())),
            ("location", Field::Str(doc_http.clone())),
        ]
    );
    assert!(e.to_string().contains(&doc_http), "{e}");

    let e = http.open(&tgz, "*/*", &ctl).await.unwrap_err();
    assert_eq!(e.code(), "EINSECURE_REDIRECT", "{e}");
    // One request each: the refusal is not retried, and the http server saw nothing.
    assert_eq!(
        secure.finished().await,
        ["/kanban", "/kanban/-/kanban-1.0.0.tgz"]
    );
    assert_eq!(plain.request_count(), 0);
}

#[tokio::test]
async fn redirects_that_keep_or_raise_the_scheme_are_followed_up_to_ten() {
    // http -> https -> https (relative) -> 200.
    let secure = TlsServer::script(vec![redirect("/b"), ok("ok")]).await;
    let plain = Server::script(vec![redirect(&format!("{}a", secure.url))]).await;
    let (http, ctl) = trusting(&plain.url, &secure.ca_pem);
    let body = http
        .get_bytes(&format!("{}kanban", plain.url), "*/*", 100, &ctl)
        .await
        .unwrap();
    assert_eq!(body, b"ok");
    assert_eq!(secure.finished().await, ["/a", "/b"]);
    plain.finished().await;

    // Ten redirects are followed; the eleventh is refused as before, with ENETWORK.
    let mut replies = vec![redirect("/again"); 10];
    replies.push(ok("ok"));
    let server = Server::script(replies).await;
    let (http, ctl) = client(&server.url);
    let url = format!("{}kanban", server.url);
    assert_eq!(http.get_bytes(&url, "*/*", 100, &ctl).await.unwrap(), b"ok");
    server.finished().await;
    let server = Server::script(vec![redirect("/again"); 11]).await;
    let (http, ctl) = client(&server.url);
    let url = format!("{}kanban", server.url);
    let e = http.get_bytes(&url, "*/*", 100, &ctl).await.unwrap_err();
    assert_eq!(e.code(), "ENETWORK", "{e}");
    assert!(e.to_string().contains("too many redirects"), "{e}");
    server.finished().await;
}

#[tokio::test]
async fn an_http_registry_hands_a_redirect_to_https_to_the_client_with_roots() {
    // No proxy and no extra CA: the client for plain http loads no roots, stops at the redirect,
    // and the request starts over on the client with the OS roots, which do not know the test
    // CA. Without the hand-over the 302 itself would come back, as EHTTP.
    let secure = TlsServer::script(vec![ok("never")]).await;
    let target = format!("{}a", secure.url);
    let plain = Server::script(vec![redirect(&target), redirect(&target)]).await;
    let (http, ctl) = client(&plain.url);
    let url = format!("{}kanban", plain.url);
    let e = http.get_bytes(&url, "*/*", 100, &ctl).await.unwrap_err();
    assert_eq!(e.code(), "ENETWORK", "{e}");
    assert!(e.to_string().contains("certificate"), "{e}");
    assert_eq!(plain.finished().await, [true, true]);
    assert!(secure.finished().await.is_empty());
}
