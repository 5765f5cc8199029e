// A package registry on 127.0.0.1 that the tests start: package documents with dist-tags and
// integrity, tarballs built by the tests, request logs, and per-test misbehaviour.
import { createHash } from 'node:crypto'
import http from 'node:http'
import https from 'node:https'
import type { AddressInfo } from 'node:net'

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void | Promise<void>

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
}

export function sri(data: Buffer): string {
  return `sha512-${createHash('sha512').update(data).digest('base64')}`
}

export class Registry {
  readonly requests: { method: string; url: string; headers: http.IncomingHttpHeaders }[] = []
  private server!: http.Server
  private docs = new Map<string, unknown>()
  private tarballs = new Map<string, Buffer>()
  /** Route overrides by exact path, consulted before the defaults. */
  readonly routes = new Map<string, Handler>()
  url = ''
  port = 0
  /** Serve documents with an ETag (a hash of the body) and answer a matching If-None-Match with 304. */
  documentEtags = false
  /** Document body bytes sent, 304s included as 0. */
  documentBytes = 0

  /** Starts on a free loopback port; with `tls` it serves HTTPS with that key and certificate. */
  static async start(tls?: { key: string; cert: string }): Promise<Registry> {
    const r = new Registry()
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
      void r.handle(req, res)
    }
    r.server = tls ? https.createServer(tls, handler) : http.createServer(handler)
    await new Promise<void>((resolve) => r.server.listen(0, '127.0.0.1', resolve))
    r.port = (r.server.address() as AddressInfo).port
    r.url = `${tls ? 'https' : 'http'}://127.0.0.1:${r.port}/`
    return r
  }

  tarballPath(name: string, version: string): string {
    const base = name.split('/').pop()
    return `/${name}/-/${base}-${version}.tgz`
  }

  /** Where npm serves a version's attestations. */
  attestationsPath(name: string, version: string): string {
    return `/-/npm/v1/attestations/${name}@${version}`
  }

  /** The document's path as a client requests it: a scoped name's `/` is escaped. */
  docPath(name: string): string {
    return `/${name.replace('/', '%2f')}`
  }

  /** Publishes versions of `name` and points dist-tags at them. */
  publish(name: string, versions: Published[], distTags: Record<string, string>, tarballBase?: string): void {
    const doc: any = { name, 'dist-tags': distTags, versions: {} }
    for (const v of versions) {
      const path = this.tarballPath(name, v.version)
      this.tarballs.set(path, v.tarball)
      doc.versions[v.version] = {
        name,
        version: v.version,
        bin: v.bin ?? { kanban: 'dist/cli.js' },
        dist: {
          tarball: `${tarballBase ?? this.url.replace(/\/$/, '')}${path}`,
          integrity: v.integrity ?? sri(v.tarball),
          fileCount: v.fileCount ?? 10,
          unpackedSize: v.unpackedSize ?? 1 << 20,
        },
      }
      if (v.attestations) {
        const attPath = this.attestationsPath(name, v.version)
        const body = v.attestations
        doc.versions[v.version].dist.attestations = {
          url: `${this.url.replace(/\/$/, '')}${attPath}`,
          provenance: { predicateType: 'https://slsa.dev/provenance/v1' },
        }
        this.routes.set(attPath, (_req, res) => {
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length })
          res.end(body)
        })
      }
    }
    this.docs.set(this.docPath(name), doc)
  }

  /** Sets a raw document (for malformed or hand-made ones). */
  setDoc(name: string, doc: unknown): void {
    this.docs.set(this.docPath(name), doc)
  }

  count(path: string): number {
    return this.requests.filter((r) => r.url === path).length
  }

  tarballRequests(): number {
    return this.requests.filter((r) => r.url.endsWith('.tgz')).length
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = req.url ?? '/'
    this.requests.push({ method: req.method ?? 'GET', url, headers: req.headers })
    const override = this.routes.get(url)
    if (override) return override(req, res)
    this.serveDefault(req, res)
  }

  /** What the registry serves at a path without an override: documents and tarballs, else 404. */
  serveDefault(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = req.url ?? '/'
    const doc = this.docs.get(url)
    if (doc) {
      const body = Buffer.from(JSON.stringify(doc))
      if (this.documentEtags) {
        const etag = `"${createHash('sha1').update(body).digest('hex')}"`
        if (req.headers['if-none-match'] === etag) {
          res.writeHead(304, { etag })
          res.end()
          return
        }
        this.documentBytes += body.length
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length, etag })
        res.end(body)
        return
      }
      this.documentBytes += body.length
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length })
      res.end(body)
      return
    }
    const tgz = this.tarballs.get(url)
    if (tgz) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': tgz.length })
      res.end(tgz)
      return
    }
    res.writeHead(404, { 'content-type': 'application/json' })
    res.end('{"error":"not found"}')
  }

  async close(): Promise<void> {
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}
