// The flaky-link scenario: the real runtime tarball from a loopback registry that cuts every
// connection after 2 MB of body (and honours Range / If-Range with an ETag, as npm's CDN does).
// Each implementation stages once in a fresh child; reported: whether it finished, wall time,
// and every byte the registry wrote to the wire (headers included). Also the bytes a no-change
// background check costs with a cold and a warm document cache (ETag / 304).
// Standalone: `node bench/flaky.mjs` (after a release build).
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { realRuntimeTarball } from '../scripts/fixtures/runtime.mjs'
import { bundledNativeDeps } from './registry.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
/** Body bytes a connection carries before the link drops. */
export const CUT_EVERY = 2 * 1024 * 1024
/** A run that has not finished by then is reported as not finished. */
const RUN_LIMIT_MS = Number(process.env.BENCH_FLAKY_LIMIT_MS ?? 120_000)

/**
 * The package document with a release history like kanban's (0.1.0 to 0.1.70), so the
 * no-change figures are of a realistically sized document.
 */
function documentFor(url, version, tgz) {
  const integrity = `sha512-${createHash('sha512').update(tgz).digest('base64')}`
  const versions = {}
  for (let i = 0; i <= 70; i++) {
    const v = `0.1.${i}`
    versions[v] = {
      name: 'kanban',
      version: v,
      bin: { kanban: 'dist/cli.js' },
      engines: { node: '>=20' },
      dist: {
        tarball: `${url}kanban/-/kanban-${v}.tgz`,
        integrity: v === version ? integrity : `sha512-${createHash('sha512').update(v).digest('base64')}`,
        shasum: createHash('sha1').update(v).digest('hex'),
        fileCount: 21,
        unpackedSize: 57_500_000,
      },
    }
  }
  return Buffer.from(JSON.stringify({ name: 'kanban', 'dist-tags': { latest: version }, modified: '2026-11-20T00:00:00.000Z', versions }))
}

/** The flaky registry. `wire` counts every byte written to any socket. */
export function startFlakyRegistry(tgz, version = '0.1.70') {
  const stats = { wire: 0, tarballRequests: 0, ranged: 0 }
  const tarballEtag = `"${createHash('sha1').update(tgz).digest('hex')}"`
  let doc
  let docEtag
  const server = http.createServer(async (req, res) => {
    if (req.url === '/kanban') {
      if (req.headers['if-none-match'] === docEtag) {
        res.writeHead(304, { etag: docEtag })
        return res.end()
      }
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': doc.length, etag: docEtag })
      return res.end(doc)
    }
    if (req.url !== `/kanban/-/kanban-${version}.tgz`) {
      res.writeHead(404)
      return res.end()
    }
    stats.tarballRequests += 1
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '')
    const ifRange = req.headers['if-range']
    const start = m && (ifRange === undefined || ifRange === tarballEtag) ? Math.min(Number(m[1]), tgz.length) : 0
    const headers = { 'content-type': 'application/octet-stream', 'content-length': tgz.length - start, etag: tarballEtag, 'accept-ranges': 'bytes' }
    if (m && start > 0) {
      stats.ranged += 1
      headers['content-range'] = `bytes ${start}-${tgz.length - 1}/${tgz.length}`
    }
    res.writeHead(start > 0 ? 206 : 200, headers)
    const end = Math.min(tgz.length, start + CUT_EVERY)
    for (let off = start; off < end && !res.destroyed; off += 64 * 1024) {
      await new Promise((r) => res.write(tgz.subarray(off, Math.min(end, off + 64 * 1024)), r))
    }
    if (end === tgz.length) res.end()
    // The link drops: the connection ends without the rest of the body.
    else res.destroy()
  })
  server.on('connection', (sock) => sock.on('close', () => (stats.wire += sock.bytesWritten)))
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const url = `http://127.0.0.1:${server.address().port}/`
      doc = documentFor(url, version, tgz)
      docEtag = `"${createHash('sha1').update(doc).digest('hex')}"`
      resolve({
        url,
        stats,
        documentBytes: doc.length,
        close: () => new Promise((r) => (server.closeAllConnections(), server.close(r))),
      })
    }),
  )
}

/** Waits until every connection the server saw has closed and been counted. */
const settle = () => new Promise((r) => setTimeout(r, 100))

function runChild(impl, opts) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(here, 'child.mjs'), impl, JSON.stringify(opts)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let out = ''
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_LIMIT_MS)
    child.stdout.on('data', (d) => (out += d))
    child.on('exit', () => {
      clearTimeout(timer)
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()))
      } catch {
        resolve({ impl, ms: RUN_LIMIT_MS, outcome: { error: `no result within ${RUN_LIMIT_MS} ms` } })
      }
    })
  })
}

/** The flaky-link runs and the no-change figures. */
export async function flaky(work, native, fixture) {
  const tgz = fs.readFileSync(fixture)
  const registry = await startFlakyRegistry(tgz)
  const rows = []
  for (const impl of ['addon', 'pacote']) {
    const userData = path.join(work, `flaky-${impl}`)
    const before = { ...registry.stats }
    // hostNodeVersion: the app's Electron Node; kanban 0.1.70 needs >=22 whatever Node runs the bench.
    const opts = { userData, currentVersion: '0.1.69', nativeDepsSource: native, registry: registry.url, cache: path.join(userData, '.pacote-cache'), hostNodeVersion: '22.12.0' }
    const r = await runChild(impl, opts)
    await settle()
    const finished = r.outcome?.kind === 'staged'
    rows.push({
      impl,
      finished,
      outcome: r.outcome,
      ms: r.ms,
      wireBytes: registry.stats.wire - before.wire,
      tarballRequests: registry.stats.tarballRequests - before.tarballRequests,
      rangedRequests: registry.stats.ranged - before.ranged,
      ratio: (registry.stats.wire - before.wire) / tgz.length,
    })
    fs.rmSync(userData, { recursive: true, force: true })
  }

  // A no-change background check: up-to-date, cold (no cached document) then warm (cached).
  // Each call's client closes its connections when the call ends, so they are counted by then.
  const { checkAndStageLatestRuntime } = createRequire(import.meta.url)('../index.js')
  const userData = path.join(work, 'flaky-noop')
  const opts = { userData, currentVersion: '0.1.70', nativeDepsSource: native, registry: registry.url }
  const check = async () => {
    const before = registry.stats.wire
    const outcome = await checkAndStageLatestRuntime(opts)
    if (outcome.kind !== 'up-to-date') throw new Error(`expected up-to-date, got ${outcome.kind}`)
    await settle()
    return registry.stats.wire - before
  }
  const coldBytes = await check()
  const warmBytes = await check()
  await registry.close()
  fs.rmSync(userData, { recursive: true, force: true })
  return { tarballBytes: tgz.length, cutEvery: CUT_EVERY, rows, noChange: { documentBytes: registry.documentBytes, coldBytes, warmBytes } }
}

/** Prints what `flaky` measured; returns how many goals were missed. */
export function printFlaky(f) {
  const mb = (n) => (n / 1e6).toFixed(2)
  console.log(`\nflaky link: the ${mb(f.tarballBytes)} MB tarball from a registry that cuts every connection after ${f.cutEvery / 1048576} MiB (Range / If-Range honoured)`)
  let missed = 0
  for (const r of f.rows) {
    const what = r.finished ? 'finished' : `did NOT finish (${r.outcome?.error ?? JSON.stringify(r.outcome)})`
    console.log(`${r.impl.padEnd(8)} ${what.padEnd(44)} ${r.ms.toFixed(0).padStart(7)} ms  ${mb(r.wireBytes).padStart(7)} MB sent (${r.ratio.toFixed(2)}x the tarball), ${r.tarballRequests} tarball requests, ${r.rangedRequests} ranged`)
  }
  const addon = f.rows.find((r) => r.impl === 'addon')
  const ref = f.rows.find((r) => r.impl === 'pacote')
  const ok = addon.finished && addon.ratio <= 1.2 && !ref.finished
  if (!ok) missed += 1
  console.log(`goal: the addon finishes with <= 1.2x the tarball's bytes, the reference does not: ${ok ? 'met' : 'MISSED'}`)
  const n = f.noChange
  console.log(`no-change check (up-to-date, document of ${n.documentBytes} bytes): ${n.coldBytes} bytes on the wire without a cached document, ${n.warmBytes} with one (304)`)
  return missed
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'krs-flaky-'))
  const native = bundledNativeDeps(work)
  const f = await flaky(work, native, realRuntimeTarball().file)
  const missed = printFlaky(f)
  fs.rmSync(work, { recursive: true, force: true })
  process.exit(missed ? 1 : 0)
}
