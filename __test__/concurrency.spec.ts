// One stager at a time: concurrent calls in one process and in several processes download once
// and all resolve; rollback and retention keep the store small and always runnable.
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { stageInChild } from './helpers/child'
import { binding } from './helpers/binding'
import { nativeDeps, runtimeTarball } from './helpers/fixtures'
import { Scenario } from './helpers/scenario'

const { checkAndStageLatestRuntime, markBadVersion, readPointer } = binding

const s = Scenario.perTest()

/**
 * Publishes 1.1.0 and serves its tarball slowly (held `ms` after 10 bytes), so that every caller
 * is in flight at once.
 */
function publishSlow(ms: number) {
  s.publish('1.1.0')
  s.registry.hold(s.registry.tarballPath('kanban', '1.1.0'), runtimeTarball('1.1.0'), {
    until: () => new Promise((r) => setTimeout(r, ms)),
  })
}

describe('concurrency', () => {
  it('three concurrent calls in one process share one download', async () => {
    publishSlow(300)
    const outcomes = await Promise.all([1, 2, 3].map(() => checkAndStageLatestRuntime(s.opts())))
    for (const o of outcomes) expect(['staged', 'already-staged']).toContain(o.kind)
    expect(outcomes.filter((o) => o.kind === 'staged').every((o: any) => o.version === '1.1.0')).toBe(true)
    expect(s.registry.tarballRequests()).toBe(1)
    expect(s.isWhole('1.1.0')).toBe(true)
    expect(readPointer(s.userData)?.version).toBe('1.1.0')
    expect(s.partials()).toEqual([])
  })

  it('a concurrent call that would stage something else does not take over another run\'s result', async () => {
    publishSlow(300)
    // Same store and version, other bundled native modules: not the same run.
    const outcomes = await Promise.all([
      checkAndStageLatestRuntime(s.opts()),
      checkAndStageLatestRuntime(s.opts({ nativeDepsSource: nativeDeps() })),
    ])
    // One stages; the other waits for the lock and finds the version staged by its own check,
    // instead of receiving the first run's `staged`.
    expect(outcomes.map((o) => o.kind).sort()).toEqual(['already-staged', 'staged'])
    expect(s.registry.tarballRequests()).toBe(1)
  })

  it('calls with other caps or another throttle do not share a run: each gets what its own settings give', async () => {
    publishSlow(300)
    const strict = { maxUnpackedBytes: 100 }
    // A strict call in flight first: its ETOO_LARGE is its own, never a default call's.
    const first = checkAndStageLatestRuntime(s.opts(strict))
    while (s.registry.tarballRequests() === 0) await new Promise((r) => setTimeout(r, 5))
    const [strictFirst, defaultSecond] = await Promise.allSettled([first, checkAndStageLatestRuntime(s.opts())])
    expect(strictFirst).toMatchObject({ status: 'rejected', reason: { code: 'ETOO_LARGE', limit: 'unpackedBytes' } })
    expect(defaultSecond).toEqual({ status: 'fulfilled', value: { kind: 'staged', version: '1.1.0' } })
    expect(s.registry.tarballRequests()).toBe(2)

    // A default call in flight first: a strict or throttled call that comes later is not handed
    // its `staged`; it re-checks under the lock once the default run is done.
    s.publish('1.2.0')
    s.registry.hold(s.registry.tarballPath('kanban', '1.2.0'), runtimeTarball('1.2.0'), {
      until: () => new Promise((r) => setTimeout(r, 300)),
    })
    const lead = checkAndStageLatestRuntime(s.opts())
    while (s.registry.tarballRequests() === 2) await new Promise((r) => setTimeout(r, 5))
    const outcomes = await Promise.all([
      lead,
      checkAndStageLatestRuntime(s.opts(strict)),
      checkAndStageLatestRuntime(s.opts({ maxBytesPerSecond: 1 << 20 })),
    ])
    expect(outcomes).toEqual([{ kind: 'staged', version: '1.2.0' }, { kind: 'already-staged' }, { kind: 'already-staged' }])
    expect(s.registry.tarballRequests()).toBe(3)
  })

  it('six processes staging the same version at once download it once and all resolve', async () => {
    publishSlow(500)
    const results = await Promise.all(Array.from({ length: 6 }, () => stageInChild(s.opts())))
    for (const r of results) expect(['staged', 'already-staged']).toContain(r.kind)
    expect(results.filter((r) => r.kind === 'staged')).toHaveLength(1)
    expect(s.registry.tarballRequests()).toBe(1)
    expect(s.registry.count('/kanban')).toBe(6)
    expect(s.isWhole('1.1.0')).toBe(true)
    expect(s.tree('1.1.0')).toContain('dist/cli.js')
    expect(readPointer(s.userData)?.version).toBe('1.1.0')
    expect(s.partials()).toEqual([])
  })

  it('an up-to-date check does not wait behind a staging run', async () => {
    publishSlow(1500)
    const staging = checkAndStageLatestRuntime(s.opts())
    await new Promise((r) => setTimeout(r, 200))
    let settled = false
    void staging.then(() => (settled = true))
    expect(await checkAndStageLatestRuntime(s.opts({ currentVersion: '1.1.0' }))).toEqual({ kind: 'up-to-date' })
    expect(settled).toBe(false) // answered while the staging run still held the lock
    expect((await staging).kind).toBe('staged')
  })
})

describe('rollback and retention', () => {
  async function stage(version: string) {
    s.publish(version)
    expect(await checkAndStageLatestRuntime(s.opts({ currentVersion: '0.0.1' }))).toEqual({ kind: 'staged', version })
  }

  it('keeps only the pointed version and its known-good fallback', async () => {
    await stage('1.1.0')
    await stage('1.2.0')
    await stage('1.3.0')
    expect(fs.readdirSync(s.versionsDir).sort()).toEqual(['1.2.0', '1.3.0'])
    expect(readPointer(s.userData)).toMatchObject({ version: '1.3.0', previous: '1.2.0' })
  })

  it('never prunes the version the app is running, even when it is no longer the fallback', async () => {
    s.publish('1.1.0')
    expect((await checkAndStageLatestRuntime(s.opts({ currentVersion: '1.0.0' }))).kind).toBe('staged')
    // The app restarted into 1.1.0 and then stages two updates without restarting again.
    for (const v of ['1.2.0', '1.3.0']) {
      s.publish(v)
      expect(await checkAndStageLatestRuntime(s.opts({ currentVersion: '1.1.0' }))).toEqual({ kind: 'staged', version: v })
    }
    expect(readPointer(s.userData)).toMatchObject({ version: '1.3.0', previous: '1.2.0' })
    expect(fs.readdirSync(s.versionsDir).sort()).toEqual(['1.1.0', '1.2.0', '1.3.0'])
    expect(s.isWhole('1.1.0')).toBe(true)
  })

  it('a bad version that is not pointed is only marked, never a fallback, and pruned later', async () => {
    await stage('1.1.0')
    await stage('1.2.0')
    expect(markBadVersion(s.userData, '1.1.0')).toBe('1.2.0')
    // A fallback that is bad is no fallback: it leaves the pointer.
    expect(readPointer(s.userData)?.version).toBe('1.2.0')
    expect(readPointer(s.userData)?.previous).toBeUndefined()
    // The fallback is bad now: marking the pointed version bad leaves no pointer at all.
    expect(markBadVersion(s.userData, '1.2.0')).toBeNull()
    expect(readPointer(s.userData)).toBeNull()
    await stage('1.3.0')
    expect(readPointer(s.userData)).toEqual(expect.objectContaining({ version: '1.3.0' }))
    expect(readPointer(s.userData)?.previous).toBeUndefined()
    expect(fs.readdirSync(s.versionsDir)).toEqual(['1.3.0'])
  })

  it('rolls back only to a fallback whose folder is whole', async () => {
    await stage('1.1.0')
    await stage('1.2.0')
    fs.rmSync(path.join(s.versionsDir, '1.1.0/node_modules'), { recursive: true })
    expect(markBadVersion(s.userData, '1.2.0')).toBeNull()
    expect(readPointer(s.userData)).toBeNull()
  })
})
