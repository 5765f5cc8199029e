//! What one call settles on: the outcome union JS sees, and what it met on the way: a refusal,
//! a release held back, a withdrawal.

use crate::shared::error::StageError;
use crate::store::{PendingNote, WithdrawnNote};

/// The result of one call; mirrors the JS `StageOutcome` union.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    UpToDate,
    BadVersion(String),
    AlreadyStaged,
    Staged(String),
}

impl Outcome {
    /// The JS `kind` of this outcome.
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::UpToDate => "up-to-date",
            Outcome::BadVersion(_) => "bad-version",
            Outcome::AlreadyStaged => "already-staged",
            Outcome::Staged(_) => "staged",
        }
    }
}

/// What one call settled on: its outcome and, when the trust policy refused a newer version on
/// the way (and an older one was considered instead, as the cool-down does), the newest refusal.
#[derive(Debug, Clone)]
pub struct Checked {
    pub outcome: Outcome,
    /// An `ESIGNATURE` or `EPROVENANCE` error, naming the refused version.
    pub refused: Option<StageError>,
    /// The newest release the cool-down or the rollout held back, and when it is eligible.
    pub pending: Option<PendingNote>,
    /// The pointed version this call withdrew because its publisher deprecated it.
    pub withdrawn: Option<WithdrawnNote>,
}
