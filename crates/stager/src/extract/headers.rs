//! The tar headers: entry kinds, GNU long names and PAX records (capped before their bodies are
//! read), and the path and size they give the next entry.

use super::limits::{
    archive_error, too_large, unsafe_entry, MAX_EXTENDED_PATH_BYTES, MAX_EXTENSION_BYTES,
};
use crate::shared::error::{Limit, Result, StageError};
use crate::shared::text::clip;
use std::io::{self, Read};
use tar::EntryType;

/// The entry's raw path: a GNU long name's or a PAX path's if one came before it, else the
/// header's own.
pub(super) fn entry_path<R: Read>(
    entry: &tar::Entry<'_, R>,
    long_name: Option<Vec<u8>>,
    pax_path: Option<Vec<u8>>,
    url: &str,
) -> Result<Vec<u8>> {
    match (long_name, pax_path) {
        (Some(p), None) | (None, Some(p)) => Ok(p),
        (None, None) => Ok(entry.path_bytes().into_owned()),
        (Some(p), Some(_)) => Err(unsafe_entry(
            url,
            &clip(&String::from_utf8_lossy(&p)),
            "both a GNU long name and a PAX path name this entry",
        )),
    }
}

/// Ok for a regular file or a folder; links and every other kind are refused.
pub(super) fn check_kind(kind: EntryType, url: &str, shown: &str) -> Result<()> {
    match kind {
        EntryType::Regular | EntryType::Continuous | EntryType::Directory => Ok(()),
        EntryType::Symlink => Err(unsafe_entry(url, shown, "symbolic links are not allowed")),
        EntryType::Link => Err(unsafe_entry(url, shown, "hard links are not allowed")),
        other => Err(unsafe_entry(
            url,
            shown,
            &format!("entry type {other:?} is not a regular file or directory"),
        )),
    }
}

/// Ok when the entry has no PAX size or one equal to its header's.
pub(super) fn check_pax_size(
    header: &tar::Header,
    pax_size: Option<u64>,
    url: &str,
    shown: &str,
) -> Result<()> {
    // A PAX size that differs from the header's lets two tar readers see two different
    // archives (one reads the hidden bytes as more entries); refuse the ambiguity. The body
    // is read by the header's size, which is then the only one.
    let header_size = header.entry_size().map_err(|e| archive_error(url, e))?;
    match pax_size {
        Some(pax_size) if pax_size != header_size => Err(unsafe_entry(
            url,
            shown,
            &format!("PAX size {pax_size} disagrees with the header's {header_size}"),
        )),
        _ => Ok(()),
    }
}

/// What GNU long-name and PAX headers say about the next entry, applied to it here rather than by
/// the tar crate, so their sizes are checked before their bodies are read.
#[derive(Default)]
pub(super) struct Extensions {
    pub(super) long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pub(super) pax_path: Option<Vec<u8>>,
    pub(super) pax_size: Option<u64>,
    pax_seen: bool,
}

impl Extensions {
    pub(super) fn is_pending(&self) -> bool {
        self.long_name.is_some() || self.long_link.is_some() || self.pax_seen
    }

    /// Reads one extension header (`L`, `K`, `x` or `g`) into `self`, refusing an oversized one
    /// before buffering it.
    pub(super) fn read<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>, url: &str) -> Result<()> {
        let kind = entry.header().entry_type();
        let header_name = clip(&String::from_utf8_lossy(&entry.header().path_bytes()));
        let size = entry
            .header()
            .entry_size()
            .map_err(|e| archive_error(url, e))?;
        check_extension_size(kind, size, &header_name, url)?;
        self.check_first(kind, &header_name, url)?;
        let body = read_body(entry, size, url)?;
        match kind {
            EntryType::GNULongName => self.long_name = Some(trim_nuls(body)),
            EntryType::GNULongLink => self.long_link = Some(trim_nuls(body)),
            _ => {
                let global = kind == EntryType::XGlobalHeader;
                self.read_pax(&body, global, &header_name, url)?;
            }
        }
        Ok(())
    }

    /// Ok unless a header of this kind already describes the coming entry.
    fn check_first(&self, kind: EntryType, header_name: &str, url: &str) -> Result<()> {
        let twice = match kind {
            EntryType::GNULongName => self.long_name.is_some(),
            EntryType::GNULongLink => self.long_link.is_some(),
            EntryType::XHeader => self.pax_seen,
            _ => false,
        };
        // Readers disagree on which of two such headers wins; refuse the ambiguity.
        if twice {
            return Err(unsafe_entry(
                url,
                header_name,
                &format!("two {} headers describe one entry", kind_name(kind)),
            ));
        }
        Ok(())
    }

    /// Ok once every record of a PAX header's body is applied (or ignored: most keys are).
    fn read_pax(&mut self, body: &[u8], global: bool, header_name: &str, url: &str) -> Result<()> {
        self.pax_seen |= !global;
        for record in tar::PaxExtensions::new(body) {
            let record = record.map_err(|_| StageError::BadArchive {
                url: url.into(),
                reason: format!("malformed PAX record in `{header_name}`"),
            })?;
            let (key, value) = (record.key_bytes(), record.value_bytes());
            if matches!(key, b"path" | b"linkpath" | b"size") && global {
                // Readers disagree on whether a global path or size applies to every entry.
                return Err(unsafe_entry(
                    url,
                    header_name,
                    &format!(
                        "a global PAX header sets `{}`",
                        String::from_utf8_lossy(key)
                    ),
                ));
            }
            self.apply_pax(key, value, header_name, url)?;
        }
        Ok(())
    }

    /// Ok once one PAX record of an entry's own header is applied: its path or size.
    fn apply_pax(&mut self, key: &[u8], value: &[u8], header_name: &str, url: &str) -> Result<()> {
        match key {
            b"path" | b"linkpath" if value.len() > MAX_EXTENDED_PATH_BYTES => {
                return Err(too_large(
                    url,
                    Limit::Path,
                    format!(
                        "PAX `{}` is {} bytes, more than {MAX_EXTENDED_PATH_BYTES}",
                        String::from_utf8_lossy(key),
                        value.len()
                    ),
                ));
            }
            b"path" => self.pax_path = Some(value.to_vec()),
            // Links are refused whatever their target; the target itself is not needed.
            b"linkpath" => {}
            b"size" => {
                let size = std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or_else(|| unsafe_entry(url, header_name, "PAX size is not a number"))?;
                self.pax_size = Some(size);
            }
            _ => {}
        }
        Ok(())
    }
}

/// Ok when an extension header's declared size is within its cap, before a byte of it is read.
fn check_extension_size(kind: EntryType, size: u64, header_name: &str, url: &str) -> Result<()> {
    let is_name = matches!(kind, EntryType::GNULongName | EntryType::GNULongLink);
    // A long name's body is the name itself (plus a NUL), so it gets the path bound.
    let cap = if is_name {
        MAX_EXTENDED_PATH_BYTES as u64 + 1
    } else {
        MAX_EXTENSION_BYTES
    };
    if size > cap {
        return Err(too_large(
            url,
            Limit::ExtensionHeader,
            format!(
                "the {} header `{header_name}` holds {size} bytes, more than {cap}",
                kind_name(kind)
            ),
        ));
    }
    Ok(())
}

/// The extension header's body, exactly `size` bytes (already checked against its cap).
fn read_body<R: Read>(entry: &mut tar::Entry<'_, R>, size: u64, url: &str) -> Result<Vec<u8>> {
    let mut body = Vec::with_capacity(size as usize);
    entry
        .take(size)
        .read_to_end(&mut body)
        .map_err(|e| archive_error(url, e))?;
    if body.len() as u64 != size {
        return Err(archive_error(
            url,
            io::Error::from(io::ErrorKind::UnexpectedEof),
        ));
    }
    Ok(body)
}

/// A GNU long name or link without the NULs that end it.
fn trim_nuls(mut body: Vec<u8>) -> Vec<u8> {
    while body.last() == Some(&0) {
        body.pop();
    }
    body
}

/// How an extension header's kind is named in errors.
fn kind_name(kind: EntryType) -> &'static str {
    match kind {
        EntryType::GNULongName => "GNU long-name",
        EntryType::GNULongLink => "GNU long-link",
        EntryType::XGlobalHeader => "global PAX",
        _ => "PAX",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::testkit::{gzip, refusal, run};
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::fs;

    /// The cap an `ETOO_LARGE` error names, `None` for any other error.
    fn cap_hit(err: &StageError) -> Option<Limit> {
        match err {
            StageError::TooLarge { limit, .. } => Some(*limit),
            _ => None,
        }
    }

    #[test]
    fn refuses_pax_size_that_disagrees_with_the_header() {
        let mut b = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
        let record = b"12 size=600\n";
        let mut pax = tar::Header::new_ustar();
        pax.set_entry_type(EntryType::XHeader);
        pax.set_size(record.len() as u64);
        pax.set_cksum();
        b.append(&pax, &record[..]).unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_size(1);
        h.set_cksum();
        // 600 bytes of data: what the PAX size claims, hiding a second "entry" from the header.
        b.append_data(&mut h, "package/a.js", &[b'x'; 600][..])
            .unwrap();
        let data = b.into_inner().unwrap().finish().unwrap();
        let err = refusal(&data);
        assert_eq!(err.code(), "EUNSAFE_ENTRY", "{err}");
    }

    type RawRecord<'a> = (EntryType, &'a str, u64, &'a [u8]);

    /// A raw tar stream of (type, name, declared size, body) records, gzipped; the body may be
    /// shorter than the declared size, to show a header is refused before its body is read.
    fn raw_tgz(records: &[RawRecord]) -> Vec<u8> {
        let mut out = Vec::new();
        for (kind, name, size, body) in records {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(*kind);
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_size(*size);
            h.set_mode(0o644);
            h.set_cksum();
            out.extend_from_slice(h.as_bytes());
            out.extend_from_slice(body);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
        out.extend_from_slice(&[0u8; 1024]);
        gzip(&out, Compression::fast())
    }

    fn pax(records: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, v) in records {
            let rest = format!(" {k}={v}\n");
            let mut len = rest.len() + 1;
            while format!("{len}").len() + rest.len() != len {
                len += 1;
            }
            out.extend_from_slice(format!("{len}{rest}").as_bytes());
        }
        out
    }

    const L: EntryType = EntryType::GNULongName;
    const K: EntryType = EntryType::GNULongLink;
    const X: EntryType = EntryType::XHeader;
    const G: EntryType = EntryType::XGlobalHeader;
    const F: EntryType = EntryType::Regular;

    #[test]
    fn huge_extension_headers_are_refused_before_their_body_is_read() {
        // Each header declares 300 MiB but carries 1 KiB: reading it would fail as truncated,
        // so ETOO_LARGE shows the size was refused from the header alone.
        let huge = 300u64 << 20;
        for kind in [L, K, X, G] {
            let data = raw_tgz(&[
                (kind, "././@LongLink", huge, &[b'a'; 1024]),
                (F, "package/a.js", 1, b"x"),
            ]);
            let err = refusal(&data);
            assert_eq!(
                cap_hit(&err),
                Some(Limit::ExtensionHeader),
                "{kind:?}: {err}"
            );
            assert!(err.to_string().len() < 1000);
        }
    }

    #[test]
    fn extension_caps_sit_at_4_kib_names_and_64_kib_records() {
        let name = format!("package/{}", "n".repeat(MAX_EXTENDED_PATH_BYTES));
        let data = raw_tgz(&[
            (L, "././@LongLink", name.len() as u64, name.as_bytes()),
            (F, "package/a.js", 1, b"x"),
        ]);
        let err = refusal(&data);
        assert_eq!(cap_hit(&err), Some(Limit::ExtensionHeader), "{err}");

        // A PAX record under 64 KiB whose path is over 4 KiB.
        let rec = pax(&[("path", &name)]);
        let data = raw_tgz(&[
            (X, "pax", rec.len() as u64, &rec),
            (F, "package/a.js", 1, b"x"),
        ]);
        let err = refusal(&data);
        assert_eq!(cap_hit(&err), Some(Limit::Path), "{err}");
        assert!(err.to_string().len() < 1000);

        let rec = pax(&[("comment", &"c".repeat(MAX_EXTENSION_BYTES as usize))]);
        let data = raw_tgz(&[
            (X, "pax", rec.len() as u64, &rec),
            (F, "package/a.js", 1, b"x"),
        ]);
        let err = refusal(&data);
        assert_eq!(cap_hit(&err), Some(Limit::ExtensionHeader), "{err}");
    }

    #[test]
    fn long_names_and_pax_paths_apply_to_the_next_entry() {
        let long = format!("package/{}/cli.js", "d".repeat(120));
        let data = raw_tgz(&[
            (
                L,
                "././@LongLink",
                long.len() as u64 + 1,
                format!("{long}\0").as_bytes(),
            ),
            (F, "package/short", 2, b"ok"),
            (F, "package/plain.js", 1, b"p"),
        ]);
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("a");
        run(&data, &dest).unwrap();
        assert_eq!(
            fs::read(dest.join(&long["package/".len()..])).unwrap(),
            b"ok"
        );
        assert!(!dest.join("short").exists());
        assert_eq!(fs::read(dest.join("plain.js")).unwrap(), b"p");

        let rec = pax(&[
            ("path", "package/from-pax.js"),
            ("mtime", "1.5"),
            ("size", "2"),
        ]);
        let comment = pax(&[("comment", "built by git")]);
        let data = raw_tgz(&[
            (G, "global", comment.len() as u64, &comment),
            (X, "pax", rec.len() as u64, &rec),
            (F, "package/ignored", 2, b"px"),
        ]);
        let dest = tmp.path().join("b");
        run(&data, &dest).unwrap();
        assert_eq!(fs::read(dest.join("from-pax.js")).unwrap(), b"px");
        assert!(!dest.join("ignored").exists());
    }

    #[test]
    fn ambiguous_or_dangling_extensions_are_refused() {
        let name = b"package/a.js";
        let p = pax(&[("path", "package/b.js")]);
        let gpath = pax(&[("path", "package/c.js")]);
        let gsize = pax(&[("size", "1")]);
        let cases: Vec<(Vec<RawRecord>, &str)> = vec![
            (
                vec![
                    (L, "l", 12, name),
                    (L, "l", 12, name),
                    (F, "package/x", 0, b""),
                ],
                "EUNSAFE_ENTRY",
            ),
            (
                vec![
                    (X, "x", p.len() as u64, &p),
                    (X, "x", p.len() as u64, &p),
                    (F, "package/x", 0, b""),
                ],
                "EUNSAFE_ENTRY",
            ),
            (
                vec![
                    (L, "l", 12, name),
                    (X, "x", p.len() as u64, &p),
                    (F, "package/x", 0, b""),
                ],
                "EUNSAFE_ENTRY",
            ),
            (
                vec![
                    (G, "g", gpath.len() as u64, &gpath),
                    (F, "package/x", 0, b""),
                ],
                "EUNSAFE_ENTRY",
            ),
            (
                vec![
                    (G, "g", gsize.len() as u64, &gsize),
                    (F, "package/x", 0, b""),
                ],
                "EUNSAFE_ENTRY",
            ),
            (
                vec![(F, "package/x", 0, b""), (L, "l", 12, name)],
                "EBADARCHIVE",
            ),
            (
                vec![(X, "x", 7, b"garbage"), (F, "package/x", 0, b"")],
                "EBADARCHIVE",
            ),
        ];
        for (i, (records, code)) in cases.iter().enumerate() {
            let err = refusal(&raw_tgz(records));
            assert_eq!(err.code(), *code, "case {i}: {err}");
        }
    }
}
