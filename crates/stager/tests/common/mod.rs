//! What the integration tests share: one loopback server, which either publishes a package as a
//! registry does or plays scripted raw replies, the runtime tarballs it serves, a staging
//! configuration around it, and the Sigstore test material (`kit`) for provenance.

// Each test file uses a part of this module.
#![allow(dead_code)]

use flate2::write::GzEncoder;
use runtime_stager_core::testkit::sri_of;
use runtime_stager_core::{Config, Control, Limits, NetConfig, Rollout, Trust};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub(crate) use runtime_stager_provenance::testkit as kit;
pub(crate) mod tls;

/// What the server answers.
enum Replies {
    /// Each path's body with a 200, anything else a 404, to any number of connections.
    Routes(HashMap<String, Vec<u8>>),
    /// Each raw reply in turn to one connection each, then the server stops.
    Script(Vec<Vec<u8>>),
}

/// A server on 127.0.0.1, logging every request path.
pub(crate) struct Server {
    /// Its base URL, ending in `/`.
    pub url: String,
    log: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<Vec<bool>>,
}

/// Makes a version's attestations response from its tarball.
pub(crate) type Attest<'a> = dyn Fn(&[u8]) -> Vec<u8> + 'a;

impl Server {
    /// A registry publishing `version` as `latest`, with its tarball. `integrity` overrides the
    /// true SRI in the document (to simulate a mismatch).
    pub(crate) async fn registry(version: &str, integrity: Option<String>) -> Server {
        Self::registry_with(version, integrity, None).await
    }

    /// As [`Server::registry`]; `attest` makes the attestations response from the tarball, and
    /// the document then names it.
    pub(crate) async fn registry_with(
        version: &str,
        integrity: Option<String>,
        attest: Option<&Attest<'_>>,
    ) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let base = url.trim_end_matches('/');
        let tgz = runtime_tgz(version);
        let tar_path = format!("/kanban/-/kanban-{version}.tgz");
        let att_path = format!("/-/npm/v1/attestations/kanban@{version}");
        let mut doc = serde_json::json!({
            "dist-tags": {"latest": version},
            "versions": {version: {"dist": {
                "tarball": format!("{base}{tar_path}"),
                "integrity": integrity.unwrap_or_else(|| sri_of(&tgz)),
            }}}
        });
        let mut routes = HashMap::new();
        if let Some(attest) = attest {
            doc["versions"][version]["dist"]["attestations"] = serde_json::json!({
                "url": format!("{base}{att_path}"),
                "provenance": { "predicateType": kit::SLSA_PROVENANCE_V1 }
            });
            routes.insert(att_path, attest(&tgz));
        }
        routes.insert("/kanban".to_string(), doc.to_string().into_bytes());
        routes.insert(tar_path, tgz);
        Self::start(listener, Replies::Routes(routes))
    }

    /// Plays each raw reply in turn to one connection each, then stops.
    pub(crate) async fn script(replies: Vec<Vec<u8>>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::start(listener, Replies::Script(replies))
    }

    fn start(listener: TcpListener, replies: Replies) -> Server {
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(serve(listener, replies, log.clone()));
        Server { url, log, task }
    }

    pub(crate) fn attestation_requests(&self) -> usize {
        self.requests(|p| p.contains("/attestations/"))
    }

    pub(crate) fn tarball_requests(&self) -> usize {
        self.requests(|p| p.ends_with(".tgz"))
    }

    /// Every request it received.
    pub(crate) fn request_count(&self) -> usize {
        self.requests(|_| true)
    }

    fn requests(&self, matching: impl Fn(&str) -> bool) -> usize {
        let log = self.log.lock().unwrap();
        log.iter().filter(|p| matching(p)).count()
    }

    /// Waits for a scripted server to play its last reply; whether each reply was written whole
    /// (the client may hang up early, as on a refused `Content-Length`).
    pub(crate) async fn finished(self) -> Vec<bool> {
        self.task.await.unwrap()
    }
}

async fn serve(listener: TcpListener, replies: Replies, log: Arc<Mutex<Vec<String>>>) -> Vec<bool> {
    match replies {
        Replies::Routes(routes) => {
            let routes = Arc::new(routes);
            loop {
                let (sock, _) = listener.accept().await.unwrap();
                tokio::spawn(route(sock, routes.clone(), log.clone()));
            }
        }
        Replies::Script(replies) => {
            let mut written = Vec::new();
            for reply in replies {
                let (mut sock, _) = listener.accept().await.unwrap();
                let path = read_request(&mut sock).await.expect("a request");
                log.lock().unwrap().push(path);
                written.push(sock.write_all(&reply).await.is_ok());
                let _ = sock.shutdown().await;
            }
            written
        }
    }
}

async fn route(
    mut sock: TcpStream,
    routes: Arc<HashMap<String, Vec<u8>>>,
    log: Arc<Mutex<Vec<String>>>,
) {
    let Some(path) = read_request(&mut sock).await else {
        return;
    };
    log.lock().unwrap().push(path.clone());
    let (status, body) = match routes.get(&path) {
        Some(b) => ("200 OK", b.as_slice()),
        None => ("404 Not Found", &[][..]),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = sock.write_all(head.as_bytes()).await;
    let _ = sock.write_all(body).await;
}

/// Reads a request's head; its path, or `None` when the client hangs up first.
async fn read_request(sock: &mut (impl AsyncReadExt + Unpin)) -> Option<String> {
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&req);
    Some(text.split(' ').nth(1).unwrap_or("").to_string())
}

/// A gzipped tarball of `files` (path, contents), as a registry serves a package.
pub(crate) fn tgz(files: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    for (path, body) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, path, body.as_bytes()).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap()
}

/// The runtime's tarball at `version`: its manifest and a CLI that prints the version.
pub(crate) fn runtime_tgz(version: &str) -> Vec<u8> {
    tgz(&[
        (
            "package/package.json",
            &format!("{{\"version\":\"{version}\"}}"),
        ),
        ("package/dist/cli.js", &format!("console.log('{version}')")),
    ])
}

/// A staging configuration in a temporary directory, kept as long as this.
pub(crate) struct Env {
    _tmp: tempfile::TempDir,
    pub cfg: Config,
}

/// Stages from `registry` for an app running `current`, without retries.
pub(crate) fn env(registry: &str, current: &str) -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let native = tmp.path().join("native");
    std::fs::create_dir_all(native.join("node-pty")).unwrap();
    std::fs::write(native.join("node-pty/package.json"), "{}").unwrap();
    let cfg = Config {
        user_data: tmp.path().join("userData"),
        current_version: current.into(),
        native_deps_source: native,
        registry: registry.into(),
        package_name: "kanban".into(),
        dist_tag: "latest".into(),
        net: NetConfig {
            retries: 0,
            ..NetConfig::default()
        },
        limits: Limits::default(),
        trust: Trust::default(),
        provenance: None,
        rollout: Rollout::default(),
    };
    Env { _tmp: tmp, cfg }
}

/// A call with a 30 s budget.
pub(crate) fn ctl() -> Control {
    Control::new(Duration::from_secs(30)).0
}
