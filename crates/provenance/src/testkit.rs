//! Sigstore test material for the provenance tests: a Fulcio-like CA whose leaves carry Fulcio's
//! extensions and an SCT from the CA's own CT log, the `trusted_root.json` trusting it and a
//! test Rekor key, and npm attestation bundles signed with them. Shared by the unit tests, the
//! integration tests in `crates/stager/tests/` and the `provenance-fixtures` example, which writes the binding
//! tests' fixtures; self-contained for that reason.

// Each includer uses a part: the fixture script only the CA material.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, SanType, SerialNumber, PKCS_ECDSA_P256_SHA256,
    PKCS_ECDSA_P384_SHA384,
};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{
    EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::time::Duration;
use x509_cert::der::asn1::{OctetStringRef, Utf8StringRef};
use x509_cert::der::{Decode, Encode};

pub const REPO: &str = "kanban-org/kanban";
pub const WORKFLOW: &str = ".github/workflows/publish.yml";
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
    /// The RFC 3161 timestamp authority the trust root lists beside the CA.
    pub tsa: TestTsa,
}

/// A timestamp authority: a P-384 root and the P-256 certificate that signs timestamps (valid
/// in 2025 only, so a test can ask for a time its chain does not cover).
pub struct TestTsa {
    root: rcgen::Certificate,
    leaf: rcgen::Certificate,
    key: KeyPair,
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

/// The GitHub Actions run a test leaf is issued to.
#[derive(Debug, Clone, Copy)]
pub struct Run<'a> {
    pub repo: &'a str,
    pub workflow: &'a str,
    pub issuer: &'a str,
    /// The git ref the run built (Fulcio's `1.3.6.1.4.1.57264.1.14`).
    pub git_ref: &'a str,
    /// The event that started it (Fulcio's `1.3.6.1.4.1.57264.1.20`).
    pub trigger: &'a str,
}

impl<'a> Run<'a> {
    /// A push to `main` of `repo`'s `workflow`, as GitHub's OIDC issuer names it.
    pub fn push(repo: &'a str, workflow: &'a str) -> Run<'a> {
        Run {
            repo,
            workflow,
            issuer: GITHUB_ACTIONS_ISSUER,
            git_ref: "refs/heads/main",
            trigger: "push",
        }
    }
}

/// Returns a leaf's parameters as Fulcio sets them for a GitHub Actions run, before its SCT list.
fn leaf_params(run: &Run) -> CertificateParams {
    let Run {
        repo,
        workflow,
        issuer,
        git_ref,
        trigger,
    } = *run;
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name = DistinguishedName::new();
    let mut serial = [0u8; 16];
    SystemRandom::new().fill(&mut serial).unwrap();
    serial[0] &= 0x7f;
    p.serial_number = Some(SerialNumber::from_slice(&serial));
    let uri = format!("https://github.com/{repo}/{workflow}@{git_ref}");
    p.subject_alt_names = vec![SanType::URI(uri.clone().try_into().unwrap())];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
    let utf8 = |s: &str| Utf8StringRef::new(s).unwrap().to_der().unwrap();
    p.custom_extensions = vec![
        CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 57264, 1, 8], utf8(issuer)),
        CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 4, 1, 57264, 1, 12],
            utf8(&format!("https://github.com/{repo}")),
        ),
        CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 57264, 1, 14], utf8(git_ref)),
        CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 57264, 1, 18], utf8(&uri)),
        CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 57264, 1, 20], utf8(trigger)),
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
        TestCa::with_intermediate_extensions(name, Vec::new())
    }

    /// A CA whose intermediate carries one (non-critical, private) extension twice, which
    /// RFC 5280 forbids.
    pub fn repeating_an_extension(name: &str) -> TestCa {
        let ext = || CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 99999, 1], vec![5, 0]);
        TestCa::with_intermediate_extensions(name, vec![ext(), ext()])
    }

    fn with_intermediate_extensions(name: &str, extra: Vec<CustomExtension>) -> TestCa {
        let root_key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap();
        let root = ca_params(&format!("{name} root"))
            .self_signed(&root_key)
            .unwrap();
        let inter_key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap();
        let mut p = ca_params(&format!("{name} intermediate"));
        p.custom_extensions = extra;
        let inter = p.signed_by(&inter_key, &root, &root_key).unwrap();
        TestCa {
            root,
            inter,
            inter_key,
            ct_key: p256(),
            tsa: TestTsa::new(name),
        }
    }

    /// A leaf as Fulcio issues one to a GitHub Actions run of `repo`'s `workflow` (valid ten
    /// minutes from 2025-01-01), with an SCT from this CA's CT log.
    pub fn leaf(&self, repo: &str, workflow: &str, issuer: &str) -> (Vec<u8>, KeyPair) {
        self.leaf_for(&Run {
            issuer,
            ..Run::push(repo, workflow)
        })
    }

    /// A leaf as Fulcio issues one to `run` (valid ten minutes from 2025-01-01), with an SCT
    /// from this CA's CT log.
    pub fn leaf_for(&self, run: &Run) -> (Vec<u8>, KeyPair) {
        self.leaf_with(run, &[])
    }

    /// A leaf as [`TestCa::leaf_for`] issues one, with `extra` Fulcio-style extensions (the
    /// last arc of `1.3.6.1.4.1.57264.1` and a UTF8String) after the run's own: a test repeats
    /// one of the run's extensions with another value this way.
    pub fn leaf_with(&self, run: &Run, extra: &[(u64, &str)]) -> (Vec<u8>, KeyPair) {
        let key = p256();
        let mut p = leaf_params(run);
        for &(arc, value) in extra {
            p.custom_extensions.push(CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 4, 1, 57264, 1, arc],
                Utf8StringRef::new(value).unwrap().to_der().unwrap(),
            ));
        }
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

    /// A leaf as [`TestCa::leaf_for`] issues one to `run`, but not in DER: its first extension
    /// spells out `critical FALSE`, the default DER leaves out (BER allows it). It is signed over
    /// those bytes by the intermediate, and its SCT holds (the precertificate is the same in DER).
    pub fn ber_leaf(&self, run: &Run) -> (Vec<u8>, KeyPair) {
        let (der, key) = self.leaf_for(run);
        let cert = x509_cert::Certificate::from_der(&der).unwrap();
        let t = &cert.tbs_certificate;
        let exts: Vec<u8> = t
            .extensions
            .iter()
            .flatten()
            .enumerate()
            .flat_map(|(i, e)| {
                let critical = if i == 0 {
                    vec![0x01, 0x01, 0x00]
                } else {
                    Vec::new()
                };
                let body = [
                    e.extn_id.to_der().unwrap(),
                    critical,
                    e.extn_value.to_der().unwrap(),
                ];
                tlv(0x30, &body.concat())
            })
            .collect();
        let tbs = tlv(
            0x30,
            &[
                tlv(0xa0, &t.version.to_der().unwrap()),
                t.serial_number.to_der().unwrap(),
                t.signature.to_der().unwrap(),
                t.issuer.to_der().unwrap(),
                t.validity.to_der().unwrap(),
                t.subject.to_der().unwrap(),
                t.subject_public_key_info.to_der().unwrap(),
                tlv(0xa3, &tlv(0x30, &exts)),
            ]
            .concat(),
        );
        let rng = SystemRandom::new();
        let sig = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P384_SHA384_ASN1_SIGNING,
            &self.inter_key.serialize_der(),
            &rng,
        )
        .unwrap()
        .sign(&rng, &tbs)
        .unwrap();
        let mut bits = vec![0u8];
        bits.extend_from_slice(sig.as_ref());
        let whole = [
            tbs,
            cert.signature_algorithm.to_der().unwrap(),
            tlv(0x03, &bits),
        ];
        (tlv(0x30, &whole.concat()), key)
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

impl TestTsa {
    pub fn new(name: &str) -> TestTsa {
        let root_key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap();
        let root = ca_params(&format!("{name} tsa root"))
            .self_signed(&root_key)
            .unwrap();
        let key = p256();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name = DistinguishedName::new();
        p.distinguished_name
            .push(DnType::CommonName, format!("{name} tsa"));
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::TimeStamping];
        p.not_before = rcgen::date_time_ymd(2025, 1, 1);
        p.not_after = rcgen::date_time_ymd(2026, 1, 1);
        let leaf = p.signed_by(&key, &root, &root_key).unwrap();
        TestTsa { root, leaf, key }
    }

    fn json(&self) -> Value {
        json!({
            "subject": { "organization": "test", "commonName": "test tsa" },
            "uri": "https://tsa.test",
            "certChain": { "certificates": [
                { "rawBytes": B64.encode(self.leaf.der()) },
                { "rawBytes": B64.encode(self.root.der()) },
            ]},
            "validFor": { "start": "2020-01-01T00:00:00Z" }
        })
    }

    /// An RFC 3161 `TimeStampResp` stating `time` (Unix seconds) for `signature`, signed by
    /// this authority, embedding its certificate when `embed`.
    pub fn timestamp(&self, signature: &[u8], time: i64, embed: bool) -> Vec<u8> {
        let sha256 = tlv(0x30, &tlv(0x06, &OID_SHA256));
        let tst = tst_info(&sha256, signature, time);
        let signer = self.signer_info(&sha256, &tst);
        let certs = if embed {
            tlv(0xa0, self.leaf.der())
        } else {
            Vec::new()
        };
        let signed_data = tlv(
            0x30,
            &[
                tlv(0x02, &[3]),
                tlv(0x31, &sha256),
                tlv(
                    0x30,
                    &[tlv(0x06, &OID_TST_INFO), tlv(0xa0, &tlv(0x04, &tst))].concat(),
                ),
                certs,
                tlv(0x31, &signer),
            ]
            .concat(),
        );
        let token = tlv(
            0x30,
            &[tlv(0x06, &OID_SIGNED_DATA), tlv(0xa0, &signed_data)].concat(),
        );
        tlv(0x30, &[tlv(0x30, &tlv(0x02, &[0])), token].concat())
    }

    /// The `SignerInfo` of a token over `tst`: signed attributes naming it and its digest, and
    /// this authority's signature over them.
    fn signer_info(&self, sha256: &[u8], tst: &[u8]) -> Vec<u8> {
        let attr =
            |oid: &[u8], value: Vec<u8>| tlv(0x30, &[tlv(0x06, oid), tlv(0x31, &value)].concat());
        let attrs = [
            attr(&OID_CONTENT_TYPE, tlv(0x06, &OID_TST_INFO)),
            attr(&OID_MESSAGE_DIGEST, tlv(0x04, &Sha256::digest(tst))),
        ]
        .concat();
        let sig = sign(&self.key, &tlv(0x31, &attrs));
        let leaf = x509_cert::Certificate::from_der(self.leaf.der()).unwrap();
        let sid = tlv(
            0x30,
            &[
                leaf.tbs_certificate.issuer.to_der().unwrap(),
                leaf.tbs_certificate.serial_number.to_der().unwrap(),
            ]
            .concat(),
        );
        tlv(
            0x30,
            &[
                tlv(0x02, &[1]),
                sid,
                sha256.to_vec(),
                tlv(0xa0, &attrs),
                tlv(0x30, &tlv(0x06, &OID_ECDSA_SHA256)),
                tlv(0x04, &sig),
            ]
            .concat(),
        )
    }
}

/// A `TSTInfo` stating `time` (Unix seconds) for `signature`, its imprint a SHA-256 (`sha256`
/// being that algorithm's identifier).
fn tst_info(sha256: &[u8], signature: &[u8], time: i64) -> Vec<u8> {
    let imprint = tlv(
        0x30,
        &[sha256.to_vec(), tlv(0x04, &Sha256::digest(signature))].concat(),
    );
    tlv(
        0x30,
        &[
            tlv(0x02, &[1]),
            tlv(0x06, &[0x2a, 0x03, 0x04]),
            imprint,
            tlv(0x02, &[0x2a]),
            tlv(0x18, generalized(time).as_bytes()),
        ]
        .concat(),
    )
}

const OID_SHA256: [u8; 9] = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
const OID_ECDSA_SHA256: [u8; 8] = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const OID_SIGNED_DATA: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
const OID_TST_INFO: [u8; 11] = [
    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x04,
];
const OID_CONTENT_TYPE: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x03];
const OID_MESSAGE_DIGEST: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x04];

/// One DER element.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let len = (n as u32).to_be_bytes();
        let skip = len.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (4 - skip) as u8);
        out.extend_from_slice(&len[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// `YYYYMMDDHHMMSSZ` for Unix seconds `t`.
fn generalized(t: i64) -> String {
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`), for the dates tests write.
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
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
        "timestampAuthorities": [ca.tsa.json()],
    }))
    .unwrap()
}

// The attestation formats are written out here rather than borrowed from the verifier: this file
// stands alone, and a slip in the verifier's encoding cannot cancel out in its own tests.
const IN_TOTO_STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";
const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An in-toto statement naming `name@version` (as a package URL) with the tarball's `sha512`.
pub fn statement(name: &str, version: &str, sha512: &[u8]) -> Vec<u8> {
    let purl = format!("pkg:npm/{}@{version}", name.replace('@', "%40"));
    json!({
        "_type": IN_TOTO_STATEMENT_V1,
        "subject": [{ "name": purl, "digest": { "sha512": hex(sha512) } }],
        "predicateType": SLSA_PROVENANCE_V1,
        "predicate": { "buildDefinition": {}, "runDetails": {} }
    })
    .to_string()
    .into_bytes()
}

fn pem(der: &[u8]) -> String {
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        B64.encode(der)
    )
}

/// What a bundle is made of, so a test can change one part.
pub struct Parts<'a> {
    pub leaf: &'a [u8],
    pub leaf_key: &'a KeyPair,
    pub log_key: &'a KeyPair,
    pub statement: Vec<u8>,
    pub integrated: i64,
    /// `dsse` (0.0.1) or `intoto` (0.0.2).
    pub kind: &'a str,
    /// The certificate the log entry names; the leaf when `None`.
    pub logged_cert: Option<&'a [u8]>,
    /// A Rekor v2 entry (`hashedrekord` 0.0.2 of the envelope's PAE, no SET) instead of v1's.
    pub rekor_v2: bool,
    /// An RFC 3161 timestamp of the signature from this authority at this time.
    pub timestamp: Option<(&'a TestTsa, i64)>,
}

/// A Sigstore bundle: the statement in a DSSE envelope signed by the leaf, logged by the log.
pub fn bundle(p: &Parts) -> Value {
    // DSSE's pre-authentication encoding: what the envelope's signature covers.
    let mut pae = format!(
        "DSSEv1 {} {IN_TOTO_PAYLOAD_TYPE} {} ",
        IN_TOTO_PAYLOAD_TYPE.len(),
        p.statement.len()
    )
    .into_bytes();
    pae.extend_from_slice(&p.statement);
    let sig = sign(p.leaf_key, &pae);
    let entry = if p.rekor_v2 {
        let body = json!({
            "apiVersion": "0.0.2", "kind": "hashedrekord",
            "spec": { "hashedRekordV002": {
                "data": { "algorithm": "SHA2_256", "digest": B64.encode(Sha256::digest(&pae)) },
                "signature": { "content": B64.encode(&sig), "verifier": {
                    "x509Certificate": { "rawBytes": B64.encode(p.logged_cert.unwrap_or(p.leaf)) },
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256"
                }}
            }}
        });
        log_entry_v2(p, &body.to_string())
    } else {
        log_entry(p, &log_body(p, &sig).to_string())
    };
    let mut material = json!({
        "certificate": { "rawBytes": B64.encode(p.leaf) },
        "tlogEntries": [entry]
    });
    if let Some((tsa, time)) = p.timestamp {
        material["timestampVerificationData"] = json!({ "rfc3161Timestamps": [
            { "signedTimestamp": B64.encode(tsa.timestamp(&sig, time, true)) }
        ]});
    }
    json!({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": material,
        "dsseEnvelope": {
            "payload": B64.encode(&p.statement),
            "payloadType": IN_TOTO_PAYLOAD_TYPE,
            "signatures": [{ "sig": B64.encode(&sig), "keyid": "" }]
        }
    })
}

/// A message-signature bundle (`hashedrekord` 0.0.1 in a Rekor v1 log) for `artifact`, signed
/// by the leaf; the statement and kind of `p` are not used.
pub fn message_bundle(p: &Parts, artifact: &[u8]) -> Value {
    let sig = sign(p.leaf_key, artifact);
    let digest = Sha256::digest(artifact);
    let body = json!({
        "apiVersion": "0.0.1", "kind": "hashedrekord",
        "spec": {
            "data": { "hash": { "algorithm": "sha256", "value": hex(&digest) } },
            "signature": {
                "content": B64.encode(&sig),
                "publicKey": { "content": B64.encode(pem(p.logged_cert.unwrap_or(p.leaf))) }
            }
        }
    });
    json!({
        "mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.2",
        "verificationMaterial": {
            "x509CertificateChain": { "certificates": [{ "rawBytes": B64.encode(p.leaf) }] },
            "tlogEntries": [log_entry(p, &body.to_string())]
        },
        "messageSignature": {
            "messageDigest": { "algorithm": "SHA2_256", "digest": B64.encode(digest) },
            "signature": B64.encode(&sig)
        }
    })
}

/// The DER of this CA's intermediate and root, as a v0.1/v0.2 chain would carry them.
impl TestCa {
    pub fn chain_der(&self) -> [Vec<u8>; 2] {
        [self.inter.der().to_vec(), self.root.der().to_vec()]
    }
}

/// Returns the body a log entry of kind `p.kind` records for the envelope signed `sig`.
fn log_body(p: &Parts, sig: &[u8]) -> Value {
    let payload_hash =
        json!({ "algorithm": "sha256", "value": hex(&Sha256::digest(&p.statement)) });
    let cert_pem = B64.encode(pem(p.logged_cert.unwrap_or(p.leaf)));
    match p.kind {
        "dsse" => json!({
            "apiVersion": "0.0.1", "kind": "dsse",
            "spec": {
                "envelopeHash": { "algorithm": "sha256", "value": "00" },
                "payloadHash": payload_hash,
                "signatures": [{ "signature": B64.encode(sig), "verifier": cert_pem }]
            }
        }),
        _ => json!({
            "apiVersion": "0.0.2", "kind": "intoto",
            "spec": { "content": {
                "envelope": {
                    "payloadType": IN_TOTO_PAYLOAD_TYPE,
                    "signatures": [{ "sig": B64.encode(B64.encode(sig)), "publicKey": cert_pem }]
                },
                "hash": { "algorithm": "sha256", "value": "00" },
                "payloadHash": payload_hash
            }}
        }),
    }
}

/// Returns the log entry recording `body`, with the log's signed entry timestamp.
fn log_entry(p: &Parts, body: &str) -> Value {
    let body_b64 = B64.encode(body);
    let log_id = Sha256::digest(p.log_key.public_key_der());
    let log_index = 42;
    let set = sign(
        p.log_key,
        format!(
            "{{\"body\":\"{body_b64}\",\"integratedTime\":{},\"logID\":\"{}\",\"logIndex\":{log_index}}}",
            p.integrated,
            hex(&log_id)
        )
        .as_bytes(),
    );
    json!({
        "logIndex": log_index.to_string(),
        "logId": { "keyId": B64.encode(log_id) },
        "kindVersion": { "kind": p.kind, "version": "0.0.1" },
        "integratedTime": p.integrated.to_string(),
        "inclusionPromise": { "signedEntryTimestamp": B64.encode(&set) },
        "inclusionProof": inclusion_proof(p.log_key, body, &log_id),
        "canonicalizedBody": body_b64
    })
}

/// Returns a Rekor v2 entry recording `body`: no integrated time, no SET, only its inclusion
/// proof and checkpoint.
fn log_entry_v2(p: &Parts, body: &str) -> Value {
    let log_id = Sha256::digest(p.log_key.public_key_der());
    json!({
        "logIndex": "0",
        "logId": { "keyId": B64.encode(log_id) },
        "kindVersion": { "kind": "hashedrekord", "version": "0.0.2" },
        "inclusionProof": inclusion_proof(p.log_key, body, &log_id),
        "canonicalizedBody": B64.encode(body)
    })
}

/// Returns the inclusion proof of `body` in a log of one entry, with the log's checkpoint.
fn inclusion_proof(log_key: &KeyPair, body: &str, log_id: &[u8]) -> Value {
    // A log of one entry: the root is the leaf hash and the proof is empty.
    let mut leaf = Sha256::new();
    leaf.update([0u8]);
    leaf.update(body.as_bytes());
    let root = leaf.finalize();
    let note = format!("rekor.test - 1\n1\n{}\n", B64.encode(root));
    let mut note_sig = log_id[..4].to_vec();
    note_sig.extend(sign(log_key, note.as_bytes()));
    let checkpoint = format!("{note}\n\u{2014} rekor.test {}\n", B64.encode(note_sig));
    json!({
        "logIndex": "0",
        "rootHash": B64.encode(root),
        "treeSize": "1",
        "hashes": [],
        "checkpoint": { "envelope": checkpoint }
    })
}

/// An npm attestations response: a publish attestation, then the provenance `bundle`.
pub fn attestations(bundle: Value) -> Vec<u8> {
    json!({ "attestations": [
        { "predicateType": "https://github.com/npm/attestation/tree/main/specs/publish/v0.1",
          "bundle": {} },
        { "predicateType": SLSA_PROVENANCE_V1, "bundle": bundle },
    ]})
    .to_string()
    .into_bytes()
}
