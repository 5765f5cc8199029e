//! Tarball integrity, as npm's ssri reads it: the registry's SRI (`dist.integrity`), whose
//! strongest algorithm wins, or the legacy sha1 hex (`dist.shasum`) only when there is no SRI.
//!
//! Not the `ssri` crate: it would link second copies of base64, thiserror and miette and an
//! xxhash we never accept, it refuses a whole SRI string for one malformed part where npm skips
//! the part, and it does not read `dist.shasum`. The parsing here is forty lines, fuzzed.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};

/// The digest algorithms SRI names, weakest first so `Ord` ranks them as ssri does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Algo {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Algo {
    fn parse(name: &str) -> Option<Algo> {
        Some(match name {
            "sha1" => Algo::Sha1,
            "sha256" => Algo::Sha256,
            "sha384" => Algo::Sha384,
            "sha512" => Algo::Sha512,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Algo::Sha1 => "sha1",
            Algo::Sha256 => "sha256",
            Algo::Sha384 => "sha384",
            Algo::Sha512 => "sha512",
        }
    }

    fn digest_len(self) -> usize {
        match self {
            Algo::Sha1 => 20,
            Algo::Sha256 => 32,
            Algo::Sha384 => 48,
            Algo::Sha512 => 64,
        }
    }
}

/// What the registry promised the tarball hashes to: one algorithm, and every digest the
/// registry listed for it (any one matching is enough, as in ssri).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expected {
    algo: Algo,
    digests: Vec<Vec<u8>>,
    /// From `dist.shasum` (shown as `sha1:<hex>`), not from an SRI string.
    legacy_hex: bool,
}

impl Expected {
    /// Reads an SRI string: whitespace-separated `<algo>-<base64>[?options]`. Unknown algorithms
    /// and malformed digests are skipped; of the rest, only the strongest algorithm counts, so a
    /// weak digest listed beside a strong one cannot weaken the check. `None` when nothing usable.
    pub(crate) fn from_sri(sri: &str) -> Option<Expected> {
        let mut parsed: Vec<(Algo, Vec<u8>)> = sri
            .split_whitespace()
            .filter_map(|part| {
                let (name, rest) = part.split_once('-')?;
                let algo = Algo::parse(name)?;
                // SRI allows `?options` after the digest.
                let b64 = rest.split('?').next()?;
                let raw = B64.decode(b64).ok()?;
                (raw.len() == algo.digest_len()).then_some((algo, raw))
            })
            .collect();
        let strongest = parsed.iter().map(|(a, _)| *a).max()?;
        parsed.retain(|(a, _)| *a == strongest);
        Some(Expected {
            algo: strongest,
            digests: parsed.into_iter().map(|(_, d)| d).collect(),
            legacy_hex: false,
        })
    }

    /// Reads the legacy 40-hex-digit sha1 of `dist.shasum`.
    pub(crate) fn from_shasum(hex: &str) -> Option<Expected> {
        let hex = hex.trim();
        if hex.len() != 40 {
            return None;
        }
        let raw = base16ct::mixed::decode_vec(hex).ok()?;
        Some(Expected {
            algo: Algo::Sha1,
            digests: vec![raw],
            legacy_hex: true,
        })
    }

    /// The one sha512 digest the SRI names, which a provenance statement must name too. `None`
    /// for any other algorithm, or for several sha512 digests (the tarball may match either).
    pub(crate) fn sha512(&self) -> Option<&[u8]> {
        match self.digests.as_slice() {
            [one] if self.algo == Algo::Sha512 => Some(one),
            _ => None,
        }
    }

    #[cfg(test)]
    pub(super) fn algo(&self) -> Algo {
        self.algo
    }

    pub(crate) fn hasher(&self) -> Hasher {
        Hasher(match self.algo {
            Algo::Sha1 => Inner::Sha1(Sha1::new()),
            Algo::Sha256 => Inner::Sha256(Sha256::new()),
            Algo::Sha384 => Inner::Sha384(Box::default()),
            Algo::Sha512 => Inner::Sha512(Box::default()),
        })
    }

    fn show(&self, raw: &[u8]) -> String {
        if self.legacy_hex {
            format!("sha1:{}", base16ct::lower::encode_string(raw))
        } else {
            format!("{}-{}", self.algo.name(), B64.encode(raw))
        }
    }
}

impl std::fmt::Display for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown: Vec<String> = self.digests.iter().map(|d| self.show(d)).collect();
        f.write_str(&shown.join(" "))
    }
}

/// Incremental hasher fed with the tarball's bytes as they stream by.
pub(crate) struct Hasher(Inner);

enum Inner {
    Sha1(Sha1),
    Sha256(Sha256),
    Sha384(Box<Sha384>),
    Sha512(Box<Sha512>),
}

impl Hasher {
    pub(crate) fn update(&mut self, data: &[u8]) {
        match &mut self.0 {
            Inner::Sha1(h) => h.update(data),
            Inner::Sha256(h) => h.update(data),
            Inner::Sha384(h) => h.update(data),
            Inner::Sha512(h) => h.update(data),
        }
    }

    /// Compares with `expected` (any of its digests may match); on mismatch returns the actual
    /// value in the same notation.
    pub(crate) fn verify(self, expected: &Expected) -> Result<(), String> {
        let raw = match self.0 {
            Inner::Sha1(h) => h.finalize().to_vec(),
            Inner::Sha256(h) => h.finalize().to_vec(),
            Inner::Sha384(h) => h.finalize().to_vec(),
            Inner::Sha512(h) => h.finalize().to_vec(),
        };
        if expected.digests.contains(&raw) {
            Ok(())
        } else {
            Err(expected.show(&raw))
        }
    }
}

/// The SRI string of `data`, as a registry would publish it.
pub fn sri_of(data: &[u8]) -> String {
    format!("sha512-{}", B64.encode(Sha512::digest(data)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sri(algo: &str, data: &[u8]) -> String {
        let raw = match algo {
            "sha1" => Sha1::digest(data).to_vec(),
            "sha256" => Sha256::digest(data).to_vec(),
            "sha384" => Sha384::digest(data).to_vec(),
            _ => Sha512::digest(data).to_vec(),
        };
        format!("{algo}-{}", B64.encode(raw))
    }

    fn verifies(exp: &Expected, data: &[u8]) -> bool {
        let mut h = exp.hasher();
        h.update(data);
        h.verify(exp).is_ok()
    }

    #[test]
    fn sha512_round_trip() {
        let sri = sri_of(b"hello");
        let exp = Expected::from_sri(&sri).unwrap();
        let mut h = exp.hasher();
        h.update(b"hel");
        h.update(b"lo");
        assert_eq!(h.verify(&exp), Ok(()));
        assert_eq!(exp.to_string(), sri);
    }

    #[test]
    fn mismatch_reports_actual() {
        let exp = Expected::from_sri(&sri_of(b"hello")).unwrap();
        let mut h = exp.hasher();
        h.update(b"hellO");
        assert_eq!(h.verify(&exp), Err(sri_of(b"hellO")));
    }

    #[test]
    fn strongest_algorithm_wins_whatever_the_order() {
        // The sha1 matches, the sha512 does not: the sha512 decides, so the check fails.
        let s = format!("{} {}", sri("sha1", b"x"), sri("sha512", b"other"));
        let exp = Expected::from_sri(&s).unwrap();
        assert_eq!(exp.algo(), Algo::Sha512);
        assert!(!verifies(&exp, b"x"));
        assert!(verifies(&exp, b"other"));
        for (weak, strong, algo) in [
            ("sha1", "sha256", Algo::Sha256),
            ("sha256", "sha384", Algo::Sha384),
            ("sha384", "sha512", Algo::Sha512),
        ] {
            let s = format!("{} {}", sri(strong, b"y"), sri(weak, b"z"));
            let exp = Expected::from_sri(&s).unwrap();
            assert_eq!(exp.algo(), algo);
            assert!(verifies(&exp, b"y"));
            assert!(!verifies(&exp, b"z"));
        }
    }

    #[test]
    fn any_digest_of_the_strongest_algorithm_may_match() {
        let s = format!(
            "{} {}?opt {}",
            sri("sha512", b"a"),
            sri("sha512", b"b"),
            sri("sha256", b"c")
        );
        let exp = Expected::from_sri(&s).unwrap();
        assert!(verifies(&exp, b"a"));
        assert!(verifies(&exp, b"b"));
        assert!(!verifies(&exp, b"c"));
    }

    #[test]
    fn weaker_algorithms_alone_are_used() {
        for algo in ["sha1", "sha256", "sha384"] {
            let exp = Expected::from_sri(&sri(algo, b"q")).unwrap();
            assert!(verifies(&exp, b"q"), "{algo}");
            assert!(!verifies(&exp, b"r"), "{algo}");
            assert_eq!(exp.to_string(), sri(algo, b"q"));
        }
    }

    #[test]
    fn unknown_algorithms_and_malformed_digests_are_ignored() {
        let s = format!(
            "md5-AAAA sha999-BBBB sha512-!!!! sha512-AAAA {}",
            sri("sha256", b"k")
        );
        let exp = Expected::from_sri(&s).unwrap();
        assert_eq!(exp.algo(), Algo::Sha256);
        assert!(verifies(&exp, b"k"));
        assert_eq!(Expected::from_sri("md5-AAAA"), None);
        assert_eq!(Expected::from_sri("sha512-not base64!"), None);
        assert_eq!(Expected::from_sri(""), None);
        assert_eq!(Expected::from_sri("sha512"), None);
        assert_eq!(Expected::from_sri("é-ü sha512-é"), None);
    }

    #[test]
    fn shasum_fallback() {
        // sha1("hello")
        let exp = Expected::from_shasum("aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d").unwrap();
        assert!(verifies(&exp, b"hello"));
        assert_eq!(
            exp.to_string(),
            "sha1:aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"
        );
        let upper = Expected::from_shasum("AAF4C61DDCC5E8A2DABEDE0F3B482CD9AEA9434D").unwrap();
        assert!(verifies(&upper, b"hello"));
        assert_eq!(Expected::from_shasum("zz"), None);
    }

    #[test]
    fn shasum_with_multibyte_characters_is_refused_not_a_panic() {
        // 40 bytes, but "é" spans two: slicing by byte pairs would cut a character in half.
        let s = format!("a{}", "é".repeat(19)) + "a";
        assert_eq!(s.len(), 40);
        assert_eq!(Expected::from_shasum(&s), None);
        assert_eq!(Expected::from_shasum(&"€".repeat(13)), None);
        assert_eq!(Expected::from_shasum(&"g".repeat(40)), None);
    }
}
