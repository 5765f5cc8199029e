//! Tarball integrity: the registry's sha512 SRI (`dist.integrity`), or the legacy sha1 hex
//! (`dist.shasum`) only when a registry gives no SRI.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use sha1::Sha1;
use sha2::{Digest, Sha512};

/// What the registry promised the tarball hashes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// Raw sha512 digest from an SRI string.
    Sha512(Vec<u8>),
    /// Raw sha1 digest from `dist.shasum`.
    Sha1(Vec<u8>),
}

impl Expected {
    /// Picks the sha512 entry of an SRI string (`sha512-<base64>`, possibly among others
    /// separated by whitespace). Weaker SRI algorithms are ignored: sha512 is what npm publishes.
    pub fn from_sri(sri: &str) -> Option<Expected> {
        sri.split_whitespace().find_map(|part| {
            let b64 = part.strip_prefix("sha512-")?;
            // SRI allows `?options` after the digest.
            let b64 = b64.split('?').next()?;
            let raw = B64.decode(b64).ok()?;
            (raw.len() == 64).then_some(Expected::Sha512(raw))
        })
    }

    pub fn from_shasum(hex: &str) -> Option<Expected> {
        let hex = hex.trim();
        if hex.len() != 40 {
            return None;
        }
        let raw = (0..40)
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        Some(Expected::Sha1(raw))
    }

    pub fn hasher(&self) -> Hasher {
        match self {
            Expected::Sha512(_) => Hasher::Sha512(Box::default()),
            Expected::Sha1(_) => Hasher::Sha1(Sha1::new()),
        }
    }
}

impl std::fmt::Display for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expected::Sha512(raw) => write!(f, "sha512-{}", B64.encode(raw)),
            Expected::Sha1(raw) => write!(f, "sha1:{}", hex(raw)),
        }
    }
}

fn hex(raw: &[u8]) -> String {
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

/// Incremental hasher fed with the tarball's bytes as they stream by.
pub enum Hasher {
    Sha512(Box<Sha512>),
    Sha1(Sha1),
}

impl Hasher {
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha512(h) => h.update(data),
            Hasher::Sha1(h) => h.update(data),
        }
    }

    /// Compares with `expected`; on mismatch returns the actual value in the same notation.
    pub fn verify(self, expected: &Expected) -> Result<(), String> {
        let (actual, same) = match self {
            Hasher::Sha512(h) => {
                let raw = h.finalize().to_vec();
                let same = matches!(expected, Expected::Sha512(e) if *e == raw);
                (Expected::Sha512(raw), same)
            }
            Hasher::Sha1(h) => {
                let raw = h.finalize().to_vec();
                let same = matches!(expected, Expected::Sha1(e) if *e == raw);
                (Expected::Sha1(raw), same)
            }
        };
        if same {
            Ok(())
        } else {
            Err(actual.to_string())
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
    fn picks_sha512_among_several() {
        let sri = format!("sha1-AAAA {} sha256-BBBB", sri_of(b"x"));
        assert_eq!(Expected::from_sri(&sri), Expected::from_sri(&sri_of(b"x")));
        assert_eq!(Expected::from_sri("sha1-abc"), None);
        assert_eq!(Expected::from_sri("sha512-not base64!"), None);
    }

    #[test]
    fn shasum_fallback() {
        // sha1("hello")
        let exp = Expected::from_shasum("aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d").unwrap();
        let mut h = exp.hasher();
        h.update(b"hello");
        assert_eq!(h.verify(&exp), Ok(()));
        assert_eq!(Expected::from_shasum("zz"), None);
    }
}
