//! `verifyBundle`: one Sigstore bundle checked by hand, with the verifier the staging path uses.

use super::types::{invalid, ArgError};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use runtime_stager_core::StageError;
use runtime_stager_provenance::{
    verify_sigstore_bundle, Signer, TrustRoot, MAX_ATTESTATIONS_BYTES, MAX_TRUST_ROOT_BYTES,
};

/// What `verifyBundle` checks a bundle against.
#[napi(object)]
pub(crate) struct VerifyBundleOptions {
    /// The bundle's JSON text (`*.sigstore.json`); at most 1 MiB.
    pub bundle: String,
    /// The artifact's SHA-256, 64 hex digits: what a message signature signs, or a subject of
    /// the DSSE envelope's in-toto statement.
    pub artifact_sha256: String,
    /// The certificate's expected SAN (URI or email), exactly; with `certificateOidcIssuer`.
    pub certificate_identity: Option<String>,
    /// The certificate's expected OIDC issuer, exactly.
    pub certificate_oidc_issuer: Option<String>,
    /// A managed key's PEM `PUBLIC KEY`, instead of an identity.
    pub key: Option<String>,
    /// A `trusted_root.json`'s text. Default: Sigstore's public-good trust root, embedded.
    pub trusted_root: Option<String>,
}

/// Verifies a Sigstore bundle offline, as the staging path verifies provenance. Returns nothing
/// when it verifies; throws `EPROVENANCE` (with `check`) when it does not, `EINVALID_OPTION` for
/// a bad option or trust root.
#[napi]
pub(crate) fn verify_bundle(env: &Env, opts: VerifyBundleOptions) -> Result<()> {
    check(&opts).map_err(|e| e.into_js(env))
}

fn check(o: &VerifyBundleOptions) -> std::result::Result<(), ArgError> {
    if o.bundle.len() as u64 > MAX_ATTESTATIONS_BYTES {
        return Err(invalid("bundle", "is larger than 1 MiB"));
    }
    let digest = base16ct::mixed::decode_vec(&o.artifact_sha256)
        .ok()
        .and_then(|d| <[u8; 32]>::try_from(d).ok())
        .ok_or_else(|| invalid("artifactSha256", "must be 64 hex digits"))?;
    let signer = match (&o.key, &o.certificate_identity, &o.certificate_oidc_issuer) {
        (Some(key), None, None) => Signer::Key(key),
        (None, Some(identity), Some(issuer)) => Signer::Identity { identity, issuer },
        _ => {
            return Err(invalid(
                "key",
                "give either `key` or both `certificateIdentity` and `certificateOidcIssuer`",
            ))
        }
    };
    let root = match &o.trusted_root {
        Some(text) if text.len() > MAX_TRUST_ROOT_BYTES => {
            return Err(invalid("trustedRoot", "is larger than 1 MiB"))
        }
        Some(text) => {
            TrustRoot::from_json(text).map_err(|e| invalid("trustedRoot", e.to_string()))?
        }
        None => TrustRoot::public_good().map_err(|e| StageError::internal(e.to_string()))?,
    };
    verify_sigstore_bundle(o.bundle.as_bytes(), &digest, &signer, &root).map_err(|r| {
        StageError::BundleRefused {
            check: r.check,
            reason: r.reason,
        }
    })?;
    Ok(())
}
