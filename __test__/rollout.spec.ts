// The phased rollout (`rolloutHours`, `rolloutBucket`, the store's own bucket) and the
// publisher's kill switch (`honorDeprecation`), through the binding against a loopback registry
// whose documents carry `time` and `deprecated`, set relative to now.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { binding, rejection } from './helpers/binding'
import { stageInChild } from './helpers/child'
import { runtimeTarball, snapshot, tempDir } from './helpers/fixtures'
import { Scenario } from './helpers/scenario'

const b = binding as any
const { checkAndStageLatestRuntime, readStoreStatus } = binding
const HOUR = 3_600_000

const s = Scenario.perTest()

interface Release {
  version: string
  /** Hours since publication; absent leaves `time` out. */
  ageHours?: number
  deprecated?: string
}

/** Publishes `releases` (the last is `latest`), each with its `time` and deprecation. */
function serve(releases: Release[], now = Date.now()) {
  s.registry.publish(
    'kanban',
    releases.map((r) => ({
      version: r.version,
      tarball: runtimeTarball(r.version),
      time: r.ageHours === undefined ? undefined : new Date(now - r.ageHours * HOUR).toISOString(),
      deprecated: r.deprecated,
    })),
    { latest: releases[releases.length - 1].version },
  )
}

/** The instant `bucket` of a 48 h rollout may stage a release published at `published`. */
function eligibleAt(published: number, bucket: number, hours = 48, coolDownMs = 0) {
  return new Date(published + coolDownMs + Math.floor(bucket * hours * HOUR)).toISOString()
}

/** A fresh userData on the same registry, for one more store. */
function otherStore(): Scenario {
  return Scenario.of(s.registry)
}

type Log = { level: string; message: string; fields?: Record<string, unknown> }

/** The log entries of a call, once the last has been delivered. */
async function logsOf(run: (onLog: (e: Log) => void) => Promise<unknown>) {
  const logs: Log[] = []
  const outcome = await run((e) => logs.push(e))
  await new Promise((r) => setTimeout(r, 50))
  return { outcome, logs }
}

describe('phased rollout', () => {
  it('stages, for buckets 0, 0.5 and 0.99, what was published 1 h, 25 h and 49 h ago exactly when each is eligible', async () => {
    const now = Date.now()
    serve(
      [
        { version: '1.1.0', ageHours: 49 },
        { version: '1.2.0', ageHours: 25 },
        { version: '1.3.0', ageHours: 1 },
      ],
      now,
    )
    const published = (ageHours: number) => Date.parse(new Date(now - ageHours * HOUR).toISOString())
    const expected: [number, string, { version: string; eligibleAt: string } | undefined][] = [
      [0, '1.3.0', undefined],
      [0.5, '1.2.0', { version: '1.3.0', eligibleAt: eligibleAt(published(1), 0.5) }],
      [0.99, '1.1.0', { version: '1.3.0', eligibleAt: eligibleAt(published(1), 0.99) }],
    ]
    for (const [rolloutBucket, version, pending] of expected) {
      const store = otherStore()
      const opts = store.opts({ rolloutHours: 48, rolloutBucket })
      const { outcome, logs } = await logsOf((onLog) => checkAndStageLatestRuntime({ ...opts, onLog }))
      expect(outcome).toEqual({ kind: 'staged', version, pending })
      expect(b.readPointer(store.userData).version).toBe(version)
      // The same held-back release in the log, and in the store for the status.
      if (pending) {
        expect(logs).toContainEqual(expect.objectContaining({ level: 'info', fields: pending }))
        expect((await readStoreStatus(store.userData)).pending).toEqual(pending)
      }
      // A given bucket is not the store's: none is drawn.
      expect((await readStoreStatus(store.userData)).rolloutBucket).toBeNull()
      // Asked again before anything changes: the same release, the same pending one.
      expect(await checkAndStageLatestRuntime(opts)).toEqual({ kind: 'already-staged', pending })
    }
    // With the rollout off, every bucket takes the newest at once.
    expect(await checkAndStageLatestRuntime(otherStore().opts({ rolloutBucket: 0.99 }))).toEqual({
      kind: 'staged',
      version: '1.3.0',
    })
  })

  it('adopts a release the moment its bucket reaches it, after the cool-down', async () => {
    // Bucket 0.5 of 48 h waits 24 h: a minute short of that is pending, a minute past is staged.
    const now = Date.now()
    serve(
      [
        { version: '1.1.0', ageHours: 24 + 1 / 60 },
        { version: '1.2.0', ageHours: 24 - 1 / 60 },
      ],
      now,
    )
    const opts = s.opts({ rolloutHours: 48, rolloutBucket: 0.5 })
    const out = await checkAndStageLatestRuntime(opts)
    expect(out).toMatchObject({ kind: 'staged', version: '1.1.0', pending: { version: '1.2.0' } })
    const eligible = Date.parse((out as any).pending.eligibleAt)
    expect(eligible - Date.now()).toBeGreaterThan(0)
    expect(eligible - Date.now()).toBeLessThanOrEqual(60_000)
    // The cool-down comes first: bucket 0 under a 2 h cool-down takes 1.1.0 now, 1.2.0 later.
    serve([{ version: '1.1.0', ageHours: 3 }, { version: '1.2.0', ageHours: 1 }], now)
    const published = Date.parse(new Date(now - HOUR).toISOString())
    expect(await checkAndStageLatestRuntime(otherStore().opts({ rolloutHours: 48, rolloutBucket: 0, minReleaseAgeMinutes: 120 }))).toEqual({
      kind: 'staged',
      version: '1.1.0',
      pending: { version: '1.2.0', eligibleAt: eligibleAt(published, 0, 48, 2 * HOUR) },
    })
  })

  it('answers up-to-date with pending when nothing is eligible yet, and fetches the full document', async () => {
    serve([{ version: '1.0.0', ageHours: 100 }, { version: '2.0.0', ageHours: 2 }])
    const out = await checkAndStageLatestRuntime(s.opts({ rolloutHours: 48, rolloutBucket: 0.5 }))
    expect(out).toMatchObject({ kind: 'up-to-date', pending: { version: '2.0.0' } })
    expect(s.registry.tarballRequests()).toBe(0)
    expect(s.registry.requests.filter((r) => r.url === '/kanban').map((r) => r.headers.accept)).toEqual(['application/json'])
  })

  it('stages a release the document gives no time for as without a rollout, with a warning', async () => {
    serve([{ version: '1.5.0', ageHours: 100 }, { version: '2.0.0' }])
    const { outcome, logs } = await logsOf((onLog) =>
      checkAndStageLatestRuntime(s.opts({ rolloutHours: 48, rolloutBucket: 0.99, onLog })),
    )
    expect(outcome).toEqual({ kind: 'staged', version: '2.0.0' })
    const warned = logs.filter((e) => e.level === 'warn')
    expect(warned).toHaveLength(1)
    expect(warned[0].message).toContain('no publish time for 2.0.0')
  })

  it("keeps the store's own bucket across calls and processes, and draws a new one for a damaged record", async () => {
    serve([{ version: '1.0.0', ageHours: 100 }])
    expect((await readStoreStatus(s.userData)).rolloutBucket).toBeNull()
    const opts = s.opts({ rolloutHours: 48 })
    expect(await checkAndStageLatestRuntime(opts)).toEqual({ kind: 'up-to-date' })
    const bucket = (await readStoreStatus(s.userData)).rolloutBucket as number
    expect(bucket).toBeGreaterThanOrEqual(0)
    expect(bucket).toBeLessThan(1)
    await checkAndStageLatestRuntime(opts)
    expect(await stageInChild(opts)).toEqual({ kind: 'up-to-date' })
    expect((await readStoreStatus(s.userData)).rolloutBucket).toBe(bucket)

    // The bucket decides: published just before its share of 48 h is staged, just after is pending.
    const now = Date.now()
    const share = bucket * 48
    serve(
      [
        { version: '1.0.0', ageHours: 100 },
        { version: '2.0.0', ageHours: share + 0.1 },
        { version: '3.0.0', ageHours: share - 0.1 },
      ],
      now,
    )
    const published = Date.parse(new Date(now - (share - 0.1) * HOUR).toISOString())
    expect(await checkAndStageLatestRuntime(opts)).toEqual({
      kind: 'staged',
      version: '2.0.0',
      pending: { version: '3.0.0', eligibleAt: eligibleAt(published, bucket) },
    })

    // Damaged or not a file: a new bucket, never an error.
    const record = path.join(s.store, 'rollout.json')
    for (const damage of ['{"bucket": 1.5}', 'not json', '']) {
      fs.writeFileSync(record, damage)
      // The new bucket decides what is eligible now; the call answers either way.
      expect(['staged', 'already-staged', 'up-to-date']).toContain((await checkAndStageLatestRuntime(opts)).kind)
      const again = (await readStoreStatus(s.userData)).rolloutBucket as number
      expect(again).toBeGreaterThanOrEqual(0)
      expect(again).toBeLessThan(1)
    }
    fs.rmSync(record)
    fs.mkdirSync(record)
    expect(['staged', 'already-staged', 'up-to-date']).toContain((await checkAndStageLatestRuntime(opts)).kind)
    if (process.platform !== 'win32') {
      // A FIFO (whose open would wait for a writer) and a link to an endless file are never
      // read; the new bucket's record replaces them.
      fs.rmSync(record, { recursive: true })
      execFileSync('mkfifo', [record])
      expect(['staged', 'already-staged', 'up-to-date']).toContain((await checkAndStageLatestRuntime(opts)).kind)
      fs.rmSync(record)
      fs.symlinkSync('/dev/zero', record)
      expect(['staged', 'already-staged', 'up-to-date']).toContain((await checkAndStageLatestRuntime(opts)).kind)
      expect(fs.lstatSync(record).isFile()).toBe(true)
      expect((await readStoreStatus(s.userData)).rolloutBucket).toBeGreaterThanOrEqual(0)
    }
  })

  it('gives stores buckets uniform over [0, 1)', { timeout: 120_000 }, async () => {
    serve([{ version: '1.0.0', ageHours: 100 }])
    const n = 300
    const buckets: number[] = []
    for (let i = 0; i < n; i++) {
      const userData = tempDir()
      await checkAndStageLatestRuntime(s.opts({ userData, rolloutHours: 48 }))
      buckets.push((await readStoreStatus(userData)).rolloutBucket as number)
    }
    expect(new Set(buckets).size).toBe(n)
    // Kolmogorov-Smirnov against the uniform distribution: D above 1.95 / sqrt(n) happens to a
    // uniform sample once in a thousand runs.
    const sorted = [...buckets].sort((x, y) => x - y)
    const d = Math.max(...sorted.map((x, i) => Math.max((i + 1) / n - x, x - i / n)))
    expect(d).toBeLessThan(1.95 / Math.sqrt(n))
    // And every tenth of the range is reached.
    expect(new Set(sorted.map((x) => Math.floor(x * 10))).size).toBe(10)
  })

  it('refuses a rollout or bucket out of range', async () => {
    for (const rolloutHours of [-1, 1.5, 8761, '48']) {
      const e = await rejection(checkAndStageLatestRuntime(s.opts({ rolloutHours })))
      expect(e).toMatchObject({ code: 'EINVALID_OPTION', option: 'rolloutHours' })
    }
    for (const rolloutBucket of [-0.1, 1, Number.NaN, '0.5']) {
      const e = await rejection(checkAndStageLatestRuntime(s.opts({ rolloutBucket })))
      expect(e).toMatchObject({ code: 'EINVALID_OPTION', option: 'rolloutBucket' })
    }
    for (const [option, value] of [
      ['honorDeprecation', 'yes'],
      ['bundledVersion', 'one'],
    ]) {
      const e = await rejection(checkAndStageLatestRuntime(s.opts({ [option]: value })))
      expect(e).toMatchObject({ code: 'EINVALID_OPTION', option })
    }
  })
})

describe('withdrawal of a deprecated release (honorDeprecation)', () => {
  /** Stages 1.1.0 then 1.2.0, the pointer ending on 1.2.0 with 1.1.0 as its fallback. */
  async function stageTwo() {
    serve([{ version: '1.1.0' }])
    expect(await checkAndStageLatestRuntime(s.opts())).toEqual({ kind: 'staged', version: '1.1.0' })
    serve([{ version: '1.1.0' }, { version: '1.2.0' }])
    expect(await checkAndStageLatestRuntime(s.opts({ currentVersion: '1.1.0' }))).toEqual({ kind: 'staged', version: '1.2.0' })
    return snapshot(path.join(s.versionsDir, '1.2.0'))
  }

  it('withdraws to the previous good version, never marks it bad, and takes it back once lifted', async () => {
    const folder = await stageTwo()
    serve([{ version: '1.1.0' }, { version: '1.2.0', deprecated: 'loses data on save; use 1.1.0' }])
    // Off by default: nothing is withdrawn.
    expect(await checkAndStageLatestRuntime(s.opts({ currentVersion: '1.2.0' }))).toEqual({ kind: 'up-to-date' })
    expect(b.readPointer(s.userData).version).toBe('1.2.0')

    const opts = (currentVersion: string) => s.opts({ currentVersion, honorDeprecation: true })
    const { outcome, logs } = await logsOf((onLog) => checkAndStageLatestRuntime({ ...opts('1.2.0'), onLog }))
    const withdrawn = { version: '1.2.0', reason: 'loses data on save; use 1.1.0', pointer: '1.1.0' }
    expect(outcome).toEqual({ kind: 'up-to-date', withdrawn })
    expect(logs).toContainEqual(expect.objectContaining({ level: 'warn', fields: expect.objectContaining({ version: '1.2.0', pointer: '1.1.0' }) }))
    expect(b.readPointer(s.userData).version).toBe('1.1.0')
    expect(b.isBadVersion(s.userData, '1.2.0')).toBe(false)
    expect(snapshot(path.join(s.versionsDir, '1.2.0'))).toEqual(folder)
    expect((await readStoreStatus(s.userData)).withdrawn).toEqual(withdrawn)

    // The app restarted on 1.1.0: the deprecated release is not staged again.
    const tarballs = s.registry.tarballRequests()
    expect(await checkAndStageLatestRuntime(opts('1.1.0'))).toEqual({ kind: 'up-to-date' })
    expect(b.readPointer(s.userData).version).toBe('1.1.0')

    // Lifted (`npm deprecate kanban@1.2.0 ""`): eligible again, from the folder kept.
    serve([{ version: '1.1.0' }, { version: '1.2.0' }])
    expect(await checkAndStageLatestRuntime(opts('1.1.0'))).toEqual({ kind: 'staged', version: '1.2.0' })
    expect(s.registry.tarballRequests()).toBe(tarballs)
    expect(b.readPointer(s.userData)).toMatchObject({ version: '1.2.0', previous: '1.1.0' })
    expect((await readStoreStatus(s.userData)).withdrawn).toBeNull()
  })

  it('withdraws to the bundled runtime when no other staged version qualifies, never below it', async () => {
    await stageTwo()
    serve([{ version: '1.1.0' }, { version: '1.2.0', deprecated: 'broken' }])
    // 1.1.0 is whole and good, but not newer than the bundled 1.1.0.
    const out = await checkAndStageLatestRuntime(s.opts({ currentVersion: '1.2.0', honorDeprecation: true, bundledVersion: '1.1.0' }))
    expect(out).toEqual({ kind: 'up-to-date', withdrawn: { version: '1.2.0', reason: 'broken', pointer: null } })
    expect(b.readPointer(s.userData)).toBeNull()
    expect(s.isWhole('1.1.0') && s.isWhole('1.2.0')).toBe(true)
    expect((await readStoreStatus(s.userData)).badVersions).toEqual([])
  })

  it('deprecating every release only returns desktops to their bundled runtime', async () => {
    await stageTwo()
    const long = `see http://user:secret@127.0.0.1:9/notes?token=abc ${'x'.repeat(5000)}`
    serve([
      { version: '1.1.0', deprecated: 'stolen token' },
      { version: '1.2.0', deprecated: long },
    ])
    const out: any = await checkAndStageLatestRuntime(s.opts({ currentVersion: '1.2.0', honorDeprecation: true }))
    expect(out).toMatchObject({ kind: 'up-to-date', withdrawn: { version: '1.2.0', pointer: null } })
    // The message is clipped and its credentials masked, like every string from outside.
    expect(out.withdrawn.reason.length).toBeLessThanOrEqual(301)
    expect(out.withdrawn.reason).not.toContain('secret')
    expect(out.withdrawn.reason).not.toContain('abc')
    expect(b.readPointer(s.userData)).toBeNull()
    expect((await readStoreStatus(s.userData)).badVersions).toEqual([])
    expect(fs.readdirSync(s.versionsDir).sort()).toEqual(['1.1.0', '1.2.0'])
  })

  it('stages a newer release that is not deprecated in the same check', async () => {
    await stageTwo()
    serve([{ version: '1.1.0' }, { version: '1.2.0', deprecated: 'broken' }, { version: '1.3.0' }])
    const out = await checkAndStageLatestRuntime(s.opts({ currentVersion: '1.2.0', honorDeprecation: true }))
    expect(out).toEqual({ kind: 'staged', version: '1.3.0', withdrawn: { version: '1.2.0', reason: 'broken', pointer: '1.1.0' } })
    expect(b.readPointer(s.userData)).toMatchObject({ version: '1.3.0', previous: '1.1.0' })
    expect(b.isBadVersion(s.userData, '1.2.0')).toBe(false)
  })

  it('stages in the same check a good release older than the withdrawn one, newer than what runs next', async () => {
    await stageTwo()
    // 1.1.5 was never staged here: the desktop went from 1.1.0 straight to 1.2.0.
    serve([{ version: '1.1.0' }, { version: '1.1.5' }, { version: '1.2.0', deprecated: 'broken' }])
    const out = await checkAndStageLatestRuntime(s.opts({ currentVersion: '1.2.0', honorDeprecation: true }))
    expect(out).toEqual({ kind: 'staged', version: '1.1.5', withdrawn: { version: '1.2.0', reason: 'broken', pointer: '1.1.0' } })
    expect(b.readPointer(s.userData)).toMatchObject({ version: '1.1.5', previous: '1.1.0' })
    // The app still runs 1.2.0 until it restarts: its folder stays.
    expect(s.isWhole('1.2.0')).toBe(true)
    // A store with 1.2.0 alone goes back to the bundled 1.0.0, and newer is measured from there.
    const t = otherStore()
    serve([{ version: '1.2.0' }])
    expect(await checkAndStageLatestRuntime(t.opts({ currentVersion: '1.0.0' }))).toEqual({ kind: 'staged', version: '1.2.0' })
    serve([{ version: '1.1.0' }, { version: '1.1.5' }, { version: '1.2.0', deprecated: 'broken' }])
    const again = await checkAndStageLatestRuntime(t.opts({ currentVersion: '1.2.0', honorDeprecation: true, bundledVersion: '1.0.0' }))
    expect(again).toEqual({ kind: 'staged', version: '1.1.5', withdrawn: { version: '1.2.0', reason: 'broken', pointer: null } })
    expect(b.readPointer(t.userData).version).toBe('1.1.5')
  })

  it('keeps a withdrawal when the newer release then fails to stage, and notes it for the status', async () => {
    await stageTwo()
    s.registry.publish(
      'kanban',
      [
        { version: '1.1.0', tarball: runtimeTarball('1.1.0') },
        { version: '1.2.0', tarball: runtimeTarball('1.2.0'), deprecated: 'broken' },
        { version: '1.3.0', tarball: runtimeTarball('1.3.0'), integrity: `sha512-${Buffer.alloc(64).toString('base64')}` },
      ],
      { latest: '1.3.0' },
    )
    const e = await rejection(checkAndStageLatestRuntime(s.opts({ currentVersion: '1.2.0', honorDeprecation: true })))
    expect(e.code).toBe('EINTEGRITY')
    expect(b.readPointer(s.userData).version).toBe('1.1.0')
    expect((await readStoreStatus(s.userData)).withdrawn).toEqual({ version: '1.2.0', reason: 'broken', pointer: '1.1.0' })
    expect(b.isBadVersion(s.userData, '1.2.0')).toBe(false)
  })

  it('withdraws nothing when the pointed version is not deprecated, and never stages a deprecated one', async () => {
    await stageTwo()
    serve([{ version: '1.1.0', deprecated: 'old' }, { version: '1.2.0' }, { version: '1.3.0', deprecated: 'broken' }])
    expect(await checkAndStageLatestRuntime(s.opts({ currentVersion: '1.1.0', honorDeprecation: true }))).toEqual({
      kind: 'already-staged',
    })
    expect(b.readPointer(s.userData)).toMatchObject({ version: '1.2.0', previous: '1.1.0' })
    expect(s.registry.count(s.registry.tarballPath('kanban', '1.3.0'))).toBe(0)
  })
})

describe('status', () => {
  it('reports no bucket, no pending and no withdrawal for a store that never had them', async () => {
    const st = await readStoreStatus(tempDir())
    expect([st.rolloutBucket, st.pending, st.withdrawn]).toEqual([null, null, null])
  })
})
