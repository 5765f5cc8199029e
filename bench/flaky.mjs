// The flaky-link scenario: the real runtime tarball from a loopback registry that cuts every
// connection after 2 MB of body (and honours Range / If-Range with an ETag, as npm's CDN does).
// Each implementation stages once in a fresh child; reported: whether it finished, wall time,
// and every byte the registry wrote to the wire (headers included). Also the bytes a no-change
// background check costs with a cold and a warm document cache (ETag / 304).
// Standalone: `node bench/flaky.mjs` (after a release build).
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { realRuntimeTarball } from '../scripts/fixtures/runtime.mjs'
import { Registry, sri } from '../scripts/testkit/registry.mjs'
import { bundledNativeDeps, runChild, runOptions } from './runs.mjs'

/** Body bytes a connection carries before the link drops. */
export const CUT_EVERY = 2 * 1024 * 1024
/** A run that has not finished by then is reported as not finished. */
const RUN_LIMIT_MS = Number(process.env.BENCH_FLAKY_LIMIT_MS ?? 120_000)

/**
 * The package document with a release history like kanban's (0.1.0 to 0.1.70), so the
 * no-change figures are of a realistically sized document.
 */
function documentFor(url, version, tgz) {
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
        integrity: v === version ? sri(tgz) : sri(v),
        shasum: createHash('sha1').update(v).digest('hex'),
        fileCount: 21,
        unpackedSize: 57_500_000,
      },
    }
  }
  return { name: 'kanban', 'dist-tags': { latest: version }, modified: '2026-11-20T00:00:00.000Z', versions }
}

/**
 * The flaky registry: ETags on the document and the tarball, `Range` / `If-Range` honoured, and
 * every tarball connection cut after CUT_EVERY bytes of body. Returns it, the tarball's request
 * log and the document's size.
 */
export async function startFlakyRegistry(tgz, version = '0.1.70') {
  const registry = (await Registry.start()).withEtags()
  const doc = documentFor(registry.url, version, tgz)
  registry.setDoc('kanban', doc)
  const tarball = registry.serveBody(registry.tarballPath('kanban', version), tgz, { cutAt: (_i, start) => start + CUT_EVERY })
  return { registry, tarball, documentBytes: Buffer.byteLength(JSON.stringify(doc)) }
}

/** Waits until every connection the server saw has closed and been counted. */
const settle = () => new Promise((r) => setTimeout(r, 100))

/** One run's report, or a run that did not finish in time reported as such. */
async function reportOf(impl, opts) {
  const { report } = await runChild(impl, opts, RUN_LIMIT_MS)
  return report ?? { impl, ms: RUN_LIMIT_MS, outcome: { error: `no result within ${RUN_LIMIT_MS} ms` } }
}

/** The flaky-link runs and the no-change figures. */
export async function flaky(work, native, fixture) {
  const tgz = fs.readFileSync(fixture)
  const { registry, tarball, documentBytes } = await startFlakyRegistry(tgz)
  const stats = () => ({
    wire: registry.wireBytes,
    tarballRequests: tarball.log.length,
    ranged: tarball.log.filter((e) => e.status === 206).length,
  })
  const rows = []
  for (const impl of ['addon', 'pacote']) {
    const userData = path.join(work, `flaky-${impl}`)
    const before = stats()
    const r = await reportOf(impl, runOptions(userData, native, registry.url))
    await settle()
    const after = stats()
    const finished = r.outcome?.kind === 'staged'
    rows.push({
      impl,
      finished,
      outcome: r.outcome,
      ms: r.ms,
      wireBytes: after.wire - before.wire,
      tarballRequests: after.tarballRequests - before.tarballRequests,
      rangedRequests: after.ranged - before.ranged,
      ratio: (after.wire - before.wire) / tgz.length,
    })
    fs.rmSync(userData, { recursive: true, force: true })
  }

  // A no-change background check: up-to-date, cold (no cached document) then warm (cached).
  // Each call's client closes its connections when the call ends, so they are counted by then.
  const { checkAndStageLatestRuntime } = createRequire(import.meta.url)('../index.js')
  const userData = path.join(work, 'flaky-noop')
  const opts = { userData, currentVersion: '0.1.70', nativeDepsSource: native, registry: registry.url }
  const check = async () => {
    const before = registry.wireBytes
    const outcome = await checkAndStageLatestRuntime(opts)
    if (outcome.kind !== 'up-to-date') throw new Error(`expected up-to-date, got ${outcome.kind}`)
    await settle()
    return registry.wireBytes - before
  }
  const coldBytes = await check()
  const warmBytes = await check()
  await registry.close()
  fs.rmSync(userData, { recursive: true, force: true })
  return { tarballBytes: tgz.length, cutEvery: CUT_EVERY, rows, noChange: { documentBytes, coldBytes, warmBytes } }
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
