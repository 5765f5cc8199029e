// A package registry on 127.0.0.1 for the tests, the benchmark and the install test: package
// documents with dist-tags and integrity, tarballs, a log of every request and of the bytes on
// the wire, and per-route misbehaviour (scripted replies, held or paced bodies, byte ranges, cut
// connections).
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import http from 'node:http'
import https from 'node:https'

/** The `sha512-…` integrity npm advertises for `data`. */
export function sri(data) {
  return `sha512-${createHash('sha512').update(data).digest('base64')}`
}

/** A strong ETag for `body`, as npm's registry sends one. */
function etagOf(body) {
  return `"${createHash('sha1').update(body).digest('hex')}"`
}

const never = () => new Promise(() => {})

/** Sum of file sizes and file count of a .tgz, as a registry's dist.unpackedSize/fileCount. */
export function tarStats(file) {
  const lines = execFileSync('tar', ['-tzvf', file], { encoding: 'utf8', maxBuffer: 64 << 20 }).trim().split('\n')
  const files = lines.filter((l) => l.startsWith('-'))
  return { unpackedSize: files.reduce((n, l) => n + Number(l.split(/\s+/)[2]), 0), fileCount: files.length }
}

export class Registry {
  /** Every request, in order. */
  requests = []
  /** Route overrides by exact path, consulted before the defaults. */
  routes = new Map()
  url = ''
  port = 0
  /** Serve documents with an ETag (a hash of the body) and answer a matching If-None-Match with 304. */
  documentEtags = false
  /** Serve tarballs with an ETag, so a client may keep a cut download's bytes and resume them. */
  tarballEtags = false
  /** Document body bytes sent, 304s included as 0. */
  documentBytes = 0
  /** Every byte written to a closed connection, headers included. */
  wireBytes = 0
  #server
  // Every accepted socket, so close() ends them all: a socket some path left half-open would
  // otherwise hold close() open.
  #sockets = new Set()
  #docs = new Map()
  #tarballs = new Map()

  /** Starts on a free loopback port; with `tls` it serves HTTPS with that key and certificate. */
  static async start(tls) {
    const r = new Registry()
    const handler = (req, res) => {
      void r.#handle(req, res)
    }
    r.#server = tls ? https.createServer(tls, handler) : http.createServer(handler)
    r.#server.on('connection', (sock) => {
      r.#sockets.add(sock)
      sock.on('close', () => {
        r.#sockets.delete(sock)
        r.wireBytes += sock.bytesWritten
      })
    })
    await new Promise((resolve) => r.#server.listen(0, '127.0.0.1', resolve))
    r.port = r.#server.address().port
    r.url = `${tls ? 'https' : 'http'}://127.0.0.1:${r.port}/`
    return r
  }

  /**
   * Sends ETags on documents and tarballs, as npm's registry does: a client caches the document
   * and keeps a cut download's bytes to resume them.
   */
  withEtags() {
    this.documentEtags = true
    this.tarballEtags = true
    return this
  }

  tarballPath(name, version) {
    const base = name.split('/').pop()
    return `/${name}/-/${base}-${version}.tgz`
  }

  /** Where npm serves a version's attestations. */
  attestationsPath(name, version) {
    return `/-/npm/v1/attestations/${name}@${version}`
  }

  /** The document's path as a client requests it: a scoped name's `/` is escaped. */
  docPath(name) {
    return `/${name.replace('/', '%2f')}`
  }

  /** Publishes versions of `name` and points dist-tags at them. */
  publish(name, versions, distTags, tarballBase) {
    const origin = this.url.replace(/\/$/, '')
    const doc = { name, 'dist-tags': distTags, versions: {} }
    for (const v of versions) {
      const path = this.tarballPath(name, v.version)
      this.#tarballs.set(path, { body: v.tarball, etag: undefined })
      doc.versions[v.version] = {
        name,
        version: v.version,
        bin: v.bin ?? { kanban: 'dist/cli.js' },
        dist: {
          tarball: `${tarballBase ?? origin}${path}`,
          integrity: v.integrity ?? sri(v.tarball),
          fileCount: v.fileCount ?? 10,
          unpackedSize: v.unpackedSize ?? 1 << 20,
        },
      }
      if (v.time) (doc.time ??= {})[v.version] = v.time
      if (v.deprecated) doc.versions[v.version].deprecated = v.deprecated
      if (v.attestations) {
        const attPath = this.attestationsPath(name, v.version)
        const body = v.attestations
        doc.versions[v.version].dist.attestations = {
          url: `${origin}${attPath}`,
          provenance: { predicateType: 'https://slsa.dev/provenance/v1' },
        }
        this.routes.set(attPath, (_req, res) => {
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length })
          res.end(body)
        })
      }
    }
    this.#docs.set(this.docPath(name), doc)
  }

  /**
   * Publishes the .tgz at `file` as `name`@`version`, the only version and `latest`, declaring
   * its real unpacked size and file count (the stager bounds extraction by them).
   */
  publishFile(name, version, file) {
    this.publish(name, [{ version, tarball: fs.readFileSync(file), ...tarStats(file) }], { latest: version })
  }

  /** Sets a raw document (for malformed or hand-made ones). */
  setDoc(name, doc) {
    this.#docs.set(this.docPath(name), doc)
  }

  count(path) {
    return this.requests.filter((r) => r.url === path).length
  }

  tarballRequests() {
    return this.requests.filter((r) => r.url.endsWith('.tgz')).length
  }

  async #handle(req, res) {
    const url = req.url ?? '/'
    this.requests.push({ method: req.method ?? 'GET', url, headers: req.headers })
    const override = this.routes.get(url)
    if (override) return override(req, res)
    this.serveDefault(req, res)
  }

  /** What the registry serves at a path without an override: documents and tarballs, else 404. */
  serveDefault(req, res) {
    const url = req.url ?? '/'
    const doc = this.#docs.get(url)
    if (doc) return this.#serveDocument(req, res, Buffer.from(JSON.stringify(doc)))
    const tgz = this.#tarballs.get(url)
    if (tgz) {
      const headers = { 'content-type': 'application/octet-stream', 'content-length': tgz.body.length }
      // Hashed once, as a registry stores its ETags: hashing 11 MB on every request would sit
      // on every client's path to the first byte, and the benchmark would time it.
      if (this.tarballEtags) headers.etag = tgz.etag ??= etagOf(tgz.body)
      res.writeHead(200, headers)
      res.end(tgz.body)
      return
    }
    res.writeHead(404, { 'content-type': 'application/json' })
    res.end('{"error":"not found"}')
  }

  #serveDocument(req, res, body) {
    const headers = { 'content-type': 'application/json', 'content-length': body.length }
    if (this.documentEtags) {
      headers.etag = etagOf(body)
      if (req.headers['if-none-match'] === headers.etag) {
        res.writeHead(304, { etag: headers.etag })
        res.end()
        return
      }
    }
    this.documentBytes += body.length
    res.writeHead(200, headers)
    res.end(body)
  }

  /**
   * Serves `body` at `path` with its first `head` bytes at once and the rest once `until()`
   * settles (never, without it); `onHead` is called when the first bytes are written.
   */
  hold(path, body, { head = 10, until = never, onHead } = {}) {
    this.routes.set(path, async (_req, res) => {
      res.writeHead(200, { 'content-length': body.length })
      res.write(body.subarray(0, head))
      onHead?.()
      await until()
      if (!res.destroyed) res.end(body.subarray(head))
    })
  }

  /**
   * Serves `body` at `path` in `chunk`-byte writes, `pace` ms apart, honouring `Range` with
   * `If-Range` against its ETag, and cutting request `i`'s connection at the byte `cutAt(i, start)`
   * names. Returns the log of what each request was sent and the body bytes sent in all.
   */
  serveBody(path, body, o = {}) {
    const log = []
    const chunk = o.chunk ?? 64 * 1024
    this.routes.set(path, async (req, res) => {
      const i = log.length
      const etag = typeof o.etag === 'function' ? o.etag(i) : o.etag === undefined ? etagOf(body) : o.etag
      const range = req.headers.range
      const ifRange = req.headers['if-range']
      const m = /^bytes=(\d+)-$/.exec(range ?? '')
      const honoured = o.ranges ?? true
      const partial = !!m && honoured && (o.ignoreIfRange || ifRange === undefined || ifRange === etag)
      const start = partial ? Math.min(Number(m[1]), body.length) : 0
      const entry = { range, ifRange, status: partial ? 206 : 200, bytes: 0 }
      log.push(entry)
      const headers = { 'content-type': 'application/octet-stream', 'content-length': body.length - start }
      if (etag) headers.etag = etag
      if (honoured) headers['accept-ranges'] = 'bytes'
      if (partial) headers['content-range'] = `bytes ${start + (o.shift ?? 0)}-${body.length - 1}/${body.length}`
      res.writeHead(entry.status, headers)
      const cut = o.cutAt?.(i, start)
      const end = cut === undefined ? body.length : Math.max(start, Math.min(body.length, cut))
      for (let off = start; off < end && !res.destroyed; off += chunk) {
        const piece = body.subarray(off, Math.min(end, off + chunk))
        entry.bytes += piece.length
        await new Promise((r) => res.write(piece, () => r()))
        if (o.pace) await new Promise((r) => setTimeout(r, o.pace))
      }
      // A cut: the connection ends without the rest of the body.
      if (end === body.length) res.end()
      else res.destroy()
    })
    return { log, served: () => log.reduce((n, e) => n + e.bytes, 0) }
  }

  /**
   * Answers the first `n` requests for `path` with `fail`, then as it would without an override.
   * Returns the times the requests arrived.
   */
  failFirst(path, n, fail) {
    const times = []
    this.routes.set(path, (req, res) => {
      times.push(Date.now())
      if (times.length <= n) return fail(res)
      this.serveDefault(req, res)
    })
    return times
  }

  async close() {
    for (const sock of this.#sockets) sock.destroy()
    this.#server.closeAllConnections()
    await new Promise((resolve) => this.#server.close(() => resolve()))
  }
}
