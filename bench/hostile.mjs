// The benchmark's memory check on hostile input: each input the test suite refuses is staged by
// a fresh child process from a loopback registry; the child must reject with the expected code,
// and its peak RSS is reported against the 80 MB target. The inputs are small on the wire and
// huge inside (a 300 MiB tar name, a 300 MiB PAX record, a 1 GiB gzip bomb, a 512 MiB document),
// so a stager that buffers any of them shows it here.
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipBomb, hugeLongName, hugePaxPath } from '../scripts/fixtures/hostile.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const MiB = 1 << 20
const sri = (data) => `sha512-${createHash('sha512').update(data).digest('base64')}`

/** A registry serving one document (or a streamed giant one) and one tarball. */
function serve(tarball, { integrity, hugeDocument } = {}) {
  const server = http.createServer((req, res) => {
    const url = `http://127.0.0.1:${server.address().port}/`
    if (req.url === '/kanban' && hugeDocument) {
      // 512 MiB of JSON, streamed: chunked, no Content-Length, so only a streaming cap stops it.
      res.writeHead(200, { 'content-type': 'application/json' })
      const filler = Buffer.alloc(MiB, 'a')
      let sent = 0
      res.write('{"name":"kanban","padding":"')
      const pump = () => {
        while (sent < hugeDocument && !res.destroyed) {
          sent += filler.length
          if (!res.write(filler)) return void res.once('drain', pump)
        }
        res.end('"}')
      }
      return pump()
    }
    if (req.url === '/kanban') {
      const doc = {
        name: 'kanban',
        'dist-tags': { latest: '9.0.0' },
        versions: {
          '9.0.0': {
            name: 'kanban',
            version: '9.0.0',
            dist: { tarball: `${url}kanban/-/kanban-9.0.0.tgz`, integrity: integrity ?? sri(tarball), unpackedSize: 1 << 20, fileCount: 2 },
          },
        },
      }
      return res.end(JSON.stringify(doc))
    }
    if (req.url === '/kanban/-/kanban-9.0.0.tgz') {
      res.writeHead(200, { 'content-length': tarball.length })
      return res.end(tarball)
    }
    res.writeHead(404)
    res.end()
  })
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)))
}

function stageInChild(registry, work, native) {
  const opts = { userData: path.join(work, `hostile-${Date.now()}`), currentVersion: '1.0.0', nativeDepsSource: native, registry, retries: 0 }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(here, 'child.mjs'), 'addon', JSON.stringify(opts)], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.on('exit', () => {
      fs.rmSync(opts.userData, { recursive: true, force: true })
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()))
      } catch {
        reject(new Error(`hostile child printed ${out.slice(0, 200)}`))
      }
    })
  })
}

/** Runs every hostile input; returns rows `{ name, code, expected, peakRssMB }`. */
export async function hostile(work, native) {
  const longName = await hugeLongName()
  const cases = [
    { name: '300 MiB GNU long name', expected: 'ETOO_LARGE', tarball: longName },
    { name: '300 MiB GNU long name, integrity mismatch', expected: 'EINTEGRITY', tarball: longName, integrity: sri(Buffer.from('other')) },
    { name: '300 MiB PAX path record', expected: 'ETOO_LARGE', tarball: await hugePaxPath() },
    { name: '1 GiB gzip bomb', expected: 'ETOO_LARGE', tarball: await gzipBomb(1024 * MiB) },
    { name: '512 MiB package document', expected: 'ETOO_LARGE', tarball: Buffer.alloc(0), hugeDocument: 512 * MiB },
  ]
  const rows = []
  for (const c of cases) {
    const server = await serve(c.tarball, c)
    try {
      const r = await stageInChild(`http://127.0.0.1:${server.address().port}/`, work, native)
      rows.push({ name: c.name, expected: c.expected, code: r.outcome?.error ?? r.outcome?.kind, peakRssMB: r.peakRssMB })
    } finally {
      server.closeAllConnections()
      await new Promise((r) => server.close(r))
    }
  }
  return rows
}
