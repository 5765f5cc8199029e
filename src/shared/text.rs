//! Strings from outside (a registry, a tarball, the user) cut to a length fit for a message or a
//! log line.

/// Longest run of characters from outside (a registry, a tarball, the user) that an error message
/// or field carries: enough to recognise a URL or an entry name, never a megabyte of hostile text.
pub const MAX_SHOWN_CHARS: usize = 300;

/// `s` cut to at most [`MAX_SHOWN_CHARS`] characters, with `…` marking the cut. Cuts on a character
/// boundary, so any UTF-8 input is safe.
pub fn clip(s: &str) -> String {
    match s.char_indices().nth(MAX_SHOWN_CHARS) {
        None => s.to_string(),
        Some((end, _)) => format!("{}…", &s[..end]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_short_strings_and_cuts_long_ones_on_a_char_boundary() {
        assert_eq!(clip("short"), "short");
        let exact = "a".repeat(MAX_SHOWN_CHARS);
        assert_eq!(clip(&exact), exact);
        let long = "é".repeat(MAX_SHOWN_CHARS * 10);
        let c = clip(&long);
        assert_eq!(c.chars().count(), MAX_SHOWN_CHARS + 1);
        assert!(c.ends_with('…'));
        assert!(c.starts_with("éé"));
        // Mixed widths: the cut never lands inside a character.
        let mixed: String = "a€😀".repeat(MAX_SHOWN_CHARS);
        assert_eq!(clip(&mixed).chars().count(), MAX_SHOWN_CHARS + 1);
    }
}
