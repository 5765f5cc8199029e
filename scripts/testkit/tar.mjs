// A minimal ustar writer shared by the tests, the benchmark and the install test. It writes exactly
// the headers it is told to, hostile ones included, so the extractor can be fed what a real
// attacker would send; mtime, uid and gid are zero, so the same entries always give the same bytes.
import { gzipSync } from 'node:zlib'

/** NUL-terminated octal field of `width` bytes, as ustar stores numbers. */
function octal(n, width) {
  return n.toString(8).padStart(width - 1, '0') + '\0'
}

/**
 * One 512-byte ustar header. Names longer than 100 bytes go to the ustar prefix field, split at a
 * slash.
 */
export function tarHeader(name, typeflag, size, mode, linkname = '') {
  const h = Buffer.alloc(512)
  const nameBytes = Buffer.from(name)
  if (nameBytes.length > 100) {
    const cut = name.lastIndexOf('/')
    h.write(name.slice(cut + 1), 0)
    h.write(name.slice(0, cut), 345)
  } else {
    nameBytes.copy(h, 0)
  }
  h.write(octal(mode, 8), 100)
  h.write(octal(0, 8), 108)
  h.write(octal(0, 8), 116)
  h.write(octal(size, 12), 124)
  h.write(octal(0, 12), 136)
  h.write('        ', 148)
  h.write(typeflag, 156)
  h.write(linkname, 157)
  h.write('ustar\0', 257)
  h.write('00', 263)
  let sum = 0
  for (const b of h) sum += b
  h.write(octal(sum, 7) + ' ', 148)
  return h
}

/** The zero bytes that round `length` up to a whole 512-byte block. */
export function blockPadding(length) {
  const rest = length % 512
  return Buffer.alloc(rest === 0 ? 0 : 512 - rest)
}

/** The two zero blocks that end an archive. */
export const END_OF_ARCHIVE = Buffer.alloc(1024)

const TYPEFLAG = {
  file: '0',
  link: '1',
  symlink: '2',
  char: '3',
  dir: '5',
  fifo: '6',
}

function padded(body) {
  return Buffer.concat([body, blockPadding(body.length)])
}

/** PAX records, each led by its own length in decimal, counted in. */
function paxRecords(records) {
  let out = ''
  for (const [k, v] of Object.entries(records)) {
    const body = ` ${k}=${v}\n`
    let len = body.length + 1
    while (String(len).length + body.length !== len) len = String(len).length + body.length
    out += `${len}${body}`
  }
  return Buffer.from(out)
}

/** The raw (uncompressed) tar bytes of `entries`. */
export function tar(entries) {
  const parts = []
  for (const e of entries) {
    const type = e.type ?? 'file'
    const body = Buffer.from(e.body ?? '')
    if (e.pax) {
      const recs = paxRecords(e.pax)
      parts.push(tarHeader('PaxHeader', 'x', recs.length, 0o644), padded(recs))
    }
    const size = e.headerSize ?? (type === 'file' ? body.length : 0)
    parts.push(tarHeader(e.path, TYPEFLAG[type], size, e.mode ?? (type === 'dir' ? 0o755 : 0o644), e.linkname))
    if (type === 'file' && body.length > 0) parts.push(padded(body))
  }
  parts.push(END_OF_ARCHIVE)
  return Buffer.concat(parts)
}

/** `tar(entries)` gzipped, as a registry serves a package. */
export function tgz(entries) {
  return gzipSync(tar(entries))
}
