import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'

export type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>

export interface Published {
  version: string
  tarball: Buffer
  /** Overrides the integrity the document advertises (to simulate a mismatch). */
  integrity?: string
  bin?: Record<string, string>
  unpackedSize?: number
  fileCount?: number
  /**
   * npm's attestations response for the version: the document then names it in
   * `dist.attestations.url`, and the registry serves it there.
   */
  attestations?: Buffer
  /** The publish date the document's `time` gives the version; without it, none. */
  time?: string
  /** The document marks the version deprecated with this message. */
  deprecated?: string
}

/** What `serveBody` sent one request. */
export interface Served {
  range?: string
  ifRange?: string
  status: number
  bytes: number
}

export interface BodyOptions {
  /** Absolute byte position at which request `i`'s connection is cut; undefined: not cut. */
  cutAt?: (i: number, start: number) => number | undefined
  /** The ETag of request `i`'s answer; null sends none. Default: a hash of the body. */
  etag?: string | null | ((i: number) => string)
  /** Honour Range (with If-Range) at all. Default true. */
  ranges?: boolean
  /** Send 206 whatever If-Range says (a server that ignores it). */
  ignoreIfRange?: boolean
  /** Added to the first byte named in Content-Range (a server that gets it wrong). */
  shift?: number
  /** Bytes per write. Default 64 KiB. */
  chunk?: number
  /** Pause between writes, in ms. */
  pace?: number
}

export interface HoldOptions {
  /** Bytes written at once. Default 10. */
  head?: number
  /** The rest is written once this settles; never without it. */
  until?: () => Promise<unknown>
  /** Called once the first bytes are written. */
  onHead?: () => void
}

export function sri(data: Buffer): string
export function tarStats(file: string): { unpackedSize: number; fileCount: number }

export class Registry {
  readonly requests: { method: string; url: string; headers: IncomingHttpHeaders }[]
  /** Route overrides by exact path, consulted before the defaults. */
  readonly routes: Map<string, Handler>
  url: string
  port: number
  /** Serve documents with an ETag (a hash of the body) and answer a matching If-None-Match with 304. */
  documentEtags: boolean
  /** Serve tarballs with an ETag, so a client may keep a cut download's bytes and resume them. */
  tarballEtags: boolean
  /** Document body bytes sent, 304s included as 0. */
  documentBytes: number
  /** Every byte written to a closed connection, headers included. */
  wireBytes: number

  /** Starts on a free loopback port; with `tls` it serves HTTPS with that key and certificate. */
  static start(tls?: { key: string; cert: string }): Promise<Registry>
  /** Sends ETags on documents and tarballs, as npm's registry does. */
  withEtags(): this
  tarballPath(name: string, version: string): string
  /** Where npm serves a version's attestations. */
  attestationsPath(name: string, version: string): string
  /** The document's path as a client requests it: a scoped name's `/` is escaped. */
  docPath(name: string): string
  /** Publishes versions of `name` and points dist-tags at them. */
  publish(name: string, versions: Published[], distTags: Record<string, string>, tarballBase?: string): void
  /** Publishes the .tgz at `file` as the only version and `latest`, with its real size and file count. */
  publishFile(name: string, version: string, file: string): void
  /** Sets a raw document (for malformed or hand-made ones). */
  setDoc(name: string, doc: unknown): void
  count(path: string): number
  tarballRequests(): number
  /** What the registry serves at a path without an override: documents and tarballs, else 404. */
  serveDefault(req: IncomingMessage, res: ServerResponse): void
  /** Serves `body` at `path`: the first `head` bytes at once, the rest once `until()` settles. */
  hold(path: string, body: Buffer, options?: HoldOptions): void
  /** Serves `body` at `path` paced, with byte ranges and cuts as configured; returns what was sent. */
  serveBody(path: string, body: Buffer, options?: BodyOptions): { log: Served[]; served: () => number }
  /** Answers the first `n` requests for `path` with `fail`, then normally; returns their arrival times. */
  failFirst(path: string, n: number, fail: (res: ServerResponse) => void): number[]
  close(): Promise<void>
}
