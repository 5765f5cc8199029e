//! The phase names a call goes through: what progress events report and what a network or
//! timeout error names. Shared by the call context and the error type, so it sits below both.

/// What a call is doing: the phase progress events report, and the phase an `ENETWORK` or
/// `ETIMEDOUT` names. JS sees it as a string (`StagePhase` in `error-types.d.ts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Fetching the package document, the registry's keys or the attestation, and checking them.
    Resolving,
    WaitingForLock,
    Downloading,
    Finishing,
}

impl Phase {
    /// Every phase, in the order a call goes through them; a phase's index is its `u8` form.
    pub const ALL: [Phase; 4] = [
        Phase::Resolving,
        Phase::WaitingForLock,
        Phase::Downloading,
        Phase::Finishing,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Resolving => "resolving",
            Phase::WaitingForLock => "waiting-for-lock",
            Phase::Downloading => "downloading",
            Phase::Finishing => "finishing",
        }
    }

    pub(crate) fn from_index(i: u8) -> Phase {
        Phase::ALL
            .get(usize::from(i))
            .copied()
            .unwrap_or(Phase::Resolving)
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_are_the_progress_strings_and_round_trip() {
        let names: Vec<_> = Phase::ALL.iter().map(|p| p.as_str()).collect();
        assert_eq!(
            names,
            ["resolving", "waiting-for-lock", "downloading", "finishing"]
        );
        for p in Phase::ALL {
            assert_eq!(Phase::from_index(p as u8), p);
            assert_eq!(p.to_string(), p.as_str());
        }
        assert_eq!(Phase::from_index(200), Phase::Resolving);
    }
}
