// The start-up path: beginLaunch runs on the app's JS thread before the runtime starts, so it is
// timed call by call on a store shaped like a long-lived one: several staged versions, a pointer
// with its fallback, a bad list and a launch record. Each call is a trial launch of the pointed
// version, so each one rewrites and flushes launches.json, as a real start does.
import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { Registry } from '../scripts/testkit/registry.mjs'
import { tgz } from '../scripts/testkit/tar.mjs'

const VERSIONS = ['1.4.0', '1.5.0', '1.6.0', '1.7.0', '1.8.0', '2.0.0']
const BAD = ['1.9.0', '1.9.1', '1.9.2']
const CALLS = Number(process.env.BENCH_LAUNCH_CALLS ?? 500)
const BUNDLED = '1.0.0'

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

function runtimeTarball(version) {
  return tgz([
    { path: 'package/package.json', body: JSON.stringify({ name: 'kanban', version, bin: { kanban: 'dist/cli.js' } }) },
    { path: 'package/dist/cli.js', body: `#!/usr/bin/env node\nconsole.log('kanban ${version}')\n` },
  ])
}

/**
 * The store: the newest version staged by the addon, the others copies of it under their own
 * names and completion records (staging prunes what a store this old would keep), the pointer at
 * the newest with the one before as its fallback, a confirmed older version, and a bad list.
 */
async function buildStore(b, work) {
  const userData = path.join(work, 'launch')
  const native = path.join(work, 'launch-native')
  fs.mkdirSync(path.join(native, 'node-pty'), { recursive: true })
  fs.writeFileSync(path.join(native, 'node-pty', 'package.json'), '{"name":"node-pty","version":"1.1.0"}')
  const newest = VERSIONS[VERSIONS.length - 1]
  const registry = await Registry.start()
  try {
    registry.publish('kanban', [{ version: newest, tarball: runtimeTarball(newest) }], { latest: newest })
    const outcome = await b.checkAndStageLatestRuntime({ userData, currentVersion: BUNDLED, nativeDepsSource: native, registry: registry.url, retries: 0 })
    if (outcome.kind !== 'staged') throw new Error(`launch bench: staging gave ${JSON.stringify(outcome)}`)
  } finally {
    await registry.close()
  }
  const staged = b.versionDir(userData, newest)
  const record = JSON.parse(fs.readFileSync(path.join(staged, '.kanban-runtime-complete.json'), 'utf8'))
  for (const v of VERSIONS.slice(0, -1)) {
    const dir = b.versionDir(userData, v)
    fs.cpSync(staged, dir, { recursive: true })
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'kanban', version: v }))
    fs.writeFileSync(path.join(dir, '.kanban-runtime-complete.json'), JSON.stringify({ ...record, version: v }))
  }
  for (const v of BAD) b.markBadVersion(userData, v)
  const previous = VERSIONS[VERSIONS.length - 2]
  b.writePointer(userData, { version: newest, cliEntry: b.cliEntryFor(userData, newest), previous })
  // An older version the app once confirmed: the rollback target beginLaunch would look for.
  if (b.confirmLaunch(userData, b.cliEntryFor(userData, VERSIONS[0])) !== VERSIONS[0]) throw new Error('launch bench: confirm failed')
  const whole = (await b.readStoreStatus(userData)).versions.filter((v) => v.whole).length
  if (whole !== VERSIONS.length) throw new Error(`launch bench: ${whole} whole versions, expected ${VERSIONS.length}`)
  return userData
}

/** `{ versions, calls, medianMs, p99Ms, worstMs }` of beginLaunch, each call a trial launch. */
export async function launchBench(work) {
  const b = createRequire(import.meta.url)('../index.js')
  const userData = await buildStore(b, work)
  // Every call, warm-up included, counts a trial launch: the limit stays above them all, so none
  // rolls the pointed version back (the addon takes at most 1000).
  const limit = CALLS + 6
  if (limit > 1000) throw new Error('launch bench: BENCH_LAUNCH_CALLS must be at most 994')
  const opts = { bundledVersion: BUNDLED, maxUnconfirmedLaunches: limit }
  const newest = VERSIONS[VERSIONS.length - 1]
  for (let i = 0; i < 5; i++) b.beginLaunch(userData, opts) // warm-up, not counted
  const ms = []
  for (let i = 0; i < CALLS; i++) {
    const t = performance.now()
    const launch = b.beginLaunch(userData, opts)
    ms.push(performance.now() - t)
    if (launch.version !== newest || launch.attempt !== i + 6) throw new Error(`launch bench: unexpected launch ${JSON.stringify(launch)}`)
  }
  fs.rmSync(userData, { recursive: true, force: true })
  const sorted = [...ms].sort((x, y) => x - y)
  return {
    versions: VERSIONS.length,
    calls: CALLS,
    medianMs: median(ms),
    p99Ms: sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))],
    worstMs: sorted[sorted.length - 1],
  }
}
