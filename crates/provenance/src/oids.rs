//! The object identifiers the checks look for: X.509's and the key, signature and hash
//! algorithms Sigstore uses, from `const-oid`'s database; Fulcio's own extensions and RFC 3161's
//! `TSTInfo` content type, which the database lacks, spelled out here.

use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::oid::db::{rfc5280, rfc5911, rfc5912, rfc6962, rfc8410};

/// Fulcio's first issuer extension, a raw string; certificates before `1.8` carry only it.
pub(super) const OID_ISSUER_V1: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.1");
pub(super) const OID_ISSUER_V2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.8");
pub(super) const OID_SOURCE_REPOSITORY_URI: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.12");
pub(super) const OID_BUILD_CONFIG_URI: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.18");
pub(super) const OID_SOURCE_REPOSITORY_REF: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.14");
pub(super) const OID_BUILD_TRIGGER: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.20");
/// Fulcio's first extensions for the same facts, raw strings rather than DER: certificates issued
/// before the `1.14` / `1.20` ones existed carry only these.
pub(super) const OID_GITHUB_WORKFLOW_TRIGGER_V1: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.2");
pub(super) const OID_GITHUB_WORKFLOW_REF_V1: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.6");
/// RFC 3161's `id-ct-TSTInfo` (1.2.840.113549.1.9.16.1.4).
pub(super) const OID_TST_INFO: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");

pub(super) const OID_SCT_LIST: ObjectIdentifier = rfc6962::CT_PRECERT_SCTS;
pub(super) const OID_SAN: ObjectIdentifier = rfc5280::ID_CE_SUBJECT_ALT_NAME;
pub(super) const OID_EKU: ObjectIdentifier = rfc5280::ID_CE_EXT_KEY_USAGE;
pub(super) const OID_KEY_USAGE: ObjectIdentifier = rfc5280::ID_CE_KEY_USAGE;
pub(super) const OID_BASIC_CONSTRAINTS: ObjectIdentifier = rfc5280::ID_CE_BASIC_CONSTRAINTS;
pub(super) const OID_CODE_SIGNING: ObjectIdentifier = rfc5280::ID_KP_CODE_SIGNING;
pub(super) const OID_TIME_STAMPING: ObjectIdentifier = rfc5280::ID_KP_TIME_STAMPING;
pub(super) const OID_EC_PUBLIC_KEY: ObjectIdentifier = rfc5912::ID_EC_PUBLIC_KEY;
pub(super) const OID_P256: ObjectIdentifier = rfc5912::SECP_256_R_1;
pub(super) const OID_P384: ObjectIdentifier = rfc5912::SECP_384_R_1;
pub(super) const OID_ED25519: ObjectIdentifier = rfc8410::ID_ED_25519;
pub(super) const OID_SHA256: ObjectIdentifier = rfc5912::ID_SHA_256;
pub(super) const OID_SHA384: ObjectIdentifier = rfc5912::ID_SHA_384;
pub(super) const OID_SHA512: ObjectIdentifier = rfc5912::ID_SHA_512;
pub(super) const OID_SIGNED_DATA: ObjectIdentifier = rfc5911::ID_SIGNED_DATA;
pub(super) const OID_CONTENT_TYPE_ATTR: ObjectIdentifier = rfc5911::ID_CONTENT_TYPE;
pub(super) const OID_MESSAGE_DIGEST_ATTR: ObjectIdentifier = rfc5911::ID_MESSAGE_DIGEST;
