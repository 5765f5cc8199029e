//! An HTTPS server on 127.0.0.1 playing scripted raw replies, with a certificate from a private
//! test CA that a client trusts through `NetConfig::ca`.

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// A scripted HTTPS server.
pub(crate) struct TlsServer {
    /// Its base URL, `https://127.0.0.1:<port>/`.
    pub url: String,
    /// The PEM of the CA that issued its certificate.
    pub ca_pem: String,
    task: JoinHandle<Vec<String>>,
}

impl TlsServer {
    /// Plays each raw reply in turn to one connection each, then stops.
    pub(crate) async fn script(replies: Vec<Vec<u8>>) -> TlsServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}/", listener.local_addr().unwrap());
        let (ca_pem, config) = certificates();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let task = tokio::spawn(async move {
            let mut paths = Vec::new();
            for reply in replies {
                let (sock, _) = listener.accept().await.unwrap();
                let Ok(mut tls) = acceptor.accept(sock).await else {
                    continue;
                };
                let Some(path) = super::read_request(&mut tls).await else {
                    continue;
                };
                paths.push(path);
                let _ = tls.write_all(&reply).await;
                let _ = tls.shutdown().await;
            }
            paths
        });
        TlsServer { url, ca_pem, task }
    }

    /// Waits for the last reply; the path of each request served.
    pub(crate) async fn finished(self) -> Vec<String> {
        self.task.await.unwrap()
    }
}

/// A fresh CA's PEM, and a server configuration with a certificate it issued for 127.0.0.1.
fn certificates() -> (String, ServerConfig) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let chain = vec![CertificateDer::from(leaf.der().to_vec())];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    (ca.pem(), config)
}
