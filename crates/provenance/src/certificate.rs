//! Certificates: chains to a trusted CA at a time (through `webpki`), and the extensions a
//! signing certificate must carry.

use super::oids::{
    OID_BASIC_CONSTRAINTS, OID_CODE_SIGNING, OID_EKU, OID_KEY_USAGE, OID_SAN, OID_TIME_STAMPING,
};
use super::root::TrustRoot;
use rustls_pki_types::{CertificateDer, SignatureVerificationAlgorithm, UnixTime};
use std::collections::BTreeSet;
use std::time::Duration;
use webpki::{EndEntityCert, KeyUsage};
use x509_cert::der::asn1::{ObjectIdentifier, Utf8StringRef};
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, SubjectAltName};
use x509_cert::ext::Extension;
use x509_cert::Certificate;

/// Why a certificate is refused.
#[derive(Debug, thiserror::Error)]
pub(super) enum CertError {
    #[error("{0} does not parse: {1}")]
    Parse(&'static str, x509_cert::der::Error),
    #[error("{0} is not DER")]
    NotDer(&'static str),
    #[error("the certificate repeats the extension {0}")]
    RepeatedExtension(ObjectIdentifier),
    #[error("the certificate has an unknown critical extension {0}")]
    UnknownCriticalExtension(ObjectIdentifier),
    #[error("the certificate has no extended key usage")]
    NoExtendedKeyUsage,
    #[error("the certificate is not for code signing")]
    NotCodeSigning,
    #[error("bad basic constraints")]
    BadBasicConstraints,
    #[error("the signing certificate is a CA certificate")]
    SignerIsCa,
    #[error("the signing certificate was not valid when the log recorded the entry")]
    NotValidAtLogTime,
    #[error("the signing certificate does not chain to a trusted Fulcio CA ({0})")]
    Untrusted(ChainError),
}

/// Parses a certificate of the bundle, `what` naming it in the error. It must be DER, as X.509
/// requires: the parser also reads some BER (a default value spelled out, an unsorted SET OF)
/// and the SCT check re-encodes what it read; in DER alone are the bytes the CA signed the
/// certificate every check reads.
pub(super) fn parse_der_certificate(
    der: &[u8],
    what: &'static str,
) -> Result<Certificate, CertError> {
    // `from_der` already refuses bytes after the certificate.
    let cert = Certificate::from_der(der).map_err(|e| CertError::Parse(what, e))?;
    if cert.to_der().ok().as_deref() != Some(der) {
        return Err(CertError::NotDer(what));
    }
    Ok(cert)
}

/// Returns the certificate's extensions; none when it has none.
pub(super) fn extensions(cert: &Certificate) -> &[Extension] {
    cert.tbs_certificate
        .extensions
        .as_deref()
        .unwrap_or_default()
}

/// Returns the value of the extension `oid`, if the certificate has one.
pub(super) fn ext_bytes(exts: &[Extension], oid: ObjectIdentifier) -> Option<&[u8]> {
    exts.iter()
        .find(|e| e.extn_id == oid)
        .map(|e| e.extn_value.as_bytes())
}

/// Returns the UTF8String the extension `oid` holds, as Fulcio's extensions do.
pub(super) fn ext_utf8(exts: &[Extension], oid: ObjectIdentifier) -> Option<String> {
    Utf8StringRef::from_der(ext_bytes(exts, oid)?)
        .ok()
        .map(|s| s.as_str().to_string())
}

/// Returns the extension `oid`'s value as the text it is, as Fulcio's first extensions hold it.
pub(super) fn ext_raw(exts: &[Extension], oid: ObjectIdentifier) -> Option<String> {
    std::str::from_utf8(ext_bytes(exts, oid)?)
        .ok()
        .map(str::to_string)
}

/// Returns an error naming an extension the certificate carries twice. RFC 5280 §4.2 forbids
/// it, and every check reads an extension's first value: a second could say otherwise (another
/// repository or trigger) and pass unseen.
pub(super) fn check_unique_extensions(cert: &Certificate) -> Result<(), CertError> {
    // A set, not a scan per extension: a certificate from the network may list thousands.
    let mut seen = BTreeSet::new();
    for ext in extensions(cert) {
        if !seen.insert(ext.extn_id) {
            return Err(CertError::RepeatedExtension(ext.extn_id));
        }
    }
    Ok(())
}

/// Returns an error naming the first critical extension the verifier does not understand.
pub(super) fn check_critical_extensions(exts: &[Extension]) -> Result<(), CertError> {
    for ext in exts {
        // As RFC 5280 asks: an extension we do not understand may not be critical.
        let known = [OID_KEY_USAGE, OID_EKU, OID_SAN, OID_BASIC_CONSTRAINTS];
        if ext.critical && !known.contains(&ext.extn_id) {
            return Err(CertError::UnknownCriticalExtension(ext.extn_id));
        }
    }
    Ok(())
}

/// Returns an error unless the certificate is a code-signing end-entity certificate.
pub(super) fn check_code_signing(exts: &[Extension]) -> Result<(), CertError> {
    let eku = ext_bytes(exts, OID_EKU)
        .and_then(|b| ExtendedKeyUsage::from_der(b).ok())
        .ok_or(CertError::NoExtendedKeyUsage)?;
    if !eku.0.contains(&OID_CODE_SIGNING) {
        return Err(CertError::NotCodeSigning);
    }
    if let Some(bc) = ext_bytes(exts, OID_BASIC_CONSTRAINTS) {
        let bc = BasicConstraints::from_der(bc).map_err(|_| CertError::BadBasicConstraints)?;
        if bc.ca {
            return Err(CertError::SignerIsCa);
        }
    }
    Ok(())
}

/// Returns the first URI of the certificate's subject alternative names.
pub(super) fn san_uri(exts: &[Extension]) -> Option<String> {
    let san = SubjectAltName::from_der(ext_bytes(exts, OID_SAN)?).ok()?;
    san.0.into_iter().find_map(|n| match n {
        GeneralName::UniformResourceIdentifier(u) => Some(u.to_string()),
        _ => None,
    })
}

/// The signature algorithms a Sigstore CA signs certificates with: ECDSA on P-256 or P-384, and
/// RSA PKCS #1 v1.5 (2048 bits or more) for a private instance's CA.
static CERT_SIGNATURE_ALGORITHMS: &[&dyn SignatureVerificationAlgorithm] = &[
    webpki::ring::ECDSA_P256_SHA256,
    webpki::ring::ECDSA_P256_SHA384,
    webpki::ring::ECDSA_P384_SHA256,
    webpki::ring::ECDSA_P384_SHA384,
    webpki::ring::RSA_PKCS1_2048_8192_SHA256,
    webpki::ring::RSA_PKCS1_2048_8192_SHA384,
    webpki::ring::RSA_PKCS1_2048_8192_SHA512,
];

/// The extended key usage a chain is checked for.
#[derive(Debug, Clone, Copy)]
pub(super) enum Usage {
    /// A Fulcio signing certificate (`id-kp-codeSigning`).
    CodeSigning,
    /// A timestamp authority's signing certificate (`id-kp-timeStamping`).
    TimeStamping,
}

/// The usages' OIDs as statics: `webpki` keeps a `'static` borrow of the one it checks for.
static CODE_SIGNING: ObjectIdentifier = OID_CODE_SIGNING;
static TIME_STAMPING: ObjectIdentifier = OID_TIME_STAMPING;

impl Usage {
    /// The DER content of the usage's OID, as `webpki` compares them.
    fn oid_bytes(self) -> &'static [u8] {
        match self {
            Usage::CodeSigning => CODE_SIGNING.as_bytes(),
            Usage::TimeStamping => TIME_STAMPING.as_bytes(),
        }
    }
}

/// The leaf chains to a trusted CA's chain, each certificate valid at `t`, within the CA's window.
/// Returns the DER `SubjectPublicKeyInfo` of the leaf's issuer (what its SCT names).
pub(super) fn check_chain(
    leaf_der: &[u8],
    leaf: &Certificate,
    root: &TrustRoot,
    t: i64,
) -> Result<Vec<u8>, CertError> {
    if !valid_at(leaf, t) {
        return Err(CertError::NotValidAtLogTime);
    }
    let mut last = ChainError::NoAuthority;
    for ca in root.cas.iter().filter(|ca| ca.window.covers(t)) {
        match chain_valid(leaf_der, &ca.chain, t, Usage::CodeSigning) {
            Ok(issuer) => return Ok(issuer),
            Err(e) => last = e,
        }
    }
    Err(CertError::Untrusted(last))
}

/// Why a certificate does not chain to an authority's certificates.
#[derive(Debug, thiserror::Error)]
pub(super) enum ChainError {
    #[error("no CA is trusted at that time")]
    NoAuthority,
    #[error("the authority lists no certificates")]
    Empty,
    #[error("a certificate repeats an extension")]
    RepeatedExtension,
    #[error("the authority's root certificate is not valid at that time")]
    RootNotValid,
    #[error("the time is before 1970")]
    BeforeEpoch,
    #[error("{0:?}")]
    Path(webpki::Error),
}

/// Verifies that `cert_der` chains, through the authority's intermediates (`chain` minus its
/// last certificate), to the authority's root (`chain`'s last), for `usage`, every certificate
/// valid at `t`. Returns the DER `SubjectPublicKeyInfo` of `cert_der`'s issuer.
///
/// `webpki` checks the path: each signature, each validity period, basic constraints (a CA
/// issues, an end entity does not), path length, the extended key usage where a certificate
/// names one, and critical extensions it does not know. Two things it leaves to us. A trust
/// anchor is an input to RFC 5280's path validation, not a certificate of the path, so `webpki`
/// reads no validity from it; Sigstore's trust roots rely on their root's period (a retired
/// root's certificate ends), so it is checked here. And a certificate the authority lists
/// itself (a timestamp authority's own signing certificate, alone in its chain) needs no path.
pub(super) fn chain_valid(
    cert_der: &[u8],
    chain: &[(Vec<u8>, Certificate)],
    t: i64,
    usage: Usage,
) -> Result<Vec<u8>, ChainError> {
    let ((anchor_der, anchor), intermediates) = chain.split_last().ok_or(ChainError::Empty)?;
    if chain
        .iter()
        .any(|(_, c)| check_unique_extensions(c).is_err())
    {
        return Err(ChainError::RepeatedExtension);
    }
    if !valid_at(anchor, t) {
        return Err(ChainError::RootNotValid);
    }
    if cert_der == anchor_der.as_slice() {
        return Ok(spki_der(anchor));
    }
    let time = u64::try_from(t).map_err(|_| ChainError::BeforeEpoch)?;
    let anchor_der = CertificateDer::from(anchor_der.as_slice());
    let anchors = [webpki::anchor_from_trusted_cert(&anchor_der).map_err(ChainError::Path)?];
    let intermediates: Vec<CertificateDer> = intermediates
        .iter()
        .map(|(der, _)| CertificateDer::from(der.as_slice()))
        .collect();
    let leaf_der = CertificateDer::from(cert_der);
    let leaf = EndEntityCert::try_from(&leaf_der).map_err(ChainError::Path)?;
    // Required of every certificate that names a usage (Fulcio's intermediate names code
    // signing); that the signing certificate names one at all is `check_code_signing`'s and
    // `is_timestamping`'s rule, as an intermediate may name none (the test CAs' do not).
    let eku = KeyUsage::required_if_present(usage.oid_bytes());
    let path = leaf
        .verify_for_usage(
            CERT_SIGNATURE_ALGORITHMS,
            &anchors,
            &intermediates,
            UnixTime::since_unix_epoch(Duration::from_secs(time)),
            eku,
            None,
            None,
        )
        .map_err(ChainError::Path)?;
    Ok(path.issuer_spki().as_ref().to_vec())
}

/// The certificate's `SubjectPublicKeyInfo`, DER-encoded.
fn spki_der(cert: &Certificate) -> Vec<u8> {
    cert.tbs_certificate
        .subject_public_key_info
        .to_der()
        .unwrap_or_default()
}

fn valid_at(cert: &Certificate, t: i64) -> bool {
    let v = &cert.tbs_certificate.validity;
    let secs = |x: x509_cert::time::Time| x.to_unix_duration().as_secs() as i64;
    secs(v.not_before) <= t && t <= secs(v.not_after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::INTEGRATED;
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, PKCS_ECDSA_P256_SHA256,
    };

    /// A certificate and its key, as DER and parsed.
    struct Issued {
        cert: rcgen::Certificate,
        key: KeyPair,
    }

    impl Issued {
        fn entry(&self) -> (Vec<u8>, Certificate) {
            let der = self.cert.der().to_vec();
            let parsed = Certificate::from_der(&der).unwrap();
            (der, parsed)
        }
    }

    fn params(cn: &str, is_ca: IsCa) -> CertificateParams {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name = DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.is_ca = is_ca;
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(2100, 1, 1);
        p
    }

    fn ca() -> IsCa {
        IsCa::Ca(BasicConstraints::Unconstrained)
    }

    fn key() -> KeyPair {
        KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap()
    }

    fn root() -> Issued {
        let key = key();
        let cert = params("root", ca()).self_signed(&key).unwrap();
        Issued { cert, key }
    }

    fn issue(p: CertificateParams, by: &Issued) -> Issued {
        let key = key();
        let cert = p.signed_by(&key, &by.cert, &by.key).unwrap();
        Issued { cert, key }
    }

    /// A code-signing leaf, as Fulcio issues them, valid at [`INTEGRATED`].
    fn leaf_params(eku: ExtendedKeyUsagePurpose) -> CertificateParams {
        let mut p = params("leaf", IsCa::NoCa);
        p.distinguished_name = DistinguishedName::new();
        p.extended_key_usages = vec![eku];
        p.not_before = rcgen::date_time_ymd(2025, 1, 1);
        p.not_after = rcgen::date_time_ymd(2025, 1, 2);
        p
    }

    fn check(leaf: &Issued, chain: &[&Issued]) -> Result<Vec<u8>, ChainError> {
        let chain: Vec<_> = chain.iter().map(|c| c.entry()).collect();
        chain_valid(leaf.cert.der(), &chain, INTEGRATED, Usage::CodeSigning)
    }

    #[test]
    fn a_chain_through_its_intermediate_verifies_and_names_its_issuer() {
        let root = root();
        let inter = issue(params("inter", ca()), &root);
        let leaf = issue(leaf_params(ExtendedKeyUsagePurpose::CodeSigning), &inter);
        let issuer = check(&leaf, &[&inter, &root]).unwrap();
        assert_eq!(issuer, spki_der(&inter.entry().1));
        // Issued by the root itself: the root's key is the issuer's.
        let direct = issue(leaf_params(ExtendedKeyUsagePurpose::CodeSigning), &root);
        assert_eq!(check(&direct, &[&root]).unwrap(), spki_der(&root.entry().1));
        // Another CA's leaf, and a time before the epoch, do not verify.
        let other_root = self::root();
        let stranger = issue(
            leaf_params(ExtendedKeyUsagePurpose::CodeSigning),
            &other_root,
        );
        assert!(matches!(
            check(&stranger, &[&inter, &root]),
            Err(ChainError::Path(_))
        ));
        let chain = [inter.entry(), root.entry()];
        assert!(chain_valid(leaf.cert.der(), &chain, -1, Usage::CodeSigning).is_err());
    }

    #[test]
    fn an_expired_intermediate_or_root_is_refused() {
        let root = root();
        let mut p = params("inter", ca());
        p.not_after = rcgen::date_time_ymd(2024, 12, 31);
        let inter = issue(p, &root);
        let leaf = issue(leaf_params(ExtendedKeyUsagePurpose::CodeSigning), &inter);
        assert!(matches!(
            check(&leaf, &[&inter, &root]),
            Err(ChainError::Path(webpki::Error::CertExpired { .. }))
        ));
        // webpki reads no validity from a trust anchor: the root's own is checked beside it.
        let key = key();
        let mut p = params("old root", ca());
        p.not_after = rcgen::date_time_ymd(2024, 12, 31);
        let old_root = Issued {
            cert: p.self_signed(&key).unwrap(),
            key,
        };
        let inter = issue(params("inter", ca()), &old_root);
        let leaf = issue(leaf_params(ExtendedKeyUsagePurpose::CodeSigning), &inter);
        assert!(matches!(
            check(&leaf, &[&inter, &old_root]),
            Err(ChainError::RootNotValid)
        ));
        // Why that check is ours: webpki alone accepts the path through the expired root.
        let anchor_der = CertificateDer::from(old_root.cert.der().as_ref());
        let anchors = [webpki::anchor_from_trusted_cert(&anchor_der).unwrap()];
        let leaf_der = CertificateDer::from(leaf.cert.der().as_ref());
        EndEntityCert::try_from(&leaf_der)
            .unwrap()
            .verify_for_usage(
                CERT_SIGNATURE_ALGORITHMS,
                &anchors,
                &[CertificateDer::from(inter.cert.der().as_ref())],
                UnixTime::since_unix_epoch(Duration::from_secs(INTEGRATED as u64)),
                KeyUsage::required_if_present(Usage::CodeSigning.oid_bytes()),
                None,
                None,
            )
            .unwrap();
    }

    #[test]
    fn a_leaf_or_intermediate_for_another_usage_is_refused() {
        let root = root();
        let inter = issue(params("inter", ca()), &root);
        let server = issue(leaf_params(ExtendedKeyUsagePurpose::ServerAuth), &inter);
        assert!(matches!(
            check(&server, &[&inter, &root]),
            Err(ChainError::Path(webpki::Error::RequiredEkuNotFoundContext(
                _
            )))
        ));
        let mut p = params("tls inter", ca());
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let tls_inter = issue(p, &root);
        let leaf = issue(
            leaf_params(ExtendedKeyUsagePurpose::CodeSigning),
            &tls_inter,
        );
        assert!(check(&leaf, &[&tls_inter, &root]).is_err());
        // A code-signing intermediate, as Fulcio's is, may issue code-signing leaves.
        let mut p = params("fulcio inter", ca());
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
        let fulcio_inter = issue(p, &root);
        let leaf = issue(
            leaf_params(ExtendedKeyUsagePurpose::CodeSigning),
            &fulcio_inter,
        );
        check(&leaf, &[&fulcio_inter, &root]).unwrap();
    }

    #[test]
    fn an_intermediate_that_is_no_ca_or_past_its_path_length_is_refused() {
        let root = root();
        for is_ca in [IsCa::ExplicitNoCa, IsCa::NoCa] {
            let not_ca = issue(params("not a ca", is_ca), &root);
            let leaf = issue(leaf_params(ExtendedKeyUsagePurpose::CodeSigning), &not_ca);
            assert!(matches!(
                check(&leaf, &[&not_ca, &root]),
                Err(ChainError::Path(webpki::Error::EndEntityUsedAsCa))
            ));
        }
        // An intermediate allowing no CA below it, and one below it all the same.
        let upper = issue(
            params("upper", IsCa::Ca(BasicConstraints::Constrained(0))),
            &root,
        );
        let lower = issue(params("lower", ca()), &upper);
        let leaf = issue(leaf_params(ExtendedKeyUsagePurpose::CodeSigning), &lower);
        assert!(matches!(
            check(&leaf, &[&lower, &upper, &root]),
            Err(ChainError::Path(webpki::Error::PathLenConstraintViolated))
        ));
        let unconstrained = issue(params("upper", ca()), &root);
        let lower = issue(params("lower", ca()), &unconstrained);
        let leaf = issue(leaf_params(ExtendedKeyUsagePurpose::CodeSigning), &lower);
        check(&leaf, &[&lower, &unconstrained, &root]).unwrap();
    }

    #[test]
    fn a_ca_certificate_cannot_sign_as_a_leaf() {
        let root = root();
        let inter = issue(params("inter", ca()), &root);
        let mut p = params("ca leaf", ca());
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
        let ca_leaf = issue(p, &inter);
        assert!(matches!(
            check(&ca_leaf, &[&inter, &root]),
            Err(ChainError::Path(webpki::Error::CaUsedAsEndEntity))
        ));
    }

    #[test]
    fn a_certificate_the_authority_lists_alone_needs_only_its_validity() {
        // A timestamp authority whose chain is its own signing certificate, as a trust root
        // may list one: there is no path to build, only its period to check.
        let key = key();
        let mut p = params("tsa", IsCa::ExplicitNoCa);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::TimeStamping];
        let tsa = Issued {
            cert: p.self_signed(&key).unwrap(),
            key,
        };
        let chain = [tsa.entry()];
        chain_valid(tsa.cert.der(), &chain, INTEGRATED, Usage::TimeStamping).unwrap();
        let after = rcgen::date_time_ymd(2100, 1, 2).unix_timestamp();
        assert!(matches!(
            chain_valid(tsa.cert.der(), &chain, after, Usage::TimeStamping),
            Err(ChainError::RootNotValid)
        ));
    }
}
