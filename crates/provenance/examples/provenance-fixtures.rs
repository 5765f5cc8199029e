//! Writes the Sigstore test material of the binding's provenance tests to
//! `__test__/fixtures/provenance/`: a leaf issued by the test Fulcio CA as Fulcio issues one to a
//! GitHub Actions run of `kanban-org/kanban` (with an SCT from the CA's CT log), a leaf from
//! another CA, leaves for a tag's run and for runs a pull request triggered, a leaf repeating an
//! extension and one not in DER, a Rekor-like log key, and the `trusted_root.json` that trusts
//! the first CA, its CT log and the log key. The tests sign DSSE envelopes and log entries
//! themselves with these keys.
//!
//! Run: `cargo run -p runtime-stager-provenance --features testkit --example provenance-fixtures`

use runtime_stager_provenance::testkit::{
    p256, trust_root_json, Run, TestCa, GITHUB_ACTIONS_ISSUER, REPO, WORKFLOW,
};
use std::path::Path;

fn pem(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../__test__/fixtures/provenance");
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: String| std::fs::write(dir.join(name), text).unwrap();

    let ca = TestCa::new("test fulcio");
    let (leaf, leaf_key) = ca.leaf(REPO, WORKFLOW, GITHUB_ACTIONS_ISSUER);
    let other = TestCa::new("other fulcio");
    let (other_leaf, other_leaf_key) = other.leaf(REPO, WORKFLOW, GITHUB_ACTIONS_ISSUER);
    let log_key = p256();

    write("leaf.pem", pem(&leaf));
    write("leaf.key.pem", leaf_key.serialize_pem());
    write("other-ca-leaf.pem", pem(&other_leaf));
    write("other-ca-leaf.key.pem", other_leaf_key.serialize_pem());
    write("rekor.key.pem", log_key.serialize_pem());
    // Leaves of the trusted CA for runs a policy tells apart by their ref or trigger.
    for (name, git_ref, trigger) in [
        ("tag-leaf", "refs/tags/v2.0.0", "push"),
        ("pull-request-leaf", "refs/pull/7/merge", "pull_request"),
        (
            "pull-request-target-leaf",
            "refs/heads/main",
            "pull_request_target",
        ),
    ] {
        let (leaf, key) = ca.leaf_for(&Run {
            git_ref,
            trigger,
            ..Run::push(REPO, WORKFLOW)
        });
        write(&format!("{name}.pem"), pem(&leaf));
        write(&format!("{name}.key.pem"), key.serialize_pem());
    }
    // Leaves of the trusted CA a certificate check refuses: one repeating its source
    // repository extension with another repository second, one not in DER.
    let push = Run::push(REPO, WORKFLOW);
    let leaves = [
        (
            "repeated-extension-leaf",
            ca.leaf_with(&push, &[(12, "https://github.com/evil/kanban")]),
        ),
        ("ber-leaf", ca.ber_leaf(&push)),
    ];
    for (name, (leaf, key)) in leaves {
        write(&format!("{name}.pem"), pem(&leaf));
        write(&format!("{name}.key.pem"), key.serialize_pem());
    }
    write("trusted_root.json", trust_root_json(&ca, &log_key) + "\n");
    println!("wrote {}", dir.display());
}
