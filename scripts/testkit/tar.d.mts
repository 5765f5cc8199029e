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

export function tarHeader(name: string, typeflag: string, size: number, mode: number, linkname?: string): Buffer
export function blockPadding(length: number): Buffer
export const END_OF_ARCHIVE: Buffer
export function tar(entries: TarEntry[]): Buffer
export function tgz(entries: TarEntry[]): Buffer
