//! Sigstore test material for the provenance tests: a Fulcio-like CA whose leaves carry Fulcio's
//! extensions and an SCT from the CA's own CT log, and the `trusted_root.json` trusting it and a
//! test Rekor key. Shared by the unit tests and `scripts/provenance-fixtures`, which writes the
//! binding tests' fixtures; self-contained for that reason.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, SanType, SerialNumber, PKCS_ECDSA_P256_SHA256,
    PKCS_ECDSA_P384_SHA384,
};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::time::Duration;
use x509_cert::der::asn1::{OctetStringRef, Utf8StringRef};
use x509_cert::der::{Decode, Encode};

pub const REPO: &str = "kanban-org/kanban";
pub const WORKFLOW: &str = ".github/workflows/publish.yml";
// The unit tests take it from the verifier; the fixture script from here.
#[allow(dead_code)]
pub const GITHUB_ACTIONS_ISSUER: &str = "https://token.actions.githubusercontent.com";
/// 2025-01-01T00:05:00Z: inside the test leaves' ten minutes of validity.
pub const INTEGRATED: i64 = 1_735_689_900;

/// A Fulcio-like CA: a P-384 root and intermediate, as the public-good instance has, and the CT
/// log that timestamps its leaves.
pub struct TestCa {
    root: rcgen::Certificate,
    inter: rcgen::Certificate,
    inter_key: KeyPair,
    pub ct_key: KeyPair,
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.not_before = rcgen::date_time_ymd(2020, 1, 1);
    p.not_after = rcgen::date_time_ymd(2100, 1, 1);
    p
}

/// Returns a leaf's parameters as Fulcio sets them for a GitHub Actions run of `repo`'s
/// `workflow`, before its SCT list.
fn leaf_params(repo: &str, workflow: &str, issuer: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name = DistinguishedName::new();
    let mut serial = [0u8; 16];
    SystemRandom::new().fill(&mut serial).unwrap();
    serial[0] &= 0x7f;
    p.serial_number = Some(SerialNumber::from_slice(&serial));
    let uri = format!("https://github.com/{repo}/{workflow}@refs/heads/main");
    p.subject_alt_names = vec![SanType::URI(uri.clone().try_into().unwrap())];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
    let utf8 = |s: &str| Utf8StringRef::new(s).unwrap().to_der().unwrap();
    p.custom_extensions = vec![
        CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 57264, 1, 8], utf8(issuer)),
        CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 4, 1, 57264, 1, 12],
            utf8(&format!("https://github.com/{repo}")),
        ),
        CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 57264, 1, 18], utf8(&uri)),
    ];
    p.not_before = rcgen::date_time_ymd(2025, 1, 1);
    p.not_after = rcgen::date_time_ymd(2025, 1, 1) + Duration::from_secs(600);
    p
}

/// ECDSA P-256 with SHA-256, DER-encoded, as Sigstore's keys sign.
pub fn sign(key: &KeyPair, msg: &[u8]) -> Vec<u8> {
    let rng = SystemRandom::new();
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &key.serialize_der(), &rng)
        .unwrap()
        .sign(&rng, msg)
        .unwrap()
        .as_ref()
        .to_vec()
}

pub fn p256() -> KeyPair {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap()
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let root_key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap();
        let root = ca_params(&format!("{name} root"))
            .self_signed(&root_key)
            .unwrap();
        let inter_key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap();
        let inter = ca_params(&format!("{name} intermediate"))
            .signed_by(&inter_key, &root, &root_key)
            .unwrap();
        TestCa {
            root,
            inter,
            inter_key,
            ct_key: p256(),
        }
    }

    /// A leaf as Fulcio issues one to a GitHub Actions run of `repo`'s `workflow` (valid ten
    /// minutes from 2025-01-01), with an SCT from this CA's CT log.
    pub fn leaf(&self, repo: &str, workflow: &str, issuer: &str) -> (Vec<u8>, KeyPair) {
        let key = p256();
        let mut p = leaf_params(repo, workflow, issuer);
        // The precertificate: the same TBS without the SCT list, which the CT log signs.
        let pre = p
            .clone()
            .signed_by(&key, &self.inter, &self.inter_key)
            .unwrap();
        p.custom_extensions.push(CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 4, 1, 11129, 2, 4, 2],
            OctetStringRef::new(&self.sct_list(pre.der()))
                .unwrap()
                .to_der()
                .unwrap(),
        ));
        let cert = p.signed_by(&key, &self.inter, &self.inter_key).unwrap();
        (cert.der().to_vec(), key)
    }

    /// Returns the TLS-encoded SCT list holding this CA's CT log's SCT for the precertificate.
    fn sct_list(&self, precertificate: &[u8]) -> Vec<u8> {
        let tbs = x509_cert::Certificate::from_der(precertificate)
            .unwrap()
            .tbs_certificate
            .to_der()
            .unwrap();
        let inter = x509_cert::Certificate::from_der(self.inter.der()).unwrap();
        let issuer_key_hash = Sha256::digest(
            inter
                .tbs_certificate
                .subject_public_key_info
                .to_der()
                .unwrap(),
        );
        let timestamp: u64 = (INTEGRATED as u64 - 60) * 1000;
        let mut signed = vec![0u8, 0u8];
        signed.extend_from_slice(&timestamp.to_be_bytes());
        signed.extend_from_slice(&[0, 1]);
        signed.extend_from_slice(&issuer_key_hash);
        signed.extend_from_slice(&(tbs.len() as u32).to_be_bytes()[1..]);
        signed.extend_from_slice(&tbs);
        signed.extend_from_slice(&[0, 0]);
        let sig = sign(&self.ct_key, &signed);
        let mut sct = vec![0u8];
        sct.extend_from_slice(&Sha256::digest(self.ct_key.public_key_der()));
        sct.extend_from_slice(&timestamp.to_be_bytes());
        sct.extend_from_slice(&[0, 0, 4, 3]);
        sct.extend_from_slice(&(sig.len() as u16).to_be_bytes());
        sct.extend_from_slice(&sig);
        let mut list = ((sct.len() + 2) as u16).to_be_bytes().to_vec();
        list.extend_from_slice(&(sct.len() as u16).to_be_bytes());
        list.extend_from_slice(&sct);
        list
    }

    fn chain_json(&self) -> Value {
        json!({
            "subject": { "organization": "test", "commonName": "test fulcio" },
            "uri": "https://fulcio.test",
            "certChain": { "certificates": [
                { "rawBytes": B64.encode(self.inter.der()) },
                { "rawBytes": B64.encode(self.root.der()) },
            ]},
            "validFor": { "start": "2020-01-01T00:00:00.000Z" }
        })
    }
}

fn log_json(url: &str, key: &KeyPair) -> Value {
    let spki = key.public_key_der();
    json!({
        "baseUrl": url,
        "hashAlgorithm": "SHA2_256",
        "publicKey": {
            "rawBytes": B64.encode(&spki),
            "keyDetails": "PKIX_ECDSA_P256_SHA_256",
            "validFor": { "start": "2020-01-01T00:00:00Z" }
        },
        "logId": { "keyId": B64.encode(Sha256::digest(&spki)) }
    })
}

/// A `trusted_root.json` trusting `ca` (and its CT log) and the Rekor key `log_key`.
pub fn trust_root_json(ca: &TestCa, log_key: &KeyPair) -> String {
    serde_json::to_string_pretty(&json!({
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": [log_json("https://rekor.test", log_key)],
        "certificateAuthorities": [ca.chain_json()],
        "ctlogs": [log_json("https://ctfe.test", &ca.ct_key)],
    }))
    .unwrap()
}
