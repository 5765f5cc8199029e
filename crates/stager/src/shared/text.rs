//! Strings from outside (a registry, a tarball, the user) made fit for a message or a log line:
//! the credentials a URL in them carries masked, then cut to a length.

use std::borrow::Cow;

/// Longest run of characters from outside (a registry, a tarball, the user) that an error message
/// or field carries: enough to recognise a URL or an entry name, never a megabyte of hostile text.
pub(crate) const MAX_SHOWN_CHARS: usize = 300;

/// What a masked password, token or signature is shown as.
const MASK: &str = "***";

/// `s` as shown: the credentials of every URL in it masked ([`redact_credentials`]), then cut to
/// at most [`MAX_SHOWN_CHARS`] characters, with `…` marking the cut. Cuts on a character
/// boundary, so any UTF-8 input is safe. Every string from outside that an error or a log entry
/// shows passes through here, so no message, field or log value shows a password.
pub(crate) fn clip(s: &str) -> String {
    let s = redact_credentials(s);
    match s.char_indices().nth(MAX_SHOWN_CHARS) {
        None => s.into_owned(),
        Some((end, _)) => format!("{}…", &s[..end]),
    }
}

/// `text` with the credentials of each URL in it masked: the userinfo (`http://user:pw@host/`
/// shows as `http://***@host/`) and the value of each query or fragment parameter whose name
/// says it is a secret (`token`, `access_token`, `auth`, `key`, `sig`, `signature`,
/// `X-Amz-Signature`, `X-Amz-Credential`, `password`...). A URL is whatever follows `://` up to
/// whitespace, a quote or the next URL ([`url_end`]); the rest of the text is kept as is.
pub(crate) fn redact_credentials(text: &str) -> Cow<'_, str> {
    if !text.contains("://") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let mut end = url_end(tail);
        // Punctuation after a URL in a sentence, and the `)` of a URL quoted in parentheses (as in
        // "for url (http://host/x): ..."), are not part of it.
        let opened = tail[..end].contains('(');
        while let Some(last) = tail[..end].chars().last() {
            let unbalanced = last == ')' && !opened;
            if !(unbalanced || matches!(last, '.' | ',' | ':' | ';' | '!')) {
                break;
            }
            end -= 1;
        }
        redact_url(&tail[..end], &mut out);
        rest = &tail[end..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Where the URL at the start of `tail` (what follows a `scheme://`) ends: at whitespace or a
/// quote, or where a URL inside it starts (`?next=https://u:p@host/`,
/// `http://proxy/http://u:p@host/`), which is one of its own. Looks at no byte past that end, so
/// a text of many URLs is scanned in linear time.
fn url_end(tail: &str) -> usize {
    for (i, c) in tail.char_indices() {
        if c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '<' | '>') {
            return i;
        }
        if c == ':' && tail[i..].starts_with("://") {
            let scheme = tail[..i].trim_end_matches(|c: char| {
                c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')
            });
            return scheme.len();
        }
    }
    tail.len()
}

/// Appends `url` (what follows its `scheme://`) to `out`, its credentials masked.
fn redact_url(url: &str, out: &mut String) {
    let authority_end = url.find(['/', '?', '#']).unwrap_or(url.len());
    let (authority, rest) = url.split_at(authority_end);
    match authority.rfind('@') {
        Some(at) => {
            out.push_str(MASK);
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    // The path, query and fragment as pieces between `?`, `&` and `#`: a secret `name=value` is
    // masked wherever it sits, in the query, in the fragment (where OAuth's implicit flow puts
    // `access_token`) or after a URL nested in a query.
    for piece in rest.split_inclusive(['?', '&', '#']) {
        let (param, sep) = match piece.char_indices().last() {
            Some((i, '?' | '&' | '#')) => piece.split_at(i),
            _ => (piece, ""),
        };
        match param.split_once('=') {
            Some((name, value)) if !value.is_empty() && is_secret_name(name) => {
                out.push_str(name);
                out.push('=');
                out.push_str(MASK);
            }
            _ => out.push_str(param),
        }
        out.push_str(sep);
    }
}

/// Whether a parameter named `name` carries a secret: a token, a key, a password, a
/// signature or a credential, in the spellings registries, CDNs and cloud storage use.
fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    const EXACT: [&str; 6] = ["sig", "code", "pw", "pwd", "pass", "jwt"];
    const PARTS: [&str; 8] = [
        "token",
        "secret",
        "passw",
        "signature",
        "credential",
        "auth",
        "key",
        "session",
    ];
    EXACT.contains(&name.as_str()) || PARTS.iter().any(|p| name.contains(p))
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

    #[test]
    fn userinfo_is_masked_and_the_rest_of_the_url_kept() {
        let cases = [
            ("http://user:pw@host/", "http://***@host/"),
            ("https://user@host:8443/a/b", "https://***@host:8443/a/b"),
            (
                "http://tok:x-oauth@127.0.0.1:5/kanban",
                "http://***@127.0.0.1:5/kanban",
            ),
            // An `@` in the password, unescaped: everything before the last one is masked.
            ("http://u:p@ss@host/x", "http://***@host/x"),
            // No userinfo: an `@` in the path (a scoped package) is not one.
            ("https://r/@scope%2fpkg", "https://r/@scope%2fpkg"),
            (
                "http://r/@scope/pkg/-/pkg-1.0.0.tgz",
                "http://r/@scope/pkg/-/pkg-1.0.0.tgz",
            ),
            ("http://host", "http://host"),
            ("http://u:p@host", "http://***@host"),
            ("http://u:p@host?token=t", "http://***@host?token=***"),
        ];
        for (url, shown) in cases {
            assert_eq!(redact_credentials(url), shown, "{url}");
            assert_eq!(clip(url), shown, "{url}");
        }
    }

    #[test]
    fn secret_query_and_fragment_values_are_masked() {
        let cases = [
            ("https://r/x.tgz?token=abc", "https://r/x.tgz?token=***"),
            (
                "https://s3/x.tgz?X-Amz-Algorithm=AWS4&X-Amz-Credential=AKID%2F1&X-Amz-Signature=f00&X-Amz-Security-Token=t",
                "https://s3/x.tgz?X-Amz-Algorithm=AWS4&X-Amz-Credential=***&X-Amz-Signature=***&X-Amz-Security-Token=***",
            ),
            (
                "https://blob/x.tgz?sv=2020&se=2030&sig=abc%3D",
                "https://blob/x.tgz?sv=2020&se=2030&sig=***",
            ),
            (
                "https://g/x?X-Goog-Signature=a&access_token=b&auth=c&apikey=d&key=e&password=f",
                "https://g/x?X-Goog-Signature=***&access_token=***&auth=***&apikey=***&key=***&password=***",
            ),
            ("https://r/x?a=1&b=&c", "https://r/x?a=1&b=&c"),
            ("https://r/x?token=", "https://r/x?token="),
            ("https://r/x?v=1#access_token=z&state=s", "https://r/x?v=1#access_token=***&state=s"),
            ("https://r/x#frag", "https://r/x#frag"),
        ];
        for (url, shown) in cases {
            assert_eq!(redact_credentials(url), shown, "{url}");
        }
    }

    #[test]
    fn urls_inside_text_are_masked_and_the_text_kept() {
        assert!(matches!(
            redact_credentials("no url here: user:pw@host"),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            redact_credentials(
                "error sending request for url (http://u:pw@h/kanban?token=t): connection refused"
            ),
            "error sending request for url (http://***@h/kanban?token=***): connection refused"
        );
        assert_eq!(
            redact_credentials("invalid option `registry`: `http://u:pw@h:99999/`: invalid port"),
            "invalid option `registry`: `http://***@h:99999/`: invalid port"
        );
        assert_eq!(
            redact_credentials("from \"https://a:b@x/\" to 'http://c:d@y/?sig=s' and http://z/"),
            "from \"https://***@x/\" to 'http://***@y/?sig=***' and http://z/"
        );
        // A URL inside another: each is masked.
        assert_eq!(
            redact_credentials("https://r/login?next=https://u:pw@h/x&token=t"),
            "https://r/login?next=https://***@h/x&token=***"
        );
        assert_eq!(
            redact_credentials("http://proxy/http://u:pw@h/"),
            "http://proxy/http://***@h/"
        );
        // A password with a `)` is not cut at it.
        assert_eq!(redact_credentials("http://u:p)w@h/"), "http://***@h/");
    }

    #[test]
    fn hostile_text_is_masked_in_linear_time() {
        // A megabyte of trailing punctuation after a URL, and of URLs: each byte is looked at a
        // few times, never once per other byte.
        let text = format!("http://u:p@h/{}", ")".repeat(1 << 20));
        assert!(redact_credentials(&text).starts_with("http://***@h/)"));
        let text = "http://u:p@h/ ".repeat(1 << 16);
        assert_eq!(redact_credentials(&text).matches("***@h/").count(), 1 << 16);
        let nested = format!("http://u:p@h/{}", "x://".repeat(1 << 18));
        assert!(redact_credentials(&nested).starts_with("http://***@h/x://x://"));
        let scheme = format!("http://h/{}://u:p@h/", "a".repeat(1 << 20));
        assert!(redact_credentials(&scheme).ends_with("a://***@h/"));
    }

    #[test]
    fn a_long_url_is_masked_before_it_is_cut() {
        // The userinfo alone is longer than what is shown: none of it may survive the cut.
        let url = format!("http://user:{}@host/", "s".repeat(MAX_SHOWN_CHARS * 2));
        assert_eq!(clip(&url), "http://***@host/");
        let url = format!("http://host/{}?token=secret", "p".repeat(MAX_SHOWN_CHARS));
        assert!(!clip(&url).contains("secret"));
    }
}
