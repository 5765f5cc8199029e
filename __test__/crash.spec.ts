// Crash safety: a child process stages a runtime-sized kanban tarball (the synthetic one, shaped
// like the real runtime) from a throttled loopback
// registry and is killed with SIGKILL at a random moment. After every kill the store must hold
// no pointer or one naming a whole version, the earlier version must be intact, and a new call
// must finish the job. CRASH_ITERATIONS sets the count (25 by default, as in CI).
import type { ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { syntheticRuntimeTarball } from '../scripts/fixtures/runtime.mjs'
import { Registry } from '../scripts/testkit/registry.mjs'
import { binding } from './helpers/binding'
import { runStageChild } from './helpers/child'
import { cleanupTempDirs, runtimeTarball, snapshot } from './helpers/fixtures'
import { Scenario } from './helpers/scenario'

const ITERATIONS = Number(process.env.CRASH_ITERATIONS ?? 25)
const CHUNK = 256 * 1024

let registry: Registry
let real: Buffer
beforeAll(async () => {
  real = fs.readFileSync(syntheticRuntimeTarball())
  registry = await Registry.start()
  const baseline = runtimeTarball('0.1.69')
  registry.publish(
    'kanban',
    [
      { version: '0.1.69', tarball: baseline },
      { version: '0.1.70', tarball: real, unpackedSize: 57_500_000, fileCount: 21 },
    ],
    { latest: '0.1.70', previous: '0.1.69' },
  )
  // About 45 chunks 15 ms apart: the download takes ~0.7 s, so kills land in every phase. No
  // ETag and no ranges: every run downloads from the first byte.
  registry.serveBody(registry.tarballPath('kanban', '0.1.70'), real, { etag: null, ranges: false, chunk: CHUNK, pace: 15 })
})
afterAll(async () => {
  await registry.close()
  cleanupTempDirs()
})

/** Stages 0.1.69 as the earlier good version; returns its snapshot. */
async function stageBaseline(s: Scenario): Promise<Record<string, string>> {
  const outcome = await binding.checkAndStageLatestRuntime(s.opts({ currentVersion: '0.0.1', distTag: 'previous' }))
  expect(outcome).toEqual({ kind: 'staged', version: '0.1.69' })
  return snapshot(path.join(s.versionsDir, '0.1.69'))
}

/** Runs the real staging in a child; `onSpawn` may kill it. Resolves to what it printed. */
function runChild(s: Scenario, onSpawn: (child: ChildProcess) => void): Promise<string> {
  return runStageChild(s.opts({ currentVersion: '0.1.69' }), onSpawn)
}

it(`leaves a usable store after SIGKILL at a random moment (${ITERATIONS} iterations)`, { timeout: ITERATIONS * 15_000 }, async () => {
  // Calibrate: how long an uninterrupted child run takes here. The fastest of three, as one
  // run can be slowed by a busy machine, and kills timed against a slow run land after the end.
  let runMs = Infinity
  for (let i = 0; i < 3; i++) {
    const probe = Scenario.of(registry)
    await stageBaseline(probe)
    const t0 = Date.now()
    const probeResult = await runChild(probe, () => {})
    runMs = Math.min(runMs, Date.now() - t0)
    expect(probeResult).toContain('"staged"')
    fs.rmSync(probe.userData, { recursive: true, force: true })
  }

  let killedMidway = 0
  for (let i = 0; i < ITERATIONS; i++) {
    const s = Scenario.of(registry)
    const baseline = await stageBaseline(s)
    const out = await runChild(s, (child) => setTimeout(() => child.kill('SIGKILL'), Math.random() * runMs))
    if (!out.includes('"kind"')) killedMidway += 1

    // The invariant, right after the kill.
    s.expectPointerSafe()
    expect(['0.1.69', '0.1.70']).toContain(binding.readPointer(s.userData)?.version)
    expect(snapshot(path.join(s.versionsDir, '0.1.69'))).toEqual(baseline)

    // The next call finishes the job or starts clean.
    const outcome = await binding.checkAndStageLatestRuntime(s.opts({ currentVersion: '0.1.69' }))
    expect(['staged', 'already-staged']).toContain(outcome.kind)
    expect(binding.readPointer(s.userData)).toMatchObject({ version: '0.1.70', previous: '0.1.69' })
    expect(s.isWhole('0.1.70')).toBe(true)
    expect(s.partials()).toEqual([])
    expect(fs.readdirSync(s.store).filter((n) => n.includes('.tmp-'))).toEqual([])
    expect(snapshot(path.join(s.versionsDir, '0.1.69'))).toEqual(baseline)
    fs.rmSync(s.userData, { recursive: true, force: true })
  }
  console.log(`crash test: a run takes ${runMs} ms; ${killedMidway} of ${ITERATIONS} kills landed before it finished`)
  // Most kills must land mid-run, or the test proves nothing.
  expect(killedMidway).toBeGreaterThan(ITERATIONS * 0.7)
})
