//! The gzip layer: every member inflated in turn, only zero padding after the last, and the
//! inflated bytes capped while they are read.

use super::limits::{archive_error, ExtractLimits, LimitExceeded};
use crate::shared::error::Result;
use flate2::bufread::GzDecoder;
use std::io::{self, BufRead, BufReader, Read};

/// Counts inflated bytes and fails once they pass the cap: a gzip bomb is stopped while it
/// inflates, whatever its tar headers claim.
pub(super) struct CappedReader<R> {
    inner: R,
    read: u64,
    cap: u64,
}

impl<R: Read> Read for CappedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.cap {
            return Err(io::Error::other(LimitExceeded(self.cap)));
        }
        Ok(n)
    }
}

/// The inflated stream of `src`, failing once it grows past what `limits` can account for.
pub(super) fn inflate<R: Read>(
    src: R,
    limits: ExtractLimits,
) -> CappedReader<GzMembers<BufReader<R>>> {
    // Headers, padding and PAX records cost at most a few KiB per entry on top of file bodies.
    let cap = limits
        .max_bytes
        .saturating_add(limits.max_entries.saturating_mul(4096))
        .saturating_add(1 << 20);
    CappedReader {
        inner: GzMembers::new(BufReader::with_capacity(GZ_BUF, src)),
        read: 0,
        cap,
    }
}

/// The raw bytes read ahead for the decoder: flate2's own reader buffers as much.
const GZ_BUF: usize = 32 * 1024;

/// Why bytes after the last gzip member are refused.
#[derive(Debug)]
struct TrailingBytes;
impl std::fmt::Display for TrailingBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("bytes that are neither a gzip member nor zero padding follow the gzip stream")
    }
}
impl std::error::Error for TrailingBytes {}

/// Every gzip member of a stream, inflated in turn, as npm and GNU tar read it: a tarball written
/// as several concatenated members (parallel compressors do this) is one archive, not its first
/// piece. After the last member only zero bytes may follow (the padding some writers add to fill
/// a block, which zlib, node-tar and GNU tar accept); anything else is a corrupt archive.
pub(super) struct GzMembers<R: BufRead> {
    /// The member being inflated; `None` once the stream has ended.
    member: Option<GzDecoder<R>>,
}

impl<R: BufRead> GzMembers<R> {
    fn new(src: R) -> Self {
        GzMembers {
            member: Some(GzDecoder::new(src)),
        }
    }
}

impl<R: BufRead> Read for GzMembers<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(member) = &mut self.member else {
                return Ok(0);
            };
            let n = member.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            // The member is whole (its CRC and length checked); see what follows it.
            let mut src = self.member.take().expect("a member").into_inner();
            match src.fill_buf()?.first() {
                Some(0) => {
                    skip_zero_padding(&mut src)?;
                    return Ok(0);
                }
                // The next member; a byte that does not start one fails its header check.
                Some(_) => self.member = Some(GzDecoder::new(src)),
                None => return Ok(0),
            }
        }
    }
}

/// Reads `src` to its end, refusing any byte that is not zero.
fn skip_zero_padding<R: BufRead>(src: &mut R) -> io::Result<()> {
    loop {
        let chunk = src.fill_buf()?;
        if chunk.is_empty() {
            return Ok(());
        }
        if chunk.iter().any(|b| *b != 0) {
            return Err(io::Error::new(io::ErrorKind::InvalidData, TrailingBytes));
        }
        let n = chunk.len();
        src.consume(n);
    }
}

/// Ok once the inflated stream, and with it the raw source, is read to its end.
pub(super) fn drain<R: Read>(
    mut capped: CappedReader<GzMembers<BufReader<R>>>,
    url: &str,
) -> Result<()> {
    // Read the inflated stream to its end: the gzip trailer's CRC and length are only checked
    // there, and a truncated stream must fail here rather than stage a runtime. The members
    // reader ends only at the raw source's end, so the download is consumed to its last byte
    // and its hash can be checked.
    io::copy(&mut capped, &mut io::sink()).map_err(|e| archive_error(url, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::testkit::{gzip, plain_tar, refusal, refusal_with, run, tgz, LIMITS};
    use flate2::Compression;
    use std::fs;
    use tar::EntryType;

    #[test]
    fn truncated_and_corrupt_streams_fail() {
        let data = tgz(&[("package/a", EntryType::Regular, &[7u8; 50_000])]);
        let cut = &data[..data.len() - 10];
        assert_eq!(refusal(cut).code(), "EBADARCHIVE");
        let mut flipped = data.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0xff;
        let err = refusal(&flipped);
        assert!(matches!(err.code(), "EBADARCHIVE" | "ETOO_LARGE"), "{err}");
    }

    #[test]
    fn gzip_bomb_stops_at_the_cap() {
        // A single entry claiming a small size followed by a long run of zeros after the archive.
        let mut tar_bytes = plain_tar(&[("package/a", b"x")]);
        tar_bytes.resize(tar_bytes.len() + (LIMITS.max_bytes as usize) * 3, 0);
        let data = gzip(&tar_bytes, Compression::best());
        let small = ExtractLimits {
            max_bytes: 1 << 20,
            max_entries: 1,
        };
        let err = refusal_with(&data, small, false);
        assert_eq!(err.code(), "ETOO_LARGE");
    }

    #[test]
    fn accepts_zero_padding_after_the_gzip_stream_and_nothing_else() {
        let tar_bytes = plain_tar(&[
            ("package/package.json", b"{}"),
            ("package/dist/cli.js", b"console.log(1)"),
        ]);
        let one = gzip(&tar_bytes, Compression::fast());
        let two = [
            gzip(&tar_bytes[..1024], Compression::fast()),
            gzip(&tar_bytes[1024..], Compression::fast()),
        ]
        .concat();
        for stream in [&one, &two] {
            // A block's worth, a single byte and more than the read-ahead buffer of zeros.
            for pad in [512, 1, 3 * GZ_BUF + 7] {
                let data = [stream.clone(), vec![0u8; pad]].concat();
                let tmp = tempfile::tempdir().unwrap();
                let stats = run(&data, &tmp.path().join("out")).unwrap();
                assert_eq!(stats.files, 2, "padding {pad}");
            }
            // Anything else after the last member is refused, also after zeros.
            let mut late = vec![0u8; 3 * GZ_BUF];
            late.push(1);
            for tail in [b"x".to_vec(), vec![0, 0, 7], late, vec![0x1f]] {
                let data = [stream.clone(), tail.clone()].concat();
                let e = refusal(&data);
                assert_eq!(e.code(), "EBADARCHIVE", "tail of {} bytes", tail.len());
            }
        }
    }

    #[test]
    fn reads_every_gzip_member() {
        // One tar stream cut in two, each half its own gzip member: the second member holds
        // dist/cli.js, which a single-member reader would never see.
        let tar_bytes = plain_tar(&[
            ("package/package.json", b"{}"),
            ("package/dist/cli.js", b"console.log(1)"),
        ]);
        let mut data = gzip(&tar_bytes[..1024], Compression::fast());
        data.extend(gzip(&tar_bytes[1024..], Compression::fast()));
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("out");
        let stats = run(&data, &dest).unwrap();
        assert_eq!(stats.files, 2);
        assert_eq!(
            fs::read(dest.join("dist/cli.js")).unwrap(),
            b"console.log(1)"
        );
    }
}
