// The benchmark's memory check on hostile input: each input the test suite refuses is staged by
// a fresh child process from a loopback registry; the child must reject with the expected code,
// and its peak RSS is reported against the 80 MB target. The inputs are small on the wire and
// huge inside (a 300 MiB tar name, a 300 MiB PAX record, a 1 GiB gzip bomb, a 512 MiB document),
// so a stager that buffers any of them shows it here.
import fs from 'node:fs'
import path from 'node:path'
import { gzipBomb, hugeLongName, hugePaxPath } from '../scripts/fixtures/hostile.mjs'
import { Registry, sri } from '../scripts/testkit/registry.mjs'
import { runChild } from './runs.mjs'

const MiB = 1 << 20

/** Streams `size` bytes of JSON, chunked, no Content-Length: only a streaming cap stops it. */
function hugeDocument(size) {
  return (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    const filler = Buffer.alloc(MiB, 'a')
    let sent = 0
    res.write('{"name":"kanban","padding":"')
    const pump = () => {
      while (sent < size && !res.destroyed) {
        sent += filler.length
        if (!res.write(filler)) return void res.once('drain', pump)
      }
      res.end('"}')
    }
    pump()
  }
}

/** A registry serving kanban 9.0.0 as `tarball` (or a streamed giant document). */
async function serve(tarball, { integrity, hugeDocument: size } = {}) {
  const registry = await Registry.start()
  registry.publish('kanban', [{ version: '9.0.0', tarball, integrity, unpackedSize: 1 << 20, fileCount: 2 }], { latest: '9.0.0' })
  if (size) registry.routes.set('/kanban', hugeDocument(size))
  return registry
}

async function stageInChild(registry, work, native) {
  const opts = { userData: path.join(work, `hostile-${Date.now()}`), currentVersion: '1.0.0', nativeDepsSource: native, registry, retries: 0 }
  const { out, report } = await runChild('addon', opts)
  fs.rmSync(opts.userData, { recursive: true, force: true })
  if (!report) throw new Error(`hostile child printed ${out.slice(0, 200)}`)
  return report
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
    const registry = await serve(c.tarball, c)
    try {
      const r = await stageInChild(registry.url, work, native)
      rows.push({ name: c.name, expected: c.expected, code: r.outcome?.error ?? r.outcome?.kind, peakRssMB: r.peakRssMB })
    } finally {
      await registry.close()
    }
  }
  return rows
}
