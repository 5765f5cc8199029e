//! The checks a version passes before anything is downloaded: the compatibility guard, the
//! registry's signatures and the provenance attestation.

use super::document::fetch_plain;
use crate::config::{Config, Provenance};
use crate::net::Http;
use crate::registry::{rewrite_tarball_url, Dist, Document, ACCEPT_FULL};
use crate::shared::call::Control;
use crate::shared::error::Result;
use crate::shared::error::{SignatureReason, StageError};
use crate::shared::fsutil;
use crate::shared::log::Level;
use crate::shared::text::clip;
use crate::store::Store;
use crate::trust::provenance::{self, Check, Subject, MAX_ATTESTATIONS_BYTES};
use crate::trust::{self, Compat, Signed};
use std::io::Read;
use std::path::Path;

/// The bundled node-pty's version, from its package.json; `None` (not checked) when it has none.
pub(crate) fn bundled_node_pty_version(native_src: &Path) -> Option<nodejs_semver::Version> {
    read_manifest(&native_src.join("package.json"))?
        .get("version")?
        .as_str()
        .and_then(|v| nodejs_semver::Version::parse(v).ok())
}

/// A package.json as JSON, or `None` when it is missing, oversized or not JSON.
pub(crate) fn read_manifest(path: &Path) -> Option<serde_json::Value> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(fsutil::MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .ok()?;
    if bytes.len() as u64 > fsutil::MAX_MANIFEST_BYTES {
        return None;
    }
    serde_json::from_slice(&bytes).ok()
}

/// The compatibility guard before any download: a refusal remembered from an earlier download of
/// the same tarball (by the integrity the document promises; re-checked, as the app may have been
/// updated since), then the document's own entry.
pub(crate) fn compat_guard(c: &Candidate<'_>, doc: &Document, compat: &Compat) -> Result<()> {
    let Candidate {
        store,
        version: latest,
        ctl,
        ..
    } = *c;
    let (host, pty) = (compat.host_node.as_ref(), compat.node_pty.as_ref());
    let remembered = doc
        .dist(latest)
        .ok()
        .and_then(|dist| store.incompatible(latest, &dist.integrity.to_string()))
        .and_then(|e| trust::still_refused(&e.guard, &e.range, host, pty));
    let refusal = match remembered {
        Some(r) => Some(r),
        None => doc
            .entry(latest)
            .and_then(|entry| trust::check_compat(entry, host, pty).err()),
    };
    match refusal {
        None => Ok(()),
        Some(r) => {
            let e = r.into_error(latest);
            ctl.log(Level::Warn, e.to_string(), &[("version", latest.into())]);
            Err(e)
        }
    }
}

/// A version under the checks that come before any download, with the settings, the store and
/// the call that check it.
pub(crate) struct Candidate<'a> {
    pub(crate) cfg: &'a Config,
    pub(crate) store: &'a Store,
    pub(crate) http: &'a Http,
    pub(crate) version: &'a str,
    pub(crate) ctl: &'a Control,
}

/// The registry's signatures of the candidate: a present signature must verify with a known key,
/// and with `requireSignatures` one must be present. Fetches the full document (from `doc_url`)
/// for the publish time only when a key in use expires and `doc` is not the `full` one.
pub(crate) async fn check_signatures(
    c: &Candidate<'_>,
    doc_url: &str,
    doc: &Document,
    full: bool,
) -> Result<()> {
    let Candidate {
        cfg,
        http,
        version: latest,
        ctl,
        ..
    } = *c;
    let keys = cfg
        .trust
        .registry_keys
        .clone()
        .unwrap_or_else(trust::public_keys);
    let signatures = doc.signatures(latest);
    let published = if !trust::needs_publish_time(&signatures, &keys) {
        None
    } else if full {
        doc.published_ms(latest)
    } else {
        fetch_plain(cfg, http, doc_url, ACCEPT_FULL, ctl)
            .await?
            .published_ms(latest)
    };
    let signed = trust::verify_signatures(
        &cfg.package_name,
        latest,
        doc.raw_integrity(latest),
        &signatures,
        &keys,
        published,
    );
    signature_verdict(c, signed)
}

/// Whether the signature check lets the candidate through; a verified or absent signature is
/// logged.
fn signature_verdict(c: &Candidate<'_>, signed: Result<Signed>) -> Result<()> {
    let Candidate {
        cfg,
        version: latest,
        ctl,
        ..
    } = *c;
    match signed {
        Ok(Signed::Verified(keyid)) => {
            ctl.log(
                Level::Info,
                format!("registry signature verified (key {})", clip(&keyid)),
                &[("version", latest.into()), ("keyid", (&keyid).into())],
            );
            Ok(())
        }
        Ok(Signed::Missing) if cfg.trust.require_signatures => Err(StageError::Signature {
            version: latest.to_string(),
            keyid: None,
            reason: SignatureReason::Missing,
        }),
        Ok(Signed::Missing) => {
            ctl.log(
                Level::Debug,
                "no registry signature (not required)",
                &[("version", latest.into())],
            );
            Ok(())
        }
        // Logged where the refusal passes the version over (see `stage.rs`).
        Err(e) => Err(e),
    }
}

/// Before anything is downloaded or written: the version's attestation must prove it was built
/// by the configured repository (and workflow) with the sha512 the document names. The download
/// then checks the tarball against that same integrity, so the attestation covers what is staged.
pub(crate) async fn check_provenance(
    c: &Candidate<'_>,
    provenance: &Provenance,
    dist: &Dist,
) -> Result<()> {
    let Candidate {
        cfg, version, ctl, ..
    } = *c;
    let refused = |check: Check, reason: String| refusal(c, check, reason);
    let sha512 = dist.integrity.sha512().ok_or_else(|| {
        refused(
            Check::Subject,
            format!(
                "the registry's integrity `{}` is not one sha512 digest",
                dist.integrity
            ),
        )
    })?;
    let url = dist.attestations_url.as_deref().ok_or_else(|| {
        refused(
            Check::Attestation,
            "the package document names no attestations for this version".into(),
        )
    })?;
    let body = fetch_attestations(c, url).await?;
    let subject = Subject {
        name: &cfg.package_name,
        version,
        sha512,
    };
    provenance::verify(&body, &subject, &provenance.policy, &provenance.trust_root)
        .map_err(|r| refused(r.check, r.reason))?;
    ctl.log(
        Level::Info,
        format!(
            "provenance verified: {} was built by {}",
            clip(version),
            clip(&provenance.policy.repository)
        ),
        &[
            ("version", version.into()),
            ("repository", (&provenance.policy.repository).into()),
        ],
    );
    Ok(())
}

/// The provenance check's refusal of the candidate.
fn refusal(c: &Candidate<'_>, check: Check, reason: String) -> StageError {
    StageError::Provenance {
        package: c.cfg.package_name.clone(),
        version: c.version.to_string(),
        check,
        reason,
    }
}

/// The attestations the document names for the candidate, fetched from the configured registry;
/// none served, or too many bytes, is a refusal.
async fn fetch_attestations(c: &Candidate<'_>, url: &str) -> Result<Vec<u8>> {
    let url = rewrite_tarball_url(url, &c.cfg.registry);
    match c
        .http
        .get_bytes(&url, "application/json", MAX_ATTESTATIONS_BYTES, c.ctl)
        .await
    {
        Err(StageError::Http {
            status: 404 | 410, ..
        }) => Err(refusal(
            c,
            Check::Attestation,
            format!("the registry serves no attestations at {}", clip(&url)),
        )),
        Err(StageError::TooLarge { .. }) => Err(refusal(
            c,
            Check::Attestation,
            format!("the attestations are over {MAX_ATTESTATIONS_BYTES} bytes"),
        )),
        other => other,
    }
}
