//! Writes the Sigstore test material of `__test__/provenance.spec.ts` to
//! `__test__/fixtures/provenance/`: a Fulcio-like CA (P-384 root and intermediate) with a leaf
//! issued as Fulcio issues one to a GitHub Actions run, a leaf from another CA, a Rekor-like log
//! key, and the `trusted_root.json` that trusts the first CA and the log key. The tests sign the
//! DSSE envelopes and signed entry timestamps themselves with these keys.
//!
//! Run: `cargo run --no-default-features --example provenance-fixtures`

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, SanType, PKCS_ECDSA_P256_SHA256,
    PKCS_ECDSA_P384_SHA384,
};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::Duration;

const REPO: &str = "kanban-org/kanban";
const WORKFLOW: &str = ".github/workflows/publish.yml";
const GITHUB_ACTIONS_ISSUER: &str = "https://token.actions.githubusercontent.com";

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.not_before = rcgen::date_time_ymd(2020, 1, 1);
    p.not_after = rcgen::date_time_ymd(2100, 1, 1);
    p
}

/// Root, intermediate and the intermediate's key.
fn ca(name: &str) -> (Certificate, Certificate, KeyPair) {
    let root_key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap();
    let root = ca_params(&format!("{name} root"))
        .self_signed(&root_key)
        .unwrap();
    let inter_key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap();
    let inter = ca_params(&format!("{name} intermediate"))
        .signed_by(&inter_key, &root, &root_key)
        .unwrap();
    (root, inter, inter_key)
}

/// DER UTF8String, as Fulcio encodes its extension values.
fn utf8(s: &str) -> Vec<u8> {
    assert!(s.len() < 128, "short form length only");
    let mut v = vec![0x0c, s.len() as u8];
    v.extend_from_slice(s.as_bytes());
    v
}

/// A leaf as Fulcio issues one to a GitHub Actions run, valid ten minutes from 2025-01-01.
fn leaf(inter: &Certificate, inter_key: &KeyPair) -> (Certificate, KeyPair) {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name = DistinguishedName::new();
    let uri = format!("https://github.com/{REPO}/{WORKFLOW}@refs/heads/main");
    p.subject_alt_names = vec![SanType::URI(uri.clone().try_into().unwrap())];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
    p.custom_extensions = vec![
        CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 4, 1, 57264, 1, 8],
            utf8(GITHUB_ACTIONS_ISSUER),
        ),
        CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 4, 1, 57264, 1, 12],
            utf8(&format!("https://github.com/{REPO}")),
        ),
        CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 57264, 1, 18], utf8(&uri)),
    ];
    p.not_before = rcgen::date_time_ymd(2025, 1, 1);
    p.not_after = rcgen::date_time_ymd(2025, 1, 1) + Duration::from_secs(600);
    (p.signed_by(&key, inter, inter_key).unwrap(), key)
}

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("__test__/fixtures/provenance");
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: String| std::fs::write(dir.join(name), text).unwrap();

    let (root, inter, inter_key) = ca("test fulcio");
    let (leaf_cert, leaf_key) = leaf(&inter, &inter_key);
    let (_, other_inter, other_key) = ca("other fulcio");
    let (other_leaf, other_leaf_key) = leaf(&other_inter, &other_key);
    let log_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let spki = log_key.public_key_der();

    write("leaf.pem", leaf_cert.pem());
    write("leaf.key.pem", leaf_key.serialize_pem());
    write("other-ca-leaf.pem", other_leaf.pem());
    write("other-ca-leaf.key.pem", other_leaf_key.serialize_pem());
    write("rekor.key.pem", log_key.serialize_pem());
    let trusted_root = serde_json::json!({
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": [{
            "baseUrl": "https://rekor.test",
            "hashAlgorithm": "SHA2_256",
            "publicKey": {
                "rawBytes": B64.encode(&spki),
                "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                "validFor": { "start": "2020-01-01T00:00:00Z" }
            },
            "logId": { "keyId": B64.encode(Sha256::digest(&spki)) }
        }],
        "certificateAuthorities": [{
            "subject": { "organization": "test", "commonName": "test fulcio" },
            "uri": "https://fulcio.test",
            "certChain": { "certificates": [
                { "rawBytes": B64.encode(inter.der()) },
                { "rawBytes": B64.encode(root.der()) },
            ]},
            "validFor": { "start": "2020-01-01T00:00:00Z" }
        }]
    });
    write(
        "trusted_root.json",
        serde_json::to_string_pretty(&trusted_root).unwrap() + "\n",
    );
    println!("wrote {}", dir.display());
}
