//! The entry points: an npm attestations response or a standalone Sigstore bundle, its form and
//! version, and the order the other checks run in.
//!
//! Everything is checked offline against a trust root (Sigstore's public-good one is embedded):
//! - the leaf certificate chains to a trusted Fulcio CA, every certificate of the chain (and the
//!   CA's own `validFor`) valid at the log's integrated time;
//! - the DSSE envelope's signature verifies with the leaf certificate's key over the PAE of the
//!   in-toto statement;
//! - the statement is in-toto v1 with SLSA provenance v1, and a subject is
//!   `pkg:npm/<name>@<version>` with the tarball's sha512;
//! - the certificate's Fulcio extensions: issuer (`1.3.6.1.4.1.57264.1.8`) is GitHub Actions,
//!   source repository (`…1.12`) is `repository`, and the build config URI (`…1.18`, else the
//!   SAN URI) names `workflowPath` when given; its EKU is code signing;
//! - the Rekor entry's signed entry timestamp verifies with the log's key, and the entry's body
//!   names this envelope's signature, payload hash and certificate; when the bundle carries an
//!   inclusion proof (npm's do), it leads from the entry to the root hash of a checkpoint the
//!   log's key signed.
//!
//! - when the trust root lists CT logs (the public-good one does), one of the certificate's
//!   embedded SCTs verifies with a trusted CT log's key over the precertificate.
//!
//! Nothing is checked online (no consistency proof against the log's current tree).

use super::certificate::check_chain;
use super::dsse::{
    check_statement, check_subject_sha256, in_toto_payload, pae, Subject, SLSA_PROVENANCE_V1,
};
use super::encoding::pem_der;
use super::keys::{ec_key_of_spki, Curve};
use super::material::{
    content_of, signing_certificate, Bundle, Content, Material, VerificationMaterial,
};
use super::policy::{check_identity, check_san_identity, IdentityError, Policy};
use super::refusal::{as_check, refuse, Check, Refusal};
use super::root::TrustRoot;
use super::sct::check_sct;
use super::timestamp::timestamp_times;
use super::tlog::{logged_times, Logged, Signed};
use ring::signature::UnparsedPublicKey;
use serde::Deserialize;
use serde_json::Value;
use x509_cert::Certificate;

/// npm's attestations response: each bundle stays JSON until it is read, so one malformed
/// bundle does not hide the others.
#[derive(Deserialize)]
struct Attestations {
    attestations: Vec<Attestation>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Attestation {
    predicate_type: Option<String>,
    bundle: Option<Value>,
}

/// npm's attestations response for one version is ~10 KB; 1 MiB is ample and bounds memory.
pub const MAX_ATTESTATIONS_BYTES: u64 = 1024 * 1024;

/// Verifies npm's attestations response (`{ attestations: [{ predicateType, bundle }] }`) for
/// `subject` under `policy`.
pub fn verify(
    attestations: &[u8],
    subject: &Subject,
    policy: &Policy,
    root: &TrustRoot,
) -> Result<(), Refusal> {
    let doc: Attestations = serde_json::from_slice(attestations).map_err(|e| {
        refuse(
            Check::Attestation,
            format!("not an attestations response: {e}"),
        )
    })?;
    let mut first_error = None;
    for att in &doc.attestations {
        if att.predicate_type.as_deref() != Some(SLSA_PROVENANCE_V1) {
            continue;
        }
        let Some(bundle) = &att.bundle else {
            continue;
        };
        match verify_bundle(bundle, subject, policy, root) {
            Ok(()) => return Ok(()),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error
        .unwrap_or_else(|| refuse(Check::Attestation, "no SLSA provenance v1 attestation")))
}

fn verify_bundle(
    bundle: &Value,
    subject: &Subject,
    policy: &Policy,
    root: &TrustRoot,
) -> Result<(), Refusal> {
    let payload = verify_signed(bundle, policy, root)?;
    check_statement(&payload, subject).map_err(as_check(Check::Subject))
}

/// Everything but the statement's content: certificate, identity, log entry, timestamps, DSSE
/// signature. Returns the in-toto statement the envelope carries.
fn verify_signed(bundle: &Value, policy: &Policy, root: &TrustRoot) -> Result<Vec<u8>, Refusal> {
    let bundle = Bundle::from_value(bundle)?;
    let identity = |leaf: &Certificate| check_identity(leaf, policy);
    match verify_core(&bundle, root, None, None, &identity)? {
        Content::Dsse(envelope) => in_toto_payload(envelope),
        Content::Message { .. } => Err(refuse(
            Check::Attestation,
            "the bundle signs a message, not an attestation",
        )),
    }
}

/// Who must have signed a bundle checked by [`verify_sigstore_bundle`].
#[derive(Debug, Clone, Copy)]
pub enum Signer<'a> {
    /// A Fulcio certificate whose SAN (URI or email) is `identity`, issued on a token of
    /// `issuer`.
    Identity { identity: &'a str, issuer: &'a str },
    /// A managed key: the PEM `PUBLIC KEY` the signature must verify with.
    Key(&'a str),
}

/// Verifies a Sigstore bundle (v0.1 to v0.3) for an artifact whose SHA-256 is `artifact`: a
/// message signature over it, or a DSSE envelope whose in-toto statement names it as a subject.
/// The same checks as the staging path's, with the identity given as Sigstore's clients take
/// it.
pub fn verify_sigstore_bundle(
    bundle: &[u8],
    artifact: &[u8; 32],
    signer: &Signer,
    root: &TrustRoot,
) -> Result<(), Refusal> {
    let bundle: Bundle = serde_json::from_slice(bundle).map_err(|e| {
        refuse(
            Check::Attestation,
            format!("the bundle is not a Sigstore bundle: {e}"),
        )
    })?;
    let key = match signer {
        Signer::Key(pem) => Some(
            pem_der(pem.as_bytes())
                .filter(|der| ec_key_of_spki(der).is_ok())
                .ok_or_else(|| {
                    refuse(Check::Signature, "the key is not a usable PEM public key")
                })?,
        ),
        Signer::Identity { .. } => None,
    };
    let identity = |leaf: &Certificate| match signer {
        Signer::Identity { identity, issuer } => check_san_identity(leaf, identity, issuer),
        Signer::Key(_) => Err(IdentityError::KeyExpected),
    };
    match verify_core(&bundle, root, key.as_deref(), Some(artifact), &identity)? {
        Content::Message { .. } => Ok(()),
        Content::Dsse(envelope) => {
            let payload = in_toto_payload(envelope)?;
            check_subject_sha256(&payload, artifact).map_err(as_check(Check::Subject))
        }
    }
}

/// A bundle's media type names its version: 1 to 3.
fn bundle_version(bundle: &Bundle) -> Result<u8, Refusal> {
    let media = bundle
        .media_type
        .as_deref()
        .ok_or_else(|| refuse(Check::Attestation, "the bundle has no media type"))?;
    match media {
        "application/vnd.dev.sigstore.bundle+json;version=0.1" => Ok(1),
        "application/vnd.dev.sigstore.bundle+json;version=0.2" => Ok(2),
        "application/vnd.dev.sigstore.bundle+json;version=0.3"
        | "application/vnd.dev.sigstore.bundle.v0.3+json" => Ok(3),
        _ => Err(refuse(
            Check::Attestation,
            format!("unsupported bundle media type `{media}`"),
        )),
    }
}

/// Every check but what the signed content says: the bundle's form, the signer (`identity` on
/// the certificate, or the managed `key`), a log entry that records this signature, the times
/// the log and the timestamp authorities vouch for, the certificate chain and its SCT at those
/// times, and the signature itself (over `artifact` for a message).
fn verify_core<'b>(
    bundle: &'b Bundle,
    root: &TrustRoot,
    key: Option<&[u8]>,
    artifact: Option<&[u8; 32]>,
    identity: &dyn Fn(&Certificate) -> Result<(), IdentityError>,
) -> Result<Content<'b>, Refusal> {
    let version = bundle_version(bundle)?;
    let vm = bundle
        .verification_material
        .as_ref()
        .ok_or_else(|| refuse(Check::Attestation, "bundle has no verificationMaterial"))?;
    let material = material_of(vm, key, identity)?;
    let content = content_of(bundle)?;
    check_message_digest(&content, artifact)?;
    let signed = Signed {
        version,
        material: &material,
        content: &content,
        artifact,
        root,
    };
    let logged = logged_times(vm.tlog_entries.as_ref(), &signed)?;
    let times = verified_times(vm, &logged, &content, root)?;
    if let Material::Cert(der, leaf) = &material {
        check_certificate(der, leaf, &times, root)?;
    }
    check_signature(&material, &content, artifact)?;
    Ok(content)
}

/// The signer: the managed `key` when the bundle is signed by a key, else the bundle's
/// certificate, its identity as `identity` requires.
fn material_of(
    vm: &VerificationMaterial,
    key: Option<&[u8]>,
    identity: &dyn Fn(&Certificate) -> Result<(), IdentityError>,
) -> Result<Material, Refusal> {
    match (&vm.public_key, key) {
        (Some(_), Some(key)) => Ok(Material::Key(key.to_vec())),
        (Some(_), None) => Err(refuse(
            Check::Identity,
            "the bundle is signed by a key, not a certificate",
        )),
        (None, _) => {
            let (der, leaf) = signing_certificate(vm)?;
            identity(&leaf).map_err(as_check(Check::Identity))?;
            Ok(Material::Cert(der, Box::new(leaf)))
        }
    }
}

/// A message signature needs the artifact, and the digest the bundle names, if any, must be
/// the artifact's.
fn check_message_digest(content: &Content, artifact: Option<&[u8; 32]>) -> Result<(), Refusal> {
    if matches!(content, Content::Message { .. }) && artifact.is_none() {
        return Err(refuse(
            Check::Attestation,
            "the bundle signs a message, not an attestation",
        ));
    }
    if let (
        Content::Message {
            digest: Some(d), ..
        },
        Some(a),
    ) = (content, artifact)
    {
        if d.as_slice() != a.as_slice() {
            return Err(refuse(
                Check::Subject,
                "the bundle's message digest is not the artifact's",
            ));
        }
    }
    Ok(())
}

/// The times the log entry and the timestamp authorities vouch for: at least one, each within
/// the log key's window.
fn verified_times(
    vm: &VerificationMaterial,
    logged: &Logged,
    content: &Content,
    root: &TrustRoot,
) -> Result<Vec<i64>, Refusal> {
    let mut times: Vec<i64> = logged.integrated.into_iter().collect();
    let timestamps = vm
        .timestamp_verification_data
        .as_ref()
        .and_then(|t| t.rfc3161_timestamps.as_ref());
    times.extend(timestamp_times(timestamps, content.sig(), root)?);
    if times.is_empty() {
        return Err(refuse(
            Check::TransparencyLog,
            "no verified time: neither a signed entry timestamp nor a timestamp authority's",
        ));
    }
    if !times.iter().all(|&t| logged.key.window.covers(t)) {
        return Err(refuse(
            Check::TransparencyLog,
            "the log's key was not trusted at the time of the entry",
        ));
    }
    Ok(times)
}

/// The certificate chains to a trusted CA at each of `times`, and carries an SCT of a trusted
/// CT log when the trust root lists any.
fn check_certificate(
    der: &[u8],
    leaf: &Certificate,
    times: &[i64],
    root: &TrustRoot,
) -> Result<(), Refusal> {
    let mut issuer = None;
    for &t in times {
        issuer = Some(check_chain(der, leaf, root, t).map_err(as_check(Check::Certificate))?);
    }
    if let (Some(issuer), false) = (issuer, root.ct_logs.is_empty()) {
        check_sct(leaf, &issuer, root).map_err(as_check(Check::Certificate))?;
    }
    Ok(())
}

/// The envelope's or the message's signature verifies with the signer's key.
fn check_signature(
    material: &Material,
    content: &Content,
    artifact: Option<&[u8; 32]>,
) -> Result<(), Refusal> {
    let (curve, point) = material.key().map_err(as_check(Check::Certificate))?;
    let bad = || {
        refuse(
            Check::Signature,
            "the signature does not verify with the signer's key",
        )
    };
    match content {
        Content::Dsse(envelope) => UnparsedPublicKey::new(curve.ecdsa(), &point)
            .verify(
                &pae(envelope.payload_type, &envelope.payload),
                &envelope.sig,
            )
            .map_err(|_| bad()),
        Content::Message { sig, .. } => {
            let digest = artifact.ok_or_else(|| refuse(Check::Subject, "no artifact to check"))?;
            if verify_prehashed(curve, &point, digest, sig) {
                Ok(())
            } else {
                Err(bad())
            }
        }
    }
}

/// ECDSA P-256 over a SHA-256 digest the caller computed: a message signature may be checked
/// from the artifact's digest alone, which `ring` cannot do.
fn verify_prehashed(curve: Curve, point: &[u8], digest: &[u8; 32], sig: &[u8]) -> bool {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    if curve != Curve::P256 {
        return false;
    }
    let (Ok(key), Ok(sig)) = (
        p256::ecdsa::VerifyingKey::from_sec1_bytes(point),
        p256::ecdsa::Signature::from_der(sig),
    ) else {
        return false;
    };
    key.verify_prehash(digest, &sig).is_ok()
}

#[cfg(test)]
mod tests {
    use super::super::policy::GITHUB_ACTIONS_ISSUER;
    use super::super::root::PUBLIC_GOOD;
    use super::*;
    use crate::testkit::{
        attestations, bundle, message_bundle, p256, statement, trust_root_json, Parts, Run, TestCa,
        TestTsa, INTEGRATED, REPO, WORKFLOW,
    };
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine;
    use rcgen::KeyPair;
    use serde_json::json;
    use sha2::{Digest, Sha256};
    use x509_cert::der::{Decode, Encode};

    struct Fixture {
        ca: TestCa,
        leaf: Vec<u8>,
        leaf_key: KeyPair,
        log_key: KeyPair,
        root: TrustRoot,
    }

    const SHA: [u8; 64] = [7; 64];
    const SUBJECT: Subject<'static> = Subject {
        name: "kanban",
        version: "2.0.0",
        sha512: &SHA,
    };

    fn fixture() -> Fixture {
        fixture_of(TestCa::new("test fulcio"))
    }

    /// A fixture whose trust root trusts `ca` (and its CT log) and a new log key.
    fn fixture_of(ca: TestCa) -> Fixture {
        let (leaf, leaf_key) = ca.leaf(REPO, WORKFLOW, GITHUB_ACTIONS_ISSUER);
        let log_key = p256();
        let root = TrustRoot::from_json(&trust_root_json(&ca, &log_key)).unwrap();
        Fixture {
            ca,
            leaf,
            leaf_key,
            log_key,
            root,
        }
    }

    impl Fixture {
        fn parts(&self) -> Parts<'_> {
            Parts {
                leaf: &self.leaf,
                leaf_key: &self.leaf_key,
                log_key: &self.log_key,
                statement: statement("kanban", "2.0.0", &SHA),
                integrated: INTEGRATED,
                kind: "dsse",
                logged_cert: None,
                rekor_v2: false,
                timestamp: None,
            }
        }

        fn check(&self, bundle: Value, policy: &Policy) -> Result<(), Refusal> {
            verify(&attestations(bundle), &SUBJECT, policy, &self.root)
        }

        /// Returns a bundle of the fixture's parts as `edit` changes them.
        fn bundle_with<'a>(&'a self, edit: impl FnOnce(&mut Parts<'a>)) -> Value {
            let mut parts = self.parts();
            edit(&mut parts);
            bundle(&parts)
        }

        /// Returns the check a bundle of the fixture's parts as `edit` changes them fails under
        /// a policy naming only the repository.
        fn refusal<'a>(&'a self, edit: impl FnOnce(&mut Parts<'a>)) -> Check {
            self.bundle_refusal(self.bundle_with(edit))
        }

        /// Returns the check `bundle` fails under a policy naming only the repository.
        fn bundle_refusal(&self, bundle: Value) -> Check {
            refused(self.check(bundle, &policy(REPO, None)))
        }
    }

    fn refused(r: Result<(), Refusal>) -> Check {
        r.expect_err("expected a refusal").check
    }

    fn policy(repo: &str, workflow: Option<&str>) -> Policy {
        Policy {
            repository: repo.into(),
            workflow_path: workflow.map(Into::into),
            git_ref: None,
        }
    }

    #[test]
    fn a_rekor_v2_entry_timed_by_a_trusted_tsa_verifies() {
        let f = fixture();
        let tsa = &f.ca.tsa;
        for embed_cert in [true, false] {
            let mut b = f.bundle_with(|p| {
                p.rekor_v2 = true;
                p.timestamp = Some((tsa, INTEGRATED));
            });
            if !embed_cert {
                // The authority's certificate then comes from the trust root.
                let sig = B64
                    .decode(b["dsseEnvelope"]["signatures"][0]["sig"].as_str().unwrap())
                    .unwrap();
                b["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"][0]
                    ["signedTimestamp"] = B64.encode(tsa.timestamp(&sig, INTEGRATED, false)).into();
            }
            f.check(b, &policy(REPO, Some(WORKFLOW))).unwrap();
        }
        // A Rekor v1 entry with a timestamp as well: both times must hold.
        let b = f.bundle_with(|p| p.timestamp = Some((tsa, INTEGRATED)));
        f.check(b, &policy(REPO, None)).unwrap();
    }

    #[test]
    fn timestamps_that_do_not_hold_are_refused() {
        let f = fixture();
        let other = TestTsa::new("other");
        let v2 = |ts: Option<(&TestTsa, i64)>| {
            f.bundle_with(|p| {
                p.rekor_v2 = true;
                p.timestamp = ts;
            })
        };
        // Outside the certificate's ten minutes; no time at all; an authority not trusted.
        assert_eq!(
            f.bundle_refusal(v2(Some((&f.ca.tsa, INTEGRATED + 3600)))),
            Check::Certificate
        );
        assert_eq!(f.bundle_refusal(v2(None)), Check::TransparencyLog);
        assert_eq!(
            f.bundle_refusal(v2(Some((&other, INTEGRATED)))),
            Check::Timestamp
        );
        // Outside the authority's own certificate (valid in 2025 only).
        let late = INTEGRATED + 366 * 86_400;
        let mut b = v2(Some((&f.ca.tsa, INTEGRATED)));
        b["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"][0]
            ["signedTimestamp"] = B64.encode(f.ca.tsa.timestamp(b"x", late, true)).into();
        assert_eq!(f.bundle_refusal(b.clone()), Check::Timestamp);
        // A timestamp over another signature.
        b["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"][0]
            ["signedTimestamp"] = B64
            .encode(f.ca.tsa.timestamp(b"x", INTEGRATED, true))
            .into();
        assert_eq!(f.bundle_refusal(b), Check::Timestamp);
        // A v2 entry without its inclusion proof.
        let mut b = v2(Some((&f.ca.tsa, INTEGRATED)));
        b["verificationMaterial"]["tlogEntries"][0]
            .as_object_mut()
            .unwrap()
            .remove("inclusionProof");
        assert_eq!(f.bundle_refusal(b), Check::TransparencyLog);
    }

    /// `bundle` as v0.2 writes it: its certificate as the first of an `x509CertificateChain`
    /// whose other certificates' `rawBytes` are `rest`.
    fn with_chain(mut bundle: Value, rest: &[&str]) -> Value {
        let leaf = bundle["verificationMaterial"]["certificate"]["rawBytes"].clone();
        let material = bundle["verificationMaterial"].as_object_mut().unwrap();
        material.remove("certificate");
        let rest = rest.iter().map(|c| json!({ "rawBytes": c }));
        let certificates: Vec<Value> = [json!({ "rawBytes": leaf })]
            .into_iter()
            .chain(rest)
            .collect();
        material.insert(
            "x509CertificateChain".into(),
            json!({ "certificates": certificates }),
        );
        bundle["mediaType"] = "application/vnd.dev.sigstore.bundle+json;version=0.2".into();
        bundle
    }

    #[test]
    fn a_chain_holding_the_root_is_refused() {
        let f = fixture();
        let [inter, root] = f.ca.chain_der().map(|c| B64.encode(c));
        let b = bundle(&f.parts());
        f.check(with_chain(b.clone(), &[&inter]), &policy(REPO, None))
            .unwrap();
        assert_eq!(
            f.bundle_refusal(with_chain(b.clone(), &[&inter, &root])),
            Check::Certificate
        );
        let mut b = with_chain(b, &[]);
        b["verificationMaterial"]["x509CertificateChain"] = json!({ "certificates": [] });
        assert_eq!(f.bundle_refusal(b), Check::Attestation);
    }

    /// RFC 5280 §4.2: a certificate must not repeat an extension. Read first-wins, a repeated
    /// Fulcio extension would let a second value (another repository, trigger, ref or issuer)
    /// hide behind the first, which the policy accepts.
    #[test]
    fn a_certificate_that_repeats_an_extension_is_refused() {
        let f = fixture();
        let run = Run::push(REPO, WORKFLOW);
        let (leaf, key) = f.ca.leaf_with(&run, &[]);
        f.check(
            f.bundle_with(|p| (p.leaf, p.leaf_key) = (&leaf, &key)),
            &policy(REPO, Some(WORKFLOW)),
        )
        .unwrap();
        for (arc, second) in [
            (8, "https://gitlab.com"),
            (12, "https://github.com/evil/kanban"),
            (12, "https://github.com/kanban-org/kanban"),
            (14, "refs/pull/7/merge"),
            (20, "pull_request_target"),
        ] {
            let (leaf, key) = f.ca.leaf_with(&run, &[(arc, second)]);
            let b = f.bundle_with(|p| (p.leaf, p.leaf_key) = (&leaf, &key));
            assert_eq!(
                refused(f.check(b, &policy(REPO, Some(WORKFLOW)))),
                Check::Certificate,
                "1.3.6.1.4.1.57264.1.{arc} = {second}"
            );
        }
    }

    #[test]
    fn a_chain_certificate_that_repeats_an_extension_is_refused() {
        // The trust root's own intermediate repeats an extension: nothing chains to it.
        let f = fixture_of(TestCa::repeating_an_extension("test fulcio"));
        assert_eq!(f.bundle_refusal(bundle(&f.parts())), Check::Certificate);
        // A bundle's chain (v0.2) carrying such an intermediate beside a good leaf.
        let good = fixture();
        let [inter, _] = f.ca.chain_der().map(|c| B64.encode(c));
        let b = with_chain(bundle(&good.parts()), &[&inter]);
        assert_eq!(good.bundle_refusal(b), Check::Certificate);
    }

    /// The bundle's certificates must be DER, as X.509 requires: the signature covers those
    /// bytes and every check reads them parsed, so two readings of one certificate must agree.
    #[test]
    fn a_certificate_that_is_not_der_is_a_certificate_refusal() {
        let f = fixture();
        // BER the parser reads (an extension spelling out the default `critical FALSE`),
        // issued and signed over those bytes by the trusted CA, its SCT valid.
        let (ber, key) = f.ca.ber_leaf(&Run::push(REPO, WORKFLOW));
        let parsed = Certificate::from_der(&ber).unwrap();
        assert_ne!(parsed.to_der().unwrap(), ber, "the test leaf is not DER");
        assert_eq!(
            f.refusal(|p| (p.leaf, p.leaf_key) = (&ber, &key)),
            Check::Certificate
        );
        let mut trailing = f.leaf.clone();
        trailing.push(0);
        for raw in [
            B64.encode(&ber),
            B64.encode(&trailing),
            B64.encode([0x30, 0x03, 0x02, 0x01, 0x01]),
            String::new(),
            "not base64!".into(),
        ] {
            let mut b = bundle(&f.parts());
            b["verificationMaterial"]["certificate"]["rawBytes"] = raw.clone().into();
            assert_eq!(f.bundle_refusal(b), Check::Certificate, "leaf {raw}");
            let b = with_chain(bundle(&f.parts()), &[&raw]);
            assert_eq!(f.bundle_refusal(b), Check::Certificate, "chain {raw}");
        }
    }

    #[test]
    fn validity_windows_need_a_start_and_include_their_end() {
        let f = fixture();
        let mut root: Value = serde_json::from_str(&trust_root_json(&f.ca, &f.log_key)).unwrap();
        // The log key's window ends exactly at the entry's integrated time.
        root["tlogs"][0]["publicKey"]["validFor"]["end"] = "2025-01-01T00:05:00Z".into();
        let inclusive = TrustRoot::from_json(&root.to_string()).unwrap();
        let b = attestations(bundle(&f.parts()));
        verify(&b, &SUBJECT, &policy(REPO, None), &inclusive).unwrap();
        root["tlogs"][0]["publicKey"]["validFor"]["end"] = "2025-01-01T00:04:59Z".into();
        let ended = TrustRoot::from_json(&root.to_string()).unwrap();
        assert_eq!(
            refused(verify(&b, &SUBJECT, &policy(REPO, None), &ended)),
            Check::TransparencyLog
        );
        root["tlogs"][0]["publicKey"]["validFor"]
            .as_object_mut()
            .unwrap()
            .remove("start");
        assert!(TrustRoot::from_json(&root.to_string()).is_err());
    }

    #[test]
    fn message_signatures_verify_for_their_artifact_only() {
        let f = fixture();
        let artifact = b"kanban release notes";
        let digest: [u8; 32] = Sha256::digest(artifact).into();
        let b = message_bundle(&f.parts(), artifact).to_string();
        let signer = Signer::Identity {
            identity: &format!("https://github.com/{REPO}/{WORKFLOW}@refs/heads/main"),
            issuer: GITHUB_ACTIONS_ISSUER,
        };
        verify_sigstore_bundle(b.as_bytes(), &digest, &signer, &f.root).unwrap();
        let other: [u8; 32] = Sha256::digest(b"other").into();
        assert!(verify_sigstore_bundle(b.as_bytes(), &other, &signer, &f.root).is_err());
        let stranger = Signer::Identity {
            identity:
                "https://github.com/evil/kanban/.github/workflows/publish.yml@refs/heads/main",
            issuer: GITHUB_ACTIONS_ISSUER,
        };
        assert_eq!(
            refused(verify_sigstore_bundle(
                b.as_bytes(),
                &digest,
                &stranger,
                &f.root
            )),
            Check::Identity
        );
        // A message bundle is no npm provenance attestation.
        assert_eq!(
            refused(verify(
                &attestations(serde_json::from_str(&b).unwrap()),
                &SUBJECT,
                &policy(REPO, None),
                &f.root
            )),
            Check::Attestation
        );
    }

    #[test]
    fn the_workflow_path_compares_exactly_and_the_repository_without_case() {
        let f = fixture();
        let b = bundle(&f.parts());
        f.check(
            b.clone(),
            &policy("KANBAN-ORG/Kanban", Some(".github/workflows/publish.yml")),
        )
        .unwrap();
        for workflow in [
            ".github/workflows/PUBLISH.yml",
            ".GITHUB/workflows/publish.yml",
            ".github/workflows/publish.ym",
        ] {
            assert_eq!(
                refused(f.check(b.clone(), &policy(REPO, Some(workflow)))),
                Check::Identity,
                "{workflow}"
            );
        }
    }

    /// A bundle signed by a leaf the fixture's CA issued to `run`.
    fn bundle_for_run(f: &Fixture, run: &Run) -> Value {
        let (leaf, leaf_key) = f.ca.leaf_for(run);
        f.bundle_with(|p| (p.leaf, p.leaf_key) = (&leaf, &leaf_key))
    }

    #[test]
    fn runs_triggered_by_pull_requests_are_refused() {
        let f = fixture();
        for (trigger, git_ref) in [
            ("pull_request", "refs/pull/7/merge"),
            // Runs on the base branch's ref, so only the trigger tells it apart.
            ("pull_request_target", "refs/heads/main"),
        ] {
            let run = Run {
                trigger,
                git_ref,
                ..Run::push(REPO, WORKFLOW)
            };
            let b = bundle_for_run(&f, &run);
            let mut p = policy(REPO, Some(WORKFLOW));
            p.git_ref = Some("*".into());
            assert_eq!(refused(f.check(b, &p)), Check::Identity, "{trigger}");
        }
        for trigger in ["push", "release", "workflow_dispatch"] {
            let run = Run {
                trigger,
                ..Run::push(REPO, WORKFLOW)
            };
            f.check(bundle_for_run(&f, &run), &policy(REPO, None))
                .unwrap();
        }
    }

    #[test]
    fn the_ref_must_match_the_policy_glob_or_the_default() {
        let f = fixture();
        let on = |git_ref| {
            bundle_for_run(
                &f,
                &Run {
                    git_ref,
                    ..Run::push(REPO, WORKFLOW)
                },
            )
        };
        let with_ref = |glob: &str| Policy {
            git_ref: Some(glob.into()),
            ..policy(REPO, Some(WORKFLOW))
        };
        let (tag, main, pull) = (
            on("refs/tags/v2.0.0"),
            on("refs/heads/main"),
            on("refs/pull/7/merge"),
        );
        // The default: a branch or a tag, never a pull request's merge ref.
        f.check(tag.clone(), &policy(REPO, None)).unwrap();
        f.check(main.clone(), &policy(REPO, None)).unwrap();
        assert_eq!(refused(f.check(pull, &policy(REPO, None))), Check::Identity);
        f.check(tag.clone(), &with_ref("refs/tags/v*")).unwrap();
        f.check(main.clone(), &with_ref("refs/heads/main")).unwrap();
        assert_eq!(
            refused(f.check(main, &with_ref("refs/tags/v*"))),
            Check::Identity
        );
        assert_eq!(
            refused(f.check(tag, &with_ref("refs/tags/V*"))),
            Check::Identity
        );
    }

    #[test]
    fn a_valid_attestation_verifies_with_either_log_entry_kind() {
        let f = fixture();
        for kind in ["dsse", "intoto"] {
            let b = f.bundle_with(|p| p.kind = kind);
            f.check(b.clone(), &policy(REPO, None)).unwrap();
            f.check(b.clone(), &policy(REPO, Some(WORKFLOW))).unwrap();
            f.check(
                b,
                &policy("Kanban-Org/Kanban", Some(&format!("./{WORKFLOW}"))),
            )
            .unwrap();
        }
    }

    #[test]
    fn another_repository_or_workflow_is_refused() {
        let f = fixture();
        let b = bundle(&f.parts());
        for p in [
            policy("evil/kanban", None),
            policy("kanban-org/kanban-fork", None),
            policy(REPO, Some(".github/workflows/other.yml")),
            policy(REPO, Some(".github/workflows/publish")),
        ] {
            assert_eq!(refused(f.check(b.clone(), &p)), Check::Identity, "{p:?}");
        }
    }

    #[test]
    fn a_certificate_for_another_issuer_is_refused() {
        let f = fixture();
        let (leaf, leaf_key) = f.ca.leaf(REPO, WORKFLOW, "https://gitlab.com");
        assert_eq!(
            f.refusal(|p| (p.leaf, p.leaf_key) = (&leaf, &leaf_key)),
            Check::Identity
        );
    }

    #[test]
    fn another_digest_name_or_version_is_refused() {
        let f = fixture();
        for statement in [
            statement("kanban", "2.0.0", &[8; 64]),
            statement("kanban-evil", "2.0.0", &SHA),
            statement("kanban", "2.0.1", &SHA),
        ] {
            assert_eq!(f.refusal(|p| p.statement = statement), Check::Subject);
        }
    }

    #[test]
    fn a_certificate_from_another_ca_is_refused() {
        let f = fixture();
        let other = TestCa::new("other");
        let (leaf, leaf_key) = other.leaf(REPO, WORKFLOW, GITHUB_ACTIONS_ISSUER);
        assert_eq!(
            f.refusal(|p| (p.leaf, p.leaf_key) = (&leaf, &leaf_key)),
            Check::Certificate
        );
    }

    #[test]
    fn a_certificate_without_a_trusted_sct_is_refused() {
        let mut f = fixture();
        // The trust root names another CT log than the one that timestamped the leaf.
        f.ca.ct_key = p256();
        f.root = TrustRoot::from_json(&trust_root_json(&f.ca, &f.log_key)).unwrap();
        assert_eq!(f.bundle_refusal(bundle(&f.parts())), Check::Certificate);
    }

    #[test]
    fn the_fuzz_entry_point_refuses_what_it_is_given() {
        let f = fixture();
        let real = attestations(bundle(&f.parts()));
        for data in [&b""[..], b"{}", b"\x00\x10", &real, &real[..real.len() / 2]] {
            crate::fuzzing::attestations(data);
        }
    }

    #[test]
    fn a_log_entry_outside_the_certificate_validity_is_refused() {
        let f = fixture();
        assert_eq!(
            f.refusal(|p| p.integrated = INTEGRATED + 3600),
            Check::Certificate
        );
    }

    #[test]
    fn a_set_from_another_log_key_is_refused() {
        let f = fixture();
        let other = p256();
        assert_eq!(f.refusal(|p| p.log_key = &other), Check::TransparencyLog);
        // The right log id with a signature by another key.
        let mut b = bundle(&f.parts());
        let forged = f.bundle_with(|p| p.log_key = &other);
        b["verificationMaterial"]["tlogEntries"][0]["inclusionPromise"] =
            forged["verificationMaterial"]["tlogEntries"][0]["inclusionPromise"].clone();
        assert_eq!(f.bundle_refusal(b), Check::TransparencyLog);
    }

    #[test]
    fn a_log_entry_for_another_certificate_is_refused() {
        let f = fixture();
        let (other_leaf, _) = f.ca.leaf(REPO, WORKFLOW, GITHUB_ACTIONS_ISSUER);
        assert_eq!(
            f.refusal(|p| p.logged_cert = Some(&other_leaf)),
            Check::TransparencyLog
        );
    }

    #[test]
    fn a_tampered_statement_or_signature_is_refused() {
        let f = fixture();
        let mut b = bundle(&f.parts());
        b["dsseEnvelope"]["payload"] = B64.encode(statement("kanban", "2.0.0", &[9; 64])).into();
        // The log entry's payload hash catches it before the signature does.
        assert_eq!(f.bundle_refusal(b), Check::TransparencyLog);
        let mut b = bundle(&f.parts());
        let mut sig = B64
            .decode(b["dsseEnvelope"]["signatures"][0]["sig"].as_str().unwrap())
            .unwrap();
        let last = sig.len() - 1;
        sig[last] ^= 1;
        b["dsseEnvelope"]["signatures"][0]["sig"] = B64.encode(sig).into();
        assert_eq!(f.bundle_refusal(b), Check::TransparencyLog);
        // A log entry that names the forged signature: the signature check itself refuses it.
        let leaf_key = p256();
        assert_eq!(f.refusal(|p| p.leaf_key = &leaf_key), Check::Signature);
    }

    #[test]
    fn no_slsa_attestation_is_refused() {
        let f = fixture();
        let p = policy(REPO, None);
        for doc in [
            &b"{\"attestations\":[]}"[..],
            b"{}",
            b"not json",
            br#"{"attestations":[{"predicateType":"https://github.com/npm/attestation/tree/main/specs/publish/v0.1","bundle":{}}]}"#,
        ] {
            assert_eq!(refused(verify(doc, &SUBJECT, &p, &f.root)), Check::Attestation);
        }
    }

    /// A real bundle from the public-good instance (a GitHub Actions run signing a release with
    /// a cosign predicate, not npm provenance): the certificate chain, the identity, the SET and
    /// the DSSE signature verify against the embedded trust root.
    #[test]
    fn a_public_good_bundle_verifies_against_the_embedded_trust_root() {
        let root = TrustRoot::public_good().unwrap();
        assert_eq!(
            (root.cas.len(), root.logs.len(), root.tsas.len()),
            (2, 2, 1)
        );
        let real: Value = serde_json::from_str(include_str!(
            "../../../testdata/public-good-dsse-bundle.json"
        ))
        .unwrap();
        let p = policy(
            "kubewarden/kubewarden-controller",
            Some(".github/workflows/release.yml"),
        );
        let payload = verify_signed(&real, &p, &root).unwrap();
        // Not an npm provenance statement, so the whole check refuses it.
        let subject = Subject {
            name: "kanban",
            version: "1.0.0",
            sha512: &SHA,
        };
        assert!(check_statement(&payload, &subject).is_err());
        let check = |b: &Value, p: &Policy| verify_signed(b, p, &root).map(|_| ());
        assert_eq!(
            refused(check(&real, &policy("kubewarden/other", None))),
            Check::Identity
        );
        let mut tampered = real.clone();
        tampered["verificationMaterial"]["tlogEntries"][0]["integratedTime"] = "1775719410".into();
        assert_eq!(refused(check(&tampered, &p)), Check::TransparencyLog);
        // Without the CT log that timestamped the certificate, its SCT cannot be verified.
        let mut without_ct: Value = serde_json::from_str(PUBLIC_GOOD).unwrap();
        without_ct["ctlogs"].as_array_mut().unwrap().remove(1);
        let without_ct = TrustRoot::from_json(&without_ct.to_string()).unwrap();
        assert_eq!(
            refused(verify_signed(&real, &p, &without_ct).map(|_| ())),
            Check::Certificate
        );
        let mut tampered = real.clone();
        tampered["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["hashes"][3] =
            B64.encode([0u8; 32]).into();
        assert_eq!(refused(check(&tampered, &p)), Check::TransparencyLog);
        // Our own test CA and log are not the public-good ones.
        let f = fixture();
        assert_eq!(
            refused(check(&bundle(&f.parts()), &policy(REPO, None))),
            Check::TransparencyLog
        );
    }

    #[test]
    fn a_bad_inclusion_proof_or_checkpoint_is_refused() {
        let f = fixture();
        let entry = "/verificationMaterial/tlogEntries/0/inclusionProof";
        let good = bundle(&f.parts());
        f.check(good.clone(), &policy(REPO, None)).unwrap();
        let other_key = p256();
        let foreign = f.bundle_with(|p| p.log_key = &other_key);
        let tamper: [(&str, Value); 4] = [
            ("rootHash", B64.encode([0u8; 32]).into()),
            ("treeSize", "2".into()),
            ("hashes", json!([B64.encode([0u8; 32])])),
            (
                "checkpoint",
                foreign.pointer(entry).unwrap()["checkpoint"].clone(),
            ),
        ];
        for (field, value) in tamper {
            let mut b = good.clone();
            b.pointer_mut(entry).unwrap()[field] = value;
            assert_eq!(f.bundle_refusal(b), Check::TransparencyLog, "{field}");
        }
    }
}
