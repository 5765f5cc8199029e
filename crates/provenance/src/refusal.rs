//! What a refusal says: which check failed, and why.

/// Which check an attestation failed: `EPROVENANCE`'s `check` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// No SLSA provenance attestation, or one that is not a well-formed Sigstore bundle.
    Attestation,
    /// The certificate is not base64 DER, repeats an extension, does not chain to a trusted
    /// Fulcio CA, or was not valid at log time.
    Certificate,
    /// The certificate was issued to another CI, repository or workflow.
    Identity,
    /// The transparency-log entry is missing, unsigned by a trusted log, or for another envelope.
    TransparencyLog,
    /// The DSSE signature does not verify with the certificate's key.
    Signature,
    /// The statement does not name this package, version and sha512.
    Subject,
    /// An RFC 3161 timestamp does not verify with a trusted timestamp authority.
    Timestamp,
}

impl Check {
    pub fn as_str(self) -> &'static str {
        match self {
            Check::Attestation => "attestation",
            Check::Certificate => "certificate",
            Check::Identity => "identity",
            Check::TransparencyLog => "transparencyLog",
            Check::Signature => "signature",
            Check::Subject => "subject",
            Check::Timestamp => "timestamp",
        }
    }
}

/// Why a version's provenance was refused. Public, as is [`Check`]: the public
/// `verify_sigstore_bundle` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub check: Check,
    pub reason: String,
}

pub(super) fn refuse(check: Check, reason: impl Into<String>) -> Refusal {
    Refusal {
        check,
        reason: reason.into(),
    }
}

/// Makes a refusal of `check` from an error, its message the reason.
pub(super) fn as_check<E: std::fmt::Display>(check: Check) -> impl Fn(E) -> Refusal {
    move |e| Refusal {
        check,
        reason: e.to_string(),
    }
}
