// A minimal tar writer for tests: it writes exactly the headers it is told to, hostile ones
// included, so the extractor can be fed what a real attacker would send.
import { gzipSync } from 'node:zlib'

export type EntryType = 'file' | 'dir' | 'symlink' | 'link' | 'fifo' | 'char'

export interface TarEntry {
  path: string
  type?: EntryType
  body?: string | Buffer
  mode?: number
  linkname?: string
  /** Size written into the ustar header when it must lie about the body. */
  headerSize?: number
  /** PAX extended header records written before this entry. */
  pax?: Record<string, string>
}

const TYPEFLAG: Record<EntryType, string> = {
  file: '0',
  link: '1',
  symlink: '2',
  char: '3',
  dir: '5',
  fifo: '6',
}

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0'
}

/** One raw 512-byte ustar header, for records the entry list cannot express (GNU `L`, say). */
export function header(name: string, typeflag: string, size: number, mode = 0o644, linkname = ''): Buffer {
  const h = Buffer.alloc(512)
  const nameBytes = Buffer.from(name)
  if (nameBytes.length > 100) {
    // ustar prefix field for long names: split at a slash.
    const cut = name.lastIndexOf('/', name.length - 1 - 0)
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

export function pad(body: Buffer): Buffer {
  const rest = body.length % 512
  return rest === 0 ? body : Buffer.concat([body, Buffer.alloc(512 - rest)])
}

function paxRecords(records: Record<string, string>): Buffer {
  let out = ''
  for (const [k, v] of Object.entries(records)) {
    const body = ` ${k}=${v}\n`
    let len = body.length + 1
    while (String(len).length + body.length !== len) len = String(len).length + body.length
    out += `${len}${body}`
  }
  return Buffer.from(out)
}

/** The raw (uncompressed) tar bytes. */
export function tar(entries: TarEntry[]): Buffer {
  const parts: Buffer[] = []
  for (const e of entries) {
    const type = e.type ?? 'file'
    const body = Buffer.from(e.body ?? '')
    if (e.pax) {
      const recs = paxRecords(e.pax)
      parts.push(header('PaxHeader', 'x', recs.length, 0o644), pad(recs))
    }
    const size = e.headerSize ?? (type === 'file' ? body.length : 0)
    parts.push(header(e.path, TYPEFLAG[type], size, e.mode ?? (type === 'dir' ? 0o755 : 0o644), e.linkname))
    if (type === 'file' && body.length > 0) parts.push(pad(body))
  }
  parts.push(Buffer.alloc(1024))
  return Buffer.concat(parts)
}

export function tgz(entries: TarEntry[]): Buffer {
  return gzipSync(tar(entries))
}
