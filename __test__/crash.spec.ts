// Crash safety: a child process stages a runtime-sized kanban tarball (the synthetic one, shaped
// like the real runtime) from a throttled loopback
// registry and is killed with SIGKILL at a random moment. After every kill the store must hold
// no pointer or one naming a whole version, the earlier version must be intact, and a new call
// must finish the job. The same holds for a check that withdraws a deprecated pointed version
// and stages a newer one. CRASH_ITERATIONS sets the count (25 by default, as in CI).
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

it(`leaves a usable store after SIGKILL at a random moment of a withdrawal (${ITERATIONS} iterations)`, { timeout: ITERATIONS * 20_000 }, async () => {
  // 0.1.69 is pointed and then deprecated by its publisher; the check that withdraws it (to 0.1.68)
  // goes on to stage 0.1.70, so kills land before, during and after the withdrawal.
  const withdrawing = await Registry.start()
  try {
    withdrawing.publish(
      'kanban',
      [
        { version: '0.1.68', tarball: runtimeTarball('0.1.68') },
        { version: '0.1.69', tarball: runtimeTarball('0.1.69'), deprecated: 'corrupts boards; use 0.1.68' },
        { version: '0.1.70', tarball: real, unpackedSize: 57_500_000, fileCount: 21 },
      ],
      { latest: '0.1.70', good: '0.1.68', bad: '0.1.69' },
    )
    withdrawing.serveBody(withdrawing.tarballPath('kanban', '0.1.70'), real, { etag: null, ranges: false, chunk: CHUNK, pace: 15 })

    /** 0.1.68 then 0.1.69 staged, the pointer on 0.1.69; the snapshots of both folders. */
    const stageBoth = async (s: Scenario) => {
      const opts = (distTag: string, currentVersion: string) => s.opts({ distTag, currentVersion })
      expect(await binding.checkAndStageLatestRuntime(opts('good', '0.0.1'))).toEqual({ kind: 'staged', version: '0.1.68' })
      expect(await binding.checkAndStageLatestRuntime(opts('bad', '0.1.68'))).toEqual({ kind: 'staged', version: '0.1.69' })
      return ['0.1.68', '0.1.69'].map((v) => snapshot(path.join(s.versionsDir, v)))
    }
    const withdrawOpts = (s: Scenario) => s.opts({ currentVersion: '0.1.69', honorDeprecation: true })

    let runMs = Infinity
    for (let i = 0; i < 3; i++) {
      const probe = Scenario.of(withdrawing)
      await stageBoth(probe)
      const t0 = Date.now()
      const out = await runStageChild(withdrawOpts(probe), () => {})
      runMs = Math.min(runMs, Date.now() - t0)
      expect(JSON.parse(out.trim().split('\n').pop()!)).toEqual({
        kind: 'staged',
        version: '0.1.70',
        withdrawn: { version: '0.1.69', reason: 'corrupts boards; use 0.1.68', pointer: '0.1.68' },
      })
      fs.rmSync(probe.userData, { recursive: true, force: true })
    }

    let killedMidway = 0
    // Where each kill left the pointer: on 0.1.69 (not withdrawn yet), 0.1.68 (withdrawn, the
    // new release in flight) or 0.1.70.
    const seen: Record<string, number> = {}
    for (let i = 0; i < ITERATIONS; i++) {
      const s = Scenario.of(withdrawing)
      const folders = await stageBoth(s)
      const out = await runStageChild(withdrawOpts(s), (child) => setTimeout(() => child.kill('SIGKILL'), Math.random() * runMs))
      if (!out.includes('"kind"')) killedMidway += 1

      // Right after the kill: a usable pointer (before, after the withdrawal, or on the new
      // release), nothing marked bad, no staged folder touched, the rollout record whole.
      s.expectPointerSafe()
      const pointed = binding.readPointer(s.userData)?.version as string
      expect(['0.1.68', '0.1.69', '0.1.70']).toContain(pointed)
      seen[pointed] = (seen[pointed] ?? 0) + 1
      expect(binding.isBadVersion(s.userData, '0.1.69')).toBe(false)
      expect(['0.1.68', '0.1.69'].map((v) => snapshot(path.join(s.versionsDir, v)))).toEqual(folders)
      const record = path.join(s.store, 'rollout.json')
      if (fs.existsSync(record)) expect(() => JSON.parse(fs.readFileSync(record, 'utf8'))).not.toThrow()

      // The next check finishes the job: withdrawn from 0.1.69, on 0.1.70 with 0.1.68 behind it.
      const outcome = await binding.checkAndStageLatestRuntime(withdrawOpts(s))
      expect(['staged', 'already-staged']).toContain(outcome.kind)
      expect(binding.readPointer(s.userData)).toMatchObject({ version: '0.1.70', previous: '0.1.68' })
      expect(s.isWhole('0.1.70')).toBe(true)
      expect(binding.isBadVersion(s.userData, '0.1.69')).toBe(false)
      expect(s.isWhole('0.1.69')).toBe(true)
      expect(s.partials()).toEqual([])
      expect(fs.readdirSync(s.store).filter((n) => n.includes('.tmp-'))).toEqual([])
      fs.rmSync(s.userData, { recursive: true, force: true })
    }
    console.log(
      `withdrawal crash test: a run takes ${runMs} ms; ${killedMidway} of ${ITERATIONS} kills landed before it finished; pointer after the kill: ${JSON.stringify(seen)}`,
    )
    expect(killedMidway).toBeGreaterThan(ITERATIONS * 0.7)
    // The download follows the withdrawal and takes most of a run: kills land between the two.
    expect(seen['0.1.68']).toBeGreaterThan(0)
  } finally {
    await withdrawing.close()
  }
})
