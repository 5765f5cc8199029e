//! Staging with a provenance requirement, against a loopback registry serving attestations.

mod common;

use common::kit::{self, TestCa};
use common::{ctl, env, Env, Server};
use runtime_stager_core::{check_and_stage, Checked, Outcome, Provenance, StageError, Store};
use runtime_stager_provenance::{Policy, TrustRoot};
use sha2::{Digest, Sha512};

/// A registry whose attestation for 2.0.0 was made for a run of `repo` (by another CA than the
/// trusted one when asked), naming `digest` (the tarball's own when `None`).
async fn scenario(repo: &str, sign_with_other_ca: bool, digest: Option<[u8; 64]>) -> (Server, Env) {
    scenario_timed(repo, sign_with_other_ca, digest, None).await
}

/// As `scenario`, the entry in a Rekor v2 log timed by the trusted CA's timestamp authority at
/// `rekor_v2_time` when given.
async fn scenario_timed(
    repo: &str,
    sign_with_other_ca: bool,
    digest: Option<[u8; 64]>,
    rekor_v2_time: Option<i64>,
) -> (Server, Env) {
    let trusted = TestCa::new("trusted");
    let other = sign_with_other_ca.then(|| TestCa::new("other"));
    let signer = other.as_ref().unwrap_or(&trusted);
    let (leaf, leaf_key) = signer.leaf(repo, kit::WORKFLOW, kit::GITHUB_ACTIONS_ISSUER);
    let log_key = kit::p256();
    let make = |tgz: &[u8]| {
        let sha: [u8; 64] = digest.unwrap_or_else(|| Sha512::digest(tgz).into());
        kit::attestations(kit::bundle(&kit::Parts {
            leaf: &leaf,
            leaf_key: &leaf_key,
            log_key: &log_key,
            statement: kit::statement("kanban", "2.0.0", &sha),
            integrated: kit::INTEGRATED,
            kind: "dsse",
            logged_cert: None,
            rekor_v2: rekor_v2_time.is_some(),
            timestamp: rekor_v2_time.map(|t| (&trusted.tsa, t)),
        }))
    };
    let reg = Server::registry_with("2.0.0", None, Some(&make)).await;
    let mut e = env(&reg.url, "1.0.0");
    e.cfg.provenance = Some(Provenance {
        policy: Policy {
            repository: kit::REPO.into(),
            workflow_path: Some(kit::WORKFLOW.into()),
            git_ref: None,
        },
        trust_root: TrustRoot::from_json(&kit::trust_root_json(&trusted, &log_key)).unwrap(),
    });
    (reg, e)
}

/// The provenance check that refused 2.0.0, the one newer version, when the call passed it over
/// and answered `up-to-date`.
fn refused_check(out: Result<Checked, StageError>) -> &'static str {
    match out {
        Ok(Checked {
            outcome: Outcome::UpToDate,
            refused: Some(StageError::Provenance { check, version, .. }),
            ..
        }) if version == "2.0.0" => check.as_str(),
        other => panic!("expected 2.0.0 refused (EPROVENANCE), got {other:?}"),
    }
}

fn versions(e: &Env) -> usize {
    std::fs::read_dir(e.cfg.user_data.join("runtime-store/versions"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_valid_attestation_stages() {
    let (reg, e) = scenario(kit::REPO, false, None).await;
    let store = Store::new(&e.cfg.user_data);
    let out = check_and_stage(&e.cfg, &store, &ctl()).await.unwrap();
    assert_eq!(out.outcome.kind(), "staged");
    assert_eq!((reg.attestation_requests(), reg.tarball_requests()), (1, 1));
}

#[tokio::test]
async fn a_rekor_v2_attestation_timed_by_rfc_3161_stages_and_one_timed_outside_the_certificate_is_refused(
) {
    let (reg, e) = scenario_timed(kit::REPO, false, None, Some(kit::INTEGRATED)).await;
    let store = Store::new(&e.cfg.user_data);
    let out = check_and_stage(&e.cfg, &store, &ctl()).await.unwrap();
    assert_eq!(out.outcome.kind(), "staged");
    assert_eq!(reg.attestation_requests(), 1);

    // The certificate is valid ten minutes; the timestamp says an hour later.
    let (reg, e) = scenario_timed(kit::REPO, false, None, Some(kit::INTEGRATED + 3600)).await;
    let store = Store::new(&e.cfg.user_data);
    assert_eq!(
        refused_check(check_and_stage(&e.cfg, &store, &ctl()).await),
        "certificate"
    );
    assert_eq!((reg.tarball_requests(), versions(&e)), (0, 0));
}

#[tokio::test]
async fn refusals_download_and_write_nothing() {
    for (repo, other_ca, digest, check) in [
        ("evil/kanban", false, None, "identity"),
        (kit::REPO, true, None, "certificate"),
        (kit::REPO, false, Some([1u8; 64]), "subject"),
    ] {
        let (reg, e) = scenario(repo, other_ca, digest).await;
        let store = Store::new(&e.cfg.user_data);
        let out = check_and_stage(&e.cfg, &store, &ctl()).await;
        assert_eq!(refused_check(out), check);
        assert_eq!(reg.tarball_requests(), 0, "{check}");
        assert_eq!(versions(&e), 0, "{check}");
    }
}

#[tokio::test]
async fn no_attestations_is_refused_and_no_option_asks_for_none() {
    let reg = Server::registry("2.0.0", None).await;
    let (_, with) = scenario(kit::REPO, false, None).await;
    let mut e = env(&reg.url, "1.0.0");
    e.cfg.provenance = with.cfg.provenance.clone();
    let store = Store::new(&e.cfg.user_data);
    assert_eq!(
        refused_check(check_and_stage(&e.cfg, &store, &ctl()).await),
        "attestation"
    );
    assert_eq!((reg.tarball_requests(), versions(&e)), (0, 0));

    let (reg, mut e) = scenario(kit::REPO, false, None).await;
    e.cfg.provenance = None;
    let store = Store::new(&e.cfg.user_data);
    check_and_stage(&e.cfg, &store, &ctl()).await.unwrap();
    assert_eq!(reg.attestation_requests(), 0);
}
