// A package registry on 127.0.0.1 for the benchmark and the install test: one package document
// and its tarball, with ETags, and request counts by kind.
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import http from 'node:http'
import { createRequire } from 'node:module'
import path from 'node:path'

/** Sum of file sizes and file count of a .tgz, as a registry's dist.unpackedSize/fileCount. */
function tarStats(tgz) {
  const lines = execFileSync('tar', ['-tzvf', tgz], { encoding: 'utf8', maxBuffer: 64 << 20 }).trim().split('\n')
  const files = lines.filter((l) => l.startsWith('-'))
  return { unpackedSize: files.reduce((n, l) => n + Number(l.split(/\s+/)[2]), 0), fileCount: files.length }
}

/** The loopback registry: one package document and its tarballs; counts requests by kind. */
export function startRegistry() {
  const tarballs = new Map()
  let doc = null
  const counts = { doc: 0, tarball: 0 }
  const server = http.createServer((req, res) => {
    // ETags as npm's registry sends them: the addon caches the document and keeps tarball bytes.
    if (req.url === '/kanban') {
      counts.doc += 1
      const body = Buffer.from(JSON.stringify(doc))
      const etag = `"${createHash('sha1').update(body).digest('hex')}"`
      if (req.headers['if-none-match'] === etag) {
        res.writeHead(304, { etag })
        return res.end()
      }
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length, etag })
      return res.end(body)
    }
    const tgz = tarballs.get(req.url)
    if (tgz) {
      counts.tarball += 1
      const etag = `"${createHash('sha1').update(tgz).digest('hex')}"`
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': tgz.length, etag })
      return res.end(tgz)
    }
    res.writeHead(404)
    res.end()
  })
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const url = `http://127.0.0.1:${server.address().port}/`
      resolve({
        url,
        counts,
        close: () => new Promise((r) => (server.closeAllConnections(), server.close(r))),
        /** Publishes `file` as kanban@version, the only version and `latest`. */
        publish(version, file) {
          const data = fs.readFileSync(file)
          const tpath = `/kanban/-/kanban-${version}.tgz`
          tarballs.clear()
          tarballs.set(tpath, data)
          doc = {
            name: 'kanban',
            'dist-tags': { latest: version },
            versions: {
              [version]: {
                name: 'kanban',
                version,
                bin: { kanban: 'dist/cli.js' },
                dist: {
                  tarball: `${url}kanban/-/kanban-${version}.tgz`,
                  integrity: `sha512-${createHash('sha512').update(data).digest('base64')}`,
                  ...tarStats(file),
                },
              },
            },
          }
        },
      })
    }),
  )
}


/**
 * The native modules an app bundles, copied under `work/native`: node-pty's package.json, lib/ and
 * its binaries (prebuilds/ for this platform, or build/Release/ where it was compiled). The dev
 * dependency is the node-pty the runtime asks for (^1.2.0-beta.11), so the compatibility guard
 * passes as it does in the app. Returns the folder that contains `node-pty/`.
 */
export function bundledNativeDeps(work) {
  const src = path.dirname(createRequire(import.meta.url).resolve('node-pty/package.json'))
  const dest = path.join(work, 'native', 'node-pty')
  const binaries = [`prebuilds/${process.platform}-${process.arch}`, 'build/Release']
  for (const part of ['package.json', 'lib', ...binaries.filter((b) => fs.existsSync(path.join(src, b)))]) {
    fs.cpSync(path.join(src, part), path.join(dest, part), { recursive: true })
  }
  return path.dirname(dest)
}
