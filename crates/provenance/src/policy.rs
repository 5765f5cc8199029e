//! Who must have signed: the CI run (repository, workflow, trigger, ref) a certificate was issued
//! to, or the identity and issuer Sigstore's clients name.

use super::certificate::{
    check_code_signing, check_critical_extensions, ext_bytes, ext_raw, ext_utf8, extensions,
    san_uri, CertError,
};
use super::oids::{
    OID_BUILD_CONFIG_URI, OID_BUILD_TRIGGER, OID_GITHUB_WORKFLOW_REF_V1,
    OID_GITHUB_WORKFLOW_TRIGGER_V1, OID_ISSUER_V1, OID_ISSUER_V2, OID_SAN,
    OID_SOURCE_REPOSITORY_REF, OID_SOURCE_REPOSITORY_URI,
};
use x509_cert::der::Decode;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::Extension;
use x509_cert::Certificate;

/// Why a certificate was issued to someone else than the policy names.
#[derive(Debug, thiserror::Error)]
pub(super) enum IdentityError {
    #[error(transparent)]
    Certificate(#[from] CertError),
    #[error("the certificate names no OIDC issuer")]
    NoIssuer,
    #[error("the certificate was issued for `{0}`, not GitHub Actions")]
    NotGithubActions(String),
    #[error("the certificate was issued for `{0}`")]
    OtherIssuer(String),
    #[error("the certificate names no repository")]
    NoRepository,
    #[error("built from `{got}`, not `{want}`")]
    OtherRepository { got: String, want: String },
    #[error("the certificate names no build trigger")]
    NoTrigger,
    #[error("the run was triggered by `{0}`")]
    RefusedTrigger(String),
    #[error("the certificate names no git ref")]
    NoRef,
    #[error("the run built `{0}`, which the policy does not accept")]
    RefNotAccepted(String),
    #[error("the certificate names no workflow")]
    NoWorkflow,
    #[error("built by workflow `{got}`, not `{want}@…`")]
    OtherWorkflow { got: String, want: String },
    #[error("the certificate has no subject alternative name")]
    NoSubjectAltName,
    #[error("the certificate was issued to another identity")]
    OtherIdentity,
    #[error("a key was given, but the bundle is signed by a certificate")]
    KeyExpected,
}

pub(super) const GITHUB_ACTIONS_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// Who must have built the version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `owner/name` on GitHub.
    pub repository: String,
    /// The workflow file, e.g. `.github/workflows/publish.yml`; any workflow when `None`.
    pub workflow_path: Option<String>,
    /// A glob (`*` for any run of characters) the run's git ref must match, e.g.
    /// `refs/tags/v*`; when `None`, [`DEFAULT_REFS`].
    pub git_ref: Option<String>,
}

/// Which option of a policy is unusable, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("must be a GitHub `owner/name`, got `{0}`")]
    Repository(String),
    #[error("must be a relative path such as `.github/workflows/publish.yml`")]
    WorkflowPath,
    #[error("must be a git ref or a glob of one, such as `refs/tags/v*`")]
    Ref,
}

impl PolicyError {
    /// The option at fault, as the JavaScript API names it.
    pub fn field(&self) -> &'static str {
        match self {
            PolicyError::Repository(_) => "repository",
            PolicyError::WorkflowPath => "workflowPath",
            PolicyError::Ref => "ref",
        }
    }
}

/// Longest `workflowPath` and `ref`: GitHub workflow paths and refs are short; a bound keeps
/// messages small and the glob match cheap.
const MAX_WORKFLOW_PATH: usize = 300;

/// The refs a release is built from when the policy names none: a branch (a push to `main`, a
/// manual run) or a tag (a push of `v1.2.3`, a published release). A pull request's run has
/// `refs/pull/<n>/merge`, which neither matches.
pub(super) const DEFAULT_REFS: [&str; 2] = ["refs/heads/*", "refs/tags/*"];

/// Triggers whose runs build code nobody with write access has reviewed: a pull request's (its
/// author's code) and `pull_request_target`'s (the base branch's workflow, run for any fork).
const REFUSED_TRIGGERS: [&str; 2] = ["pull_request", "pull_request_target"];

impl Policy {
    /// Checks the options: `repository` is `owner/name` as GitHub spells names, `workflow_path` a
    /// relative path (a leading `./` dropped). The error names the field at fault and why.
    pub fn new(
        repository: &str,
        workflow_path: Option<&str>,
        git_ref: Option<&str>,
    ) -> Result<Policy, PolicyError> {
        let segment_ok = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        };
        match repository.split_once('/') {
            Some((owner, name)) if segment_ok(owner) && segment_ok(name) => {}
            _ => return Err(PolicyError::Repository(repository.to_string())),
        }
        let workflow_path = match workflow_path {
            None => None,
            Some(w) => {
                let w = w.trim_start_matches("./");
                // `@` separates the path from the ref in the certificate's URI.
                if w.is_empty()
                    || w.len() > MAX_WORKFLOW_PATH
                    || w.starts_with('/')
                    || w.contains(['@', '\\'])
                    || w.chars().any(char::is_whitespace)
                {
                    return Err(PolicyError::WorkflowPath);
                }
                Some(w.to_string())
            }
        };
        let git_ref = match git_ref {
            None => None,
            Some(r) => {
                if !r.starts_with("refs/")
                    || r.len() > MAX_WORKFLOW_PATH
                    || r.chars().any(|c| c.is_whitespace() || c.is_control())
                {
                    return Err(PolicyError::Ref);
                }
                Some(r.to_string())
            }
        };
        Ok(Policy {
            repository: repository.to_string(),
            workflow_path,
            git_ref,
        })
    }
}

/// The Fulcio extensions say which CI run the certificate was issued to.
pub(super) fn check_identity(leaf: &Certificate, policy: &Policy) -> Result<(), IdentityError> {
    let exts = extensions(leaf);
    check_critical_extensions(exts)?;
    check_code_signing(exts)?;
    let issuer = ext_utf8(exts, OID_ISSUER_V2).ok_or(IdentityError::NoIssuer)?;
    if issuer != GITHUB_ACTIONS_ISSUER {
        return Err(IdentityError::NotGithubActions(issuer));
    }
    let repository = policy.repository.trim_matches('/');
    let want_repo = format!("https://github.com/{repository}");
    let repo = ext_utf8(exts, OID_SOURCE_REPOSITORY_URI).ok_or(IdentityError::NoRepository)?;
    // GitHub's owner and repository names are case-insensitive.
    if !repo.eq_ignore_ascii_case(&want_repo) {
        return Err(IdentityError::OtherRepository {
            got: repo,
            want: want_repo,
        });
    }
    if let Some(workflow) = &policy.workflow_path {
        check_workflow(exts, &want_repo, workflow)?;
    }
    check_run(exts, policy)
}

/// Returns an error unless the run was triggered by something other than a pull request and
/// built a ref the policy accepts.
fn check_run(exts: &[Extension], policy: &Policy) -> Result<(), IdentityError> {
    let trigger = ext_utf8(exts, OID_BUILD_TRIGGER)
        .or_else(|| ext_raw(exts, OID_GITHUB_WORKFLOW_TRIGGER_V1))
        .ok_or(IdentityError::NoTrigger)?;
    if REFUSED_TRIGGERS.contains(&trigger.as_str()) {
        return Err(IdentityError::RefusedTrigger(trigger));
    }
    let git_ref = ext_utf8(exts, OID_SOURCE_REPOSITORY_REF)
        .or_else(|| ext_raw(exts, OID_GITHUB_WORKFLOW_REF_V1))
        .ok_or(IdentityError::NoRef)?;
    let accepted = match &policy.git_ref {
        Some(glob) => glob_matches(glob, &git_ref),
        None => DEFAULT_REFS.iter().any(|g| glob_matches(g, &git_ref)),
    };
    if !accepted {
        return Err(IdentityError::RefNotAccepted(git_ref));
    }
    Ok(())
}

/// Returns an error unless the certificate's workflow URI is `workflow` of `want_repo`.
fn check_workflow(
    exts: &[Extension],
    want_repo: &str,
    workflow: &str,
) -> Result<(), IdentityError> {
    // The build config URI names the workflow the run started from (the SAN names a
    // reusable workflow's file when one signs); older certificates have only the SAN.
    let uri = ext_utf8(exts, OID_BUILD_CONFIG_URI)
        .or_else(|| san_uri(exts))
        .ok_or(IdentityError::NoWorkflow)?;
    let workflow = workflow.trim_start_matches("./").trim_start_matches('/');
    // Owner and repository compare without case, as GitHub names them; the path exactly, as
    // `publish.yml` and `PUBLISH.yml` are two files of the repository.
    let repo_part = format!("{want_repo}/");
    let matches = uri.len() > repo_part.len()
        && uri.is_char_boundary(repo_part.len())
        && uri[..repo_part.len()].eq_ignore_ascii_case(&repo_part)
        && uri[repo_part.len()..]
            .strip_prefix(workflow)
            .is_some_and(|at| at.starts_with('@') && at.len() > 1);
    if !matches {
        return Err(IdentityError::OtherWorkflow {
            got: uri,
            want: format!("{repo_part}{workflow}"),
        });
    }
    Ok(())
}

/// The certificate's SAN is exactly `identity` and its Fulcio issuer `issuer`, as Sigstore's
/// clients compare them.
pub(super) fn check_san_identity(
    leaf: &Certificate,
    identity: &str,
    issuer: &str,
) -> Result<(), IdentityError> {
    let exts = extensions(leaf);
    check_critical_extensions(exts)?;
    check_code_signing(exts)?;
    let got_issuer = ext_utf8(exts, OID_ISSUER_V2)
        .or_else(|| ext_raw(exts, OID_ISSUER_V1))
        .ok_or(IdentityError::NoIssuer)?;
    if got_issuer != issuer {
        return Err(IdentityError::OtherIssuer(got_issuer));
    }
    let san = ext_bytes(exts, OID_SAN)
        .and_then(|b| SubjectAltName::from_der(b).ok())
        .ok_or(IdentityError::NoSubjectAltName)?;
    let matches = san.0.iter().any(|n| match n {
        GeneralName::UniformResourceIdentifier(u) => u.as_str() == identity,
        GeneralName::Rfc822Name(e) => e.as_str() == identity,
        _ => false,
    });
    if !matches {
        return Err(IdentityError::OtherIdentity);
    }
    Ok(())
}

/// Whether `text` matches `glob`, where `*` stands for any run of characters (`/` included) and
/// every other character for itself.
pub(super) fn glob_matches(glob: &str, text: &str) -> bool {
    let mut parts = glob.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let mut parts: Vec<&str> = parts.collect();
    let Some(last) = parts.pop() else {
        return rest.is_empty();
    };
    // Leftmost match of each middle piece is optimal for a `*`-only glob: linear, no backtracking.
    for part in parts {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{REPO, WORKFLOW};

    #[test]
    fn globs_match_as_documented() {
        for (glob, text, want) in [
            ("refs/tags/v*", "refs/tags/v1.2.3", true),
            ("refs/tags/v*", "refs/tags/v", true),
            ("refs/tags/v*", "refs/tags/x1", false),
            ("refs/tags/v*", "refs/heads/refs/tags/v1", false),
            ("refs/heads/main", "refs/heads/main", true),
            ("refs/heads/main", "refs/heads/main2", false),
            ("refs/*/v*.0", "refs/tags/v2.0", true),
            ("refs/*/v*.0", "refs/tags/v2.1", false),
            ("refs/*a*a", "refs/xa", false),
            ("*", "anything", true),
        ] {
            assert_eq!(glob_matches(glob, text), want, "{glob} {text}");
        }
    }

    #[test]
    fn policy_options_are_checked() {
        let ok = Policy::new(
            "kanban-org/kanban.js",
            Some("./.github/workflows/publish.yml"),
            Some("refs/tags/v*"),
        )
        .unwrap();
        assert_eq!(ok.git_ref.as_deref(), Some("refs/tags/v*"));
        for bad in ["v*", "", "refs/tags/v 1", "refs/\n"] {
            assert_eq!(
                Policy::new(REPO, None, Some(bad)).unwrap_err().field(),
                "ref",
                "{bad}"
            );
        }
        assert_eq!(ok.workflow_path.as_deref(), Some(WORKFLOW));
        for bad in [
            "",
            "kanban",
            "a/b/c",
            "/b",
            "a/",
            "a b/c",
            "https://github.com/a/b",
        ] {
            assert_eq!(
                Policy::new(bad, None, None).unwrap_err().field(),
                "repository",
                "{bad}"
            );
        }
        for bad in ["", "/abs.yml", "a@b", "a b", &"x".repeat(301)] {
            assert_eq!(
                Policy::new(REPO, Some(bad), None).unwrap_err().field(),
                "workflowPath",
                "{bad}"
            );
        }
    }
}
