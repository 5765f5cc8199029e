// A minimal tar writer for tests: it writes exactly the headers it is told to, hostile ones
// included, so the extractor can be fed what a real attacker would send.
import { gzipSync } from 'node:zlib'
import { blockPadding, END_OF_ARCHIVE, tarHeader } from '../../scripts/fixtures/tar.mjs'

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

const header = tarHeader

function pad(body: Buffer): Buffer {
  return Buffer.concat([body, blockPadding(body.length)])
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
  parts.push(END_OF_ARCHIVE)
  return Buffer.concat(parts)
}

export function tgz(entries: TarEntry[]): Buffer {
  return gzipSync(tar(entries))
}
