//! Entry paths: sanitised below the stripped top folder, refused when Windows could not hold
//! them, and shown relative to the destination in errors.

use super::limits::{too_large, unsafe_entry, MAX_PATH_BYTES, MAX_PATH_DEPTH};
use crate::shared::error::{Limit, Result};
use std::path::{Path, PathBuf};

/// The sanitised path below the destination, `None` for the top folder itself.
pub(super) fn relative_path(raw_path: &[u8], url: &str, shown: &str) -> Result<Option<PathBuf>> {
    match sanitize(raw_path) {
        Ok(rel) => Ok(rel),
        Err(PathProblem::Unsafe(reason)) => Err(unsafe_entry(url, shown, &reason)),
        Err(PathProblem::TooLarge(reason)) => Err(too_large(
            url,
            Limit::Path,
            format!("entry `{shown}`: {reason}"),
        )),
    }
}

/// `at` as shown in errors: relative to `dest`, with forward slashes.
pub(super) fn shown_rel(dest: &Path, at: &Path) -> String {
    at.strip_prefix(dest)
        .unwrap_or(at)
        .to_string_lossy()
        .replace('\\', "/")
}

/// The first non-empty, non-`.` component of a raw path: the folder npm strips.
pub(super) fn top_component(raw: &[u8]) -> &[u8] {
    raw.split(|b| *b == b'/')
        .find(|c| !c.is_empty() && *c != b".")
        .unwrap_or(b"")
}

/// Why `sanitize` refused a path: unsafe to write, or past a size cap.
pub(crate) enum PathProblem {
    Unsafe(String),
    TooLarge(String),
}

/// Turns a raw tar path into a safe relative path with the top folder stripped, `None` for the
/// top folder itself. Everything that could leave the folder, alias another name on some OS, or
/// be misread by Windows is refused rather than rewritten.
pub(crate) fn sanitize(raw: &[u8]) -> std::result::Result<Option<PathBuf>, PathProblem> {
    let unsafe_ = |s: &str| Err(PathProblem::Unsafe(s.into()));
    let Ok(path) = std::str::from_utf8(raw) else {
        return unsafe_("path is not UTF-8");
    };
    if path.contains('\\') {
        return unsafe_("path uses a backslash separator");
    }
    if path.starts_with('/') {
        return unsafe_("path is absolute");
    }
    if path.len() > MAX_PATH_BYTES + 256 {
        return Err(PathProblem::TooLarge(format!(
            "path is longer than {MAX_PATH_BYTES} bytes"
        )));
    }
    let mut parts = Vec::new();
    for comp in path.split('/') {
        match comp {
            "" | "." => continue,
            ".." => return unsafe_("path has a `..` component"),
            c => {
                if let Some(reason) = windows_problem(c) {
                    return unsafe_(reason);
                }
                parts.push(c);
            }
        }
    }
    // npm strips the first component whatever its name (`package/` by convention).
    if parts.len() <= 1 {
        return Ok(None);
    }
    let rest = &parts[1..];
    if rest.len() > MAX_PATH_DEPTH {
        return Err(PathProblem::TooLarge(format!(
            "path is deeper than {MAX_PATH_DEPTH} folders"
        )));
    }
    let joined = rest.join("/");
    if joined.len() > MAX_PATH_BYTES {
        return Err(PathProblem::TooLarge(format!(
            "path is longer than {MAX_PATH_BYTES} bytes"
        )));
    }
    Ok(Some(rest.iter().collect()))
}

/// Why Windows could not hold `name` as written, if it cannot. Refused on every platform: a
/// package that stages on Linux must stage the same on Windows.
pub(crate) fn windows_problem(name: &str) -> Option<&'static str> {
    // A colon is a drive prefix (`C:`) or an NTFS alternate data stream; the others are wildcard
    // and redirection characters the Win32 API refuses in names.
    if name.contains(['<', '>', ':', '"', '|', '?', '*']) {
        return Some("path has a character Windows refuses (<>:\"|?*)");
    }
    // Control characters (NUL included) end or corrupt names in Win32 calls and terminals.
    if name.chars().any(|c| (c as u32) < 0x20) {
        return Some("path has a control character");
    }
    // Windows silently trims a trailing dot or space, turning the name into another one.
    if name.ends_with('.') || name.ends_with(' ') {
        return Some("path has a name ending in a dot or space");
    }
    if is_windows_device(name) {
        return Some("path has a device name Windows reserves");
    }
    None
}

/// Device names Windows resolves in every folder, whatever the case and extension (`nul.js`,
/// `Com1.tar.gz` and `LPT¹` are all devices); spaces before the extension are trimmed too.
fn is_windows_device(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or("").trim_end_matches(' ');
    let upper = stem.to_ascii_uppercase();
    if matches!(
        upper.as_str(),
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$"
    ) {
        return true;
    }
    let Some(port) = upper
        .strip_prefix("COM")
        .or_else(|| upper.strip_prefix("LPT"))
    else {
        return false;
    };
    // COM0-9 and LPT0-9, and the superscript digits Windows also maps to the ports.
    let mut chars = port.chars();
    matches!(
        (chars.next(), chars.next()),
        (Some('0'..='9' | '¹' | '²' | '³'), None)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::testkit::{refusal, tgz};
    use tar::EntryType;

    #[test]
    fn sanitize_rules() {
        let ok = |p: &str| sanitize(p.as_bytes()).ok().flatten();
        assert_eq!(ok("package/a/b.js"), Some(PathBuf::from("a/b.js")));
        assert_eq!(ok("x/./a//b"), Some(PathBuf::from("a/b")));
        assert_eq!(ok("package/"), None);
        assert!(sanitize(b"package/aux.txt").is_err());
        assert!(sanitize(b"package/com7").is_err());
        assert!(ok("package/computer.js").is_some());
    }

    #[test]
    fn sanitize_refuses_what_windows_cannot_hold() {
        let refused = |name: &str| {
            let p = format!("package/lib/{name}");
            matches!(sanitize(p.as_bytes()), Err(PathProblem::Unsafe(_)))
        };
        for c in ['<', '>', ':', '"', '|', '?', '*'] {
            assert!(refused(&format!("a{c}b.js")), "{c}");
        }
        for c in 0u8..0x20 {
            let name = format!("a{}b", c as char);
            assert!(refused(&name), "control {c:#x}");
        }
        for dev in ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"] {
            assert!(refused(dev), "{dev}");
            assert!(refused(&dev.to_ascii_lowercase()), "{dev}");
            assert!(refused(&format!("{dev}.txt")), "{dev}.txt");
        }
        for port in ["COM", "LPT"] {
            for d in ["0", "1", "5", "9", "¹", "²", "³"] {
                assert!(refused(&format!("{port}{d}")), "{port}{d}");
                assert!(refused(&format!("{}{d}", port.to_lowercase())), "{port}{d}");
                assert!(refused(&format!("{port}{d}.tar.gz")), "{port}{d}.tar.gz");
            }
        }
        assert!(refused("nul.txt"));
        assert!(refused("com1.tar.gz"));
        assert!(refused("Aux .js"));
        assert!(refused("trailing."));
        assert!(refused("trailing "));
        assert!(refused("dir./x"));
        // Near misses are ordinary names.
        for ok in [
            "console.js",
            "com10",
            "lpt",
            "nul_",
            "auxiliary.js",
            "com¹x",
            "COM⁴",
            "a.b.c",
            ".npmignore",
        ] {
            assert!(
                matches!(sanitize(format!("package/{ok}").as_bytes()), Ok(Some(_))),
                "{ok}"
            );
        }
    }

    #[test]
    fn refuses_windows_names_through_the_extractor() {
        for name in ["package/nul.txt", "package/a|b", "package/COM\u{b2}"] {
            let data = tgz(&[(name, EntryType::Regular, b"x")]);
            let err = refusal(&data);
            assert_eq!(err.code(), "EUNSAFE_ENTRY", "{name}");
        }
    }
}
