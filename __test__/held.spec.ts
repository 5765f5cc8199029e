// A staged folder held by another process (on Windows: a runtime still running from an old
// version, a scanner with a file open): deleting it is housekeeping that waits, never a reason for
// a call to fail, and a folder that cannot even be moved aside stops one run cleanly, changing
// nothing.
import fs from 'node:fs'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { binding } from './helpers/binding'
import { runtimeTarball, snapshot } from './helpers/fixtures'
import { holdFolder, type Hold } from './helpers/hold'
import { Scenario } from './helpers/scenario'

const b = binding as any
const s = Scenario.perTest()
const holds: Hold[] = []
afterEach(async () => {
  for (const h of holds.splice(0)) await h.release()
})

async function hold(dir: string, how: 'delete' | 'move') {
  const h = await holdFolder(dir, how, s.store)
  holds.push(h)
  return h
}

/** Stages 1.4.0, then 1.5.0 over it: the pointer at 1.5.0, 1.4.0 its fallback. */
async function stageTwo() {
  s.publish('1.4.0')
  expect(await b.checkAndStageLatestRuntime(s.opts())).toEqual({ kind: 'staged', version: '1.4.0' })
  s.publish('1.5.0')
  expect(await b.checkAndStageLatestRuntime(s.opts({ currentVersion: '1.4.0' }))).toEqual({ kind: 'staged', version: '1.5.0' })
}

function logged() {
  const entries: { level: string; message: string }[] = []
  return { entries, onLog: (e: { level: string; message: string }) => entries.push(e) }
}

describe('a staged folder held by another process', () => {
  it('whose files cannot be deleted yet: it waits in trash, is listed with its size, and stops nothing', async () => {
    await stageTwo()
    // A runtime still running from 1.4.0.
    const held = await hold(b.versionDir(s.userData, '1.4.0'), 'delete')
    // Gone from its name: that is what was asked, and it succeeds.
    b.clearPointer(s.userData)
    expect(() => b.removeVersionDir(s.userData, '1.4.0')).not.toThrow()
    expect(fs.existsSync(b.versionDir(s.userData, '1.4.0'))).toBe(false)
    const status = await b.readStoreStatus(s.userData)
    expect(status.trash).toHaveLength(1)
    expect(status.trash[0].name).toMatch(/^1\.4\.0/)
    expect(status.trash[0].bytes).toBeGreaterThan(0)
    // Every sweep around it succeeds and says what it left.
    const log = logged()
    expect(() => b.cleanupPartials(s.userData, { onLog: log.onLog })).not.toThrow()
    expect(log.entries.filter((e) => e.level === 'warn' && e.message.includes('could not delete'))).toHaveLength(1)
    s.publish('1.6.0')
    const run = logged()
    expect(await b.checkAndStageLatestRuntime(s.opts({ currentVersion: '1.5.0', onLog: run.onLog }))).toEqual({ kind: 'staged', version: '1.6.0' })
    expect(run.entries.some((e) => e.level === 'warn' && e.message.includes('could not delete'))).toBe(true)
    expect(b.readPointer(s.userData)?.version).toBe('1.6.0')
    const pruned = await b.pruneStore(s.userData, '1.6.0')
    expect(pruned.busy).toBe(false)
    expect((await b.readStoreStatus(s.userData)).trash).toHaveLength(1)
    // Released: the next sweep deletes it.
    await held.release()
    b.cleanupPartials(s.userData)
    expect((await b.readStoreStatus(s.userData)).trash).toEqual([])
    expect(fs.readdirSync(s.stagingDir)).toEqual([])
  }, 60_000)

  it("a crashed run's partial that cannot be deleted yet never keeps the next run of that version from staging", async () => {
    s.publish('1.4.0')
    // What a run killed mid-extract left, with a file a scanner still holds.
    for (const partial of ['1.4.0.partial', '1.4.0.native.partial']) {
      fs.mkdirSync(path.join(s.stagingDir, partial, 'dist'), { recursive: true })
      fs.writeFileSync(path.join(s.stagingDir, partial, 'dist', 'cli.js'), 'half')
      await hold(path.join(s.stagingDir, partial), 'delete')
    }
    const run = logged()
    expect(await b.checkAndStageLatestRuntime(s.opts({ onLog: run.onLog }))).toEqual({ kind: 'staged', version: '1.4.0' })
    expect(b.resolvePointerCliEntry(s.userData)).toBe(b.cliEntryFor(s.userData, '1.4.0'))
    expect(run.entries.filter((e) => e.level === 'warn' && e.message.includes('could not delete'))).toHaveLength(2)
    // Both wait as trash, with their sizes, out of the names the run needed.
    const trash = (await b.readStoreStatus(s.userData)).trash
    expect(trash.map((t: any) => t.name.split('.trash-')[0]).sort()).toEqual(['1.4.0.native.partial', '1.4.0.partial'])
    for (const h of holds.splice(0)) await h.release()
    b.cleanupPartials(s.userData)
    expect((await b.readStoreStatus(s.userData)).trash).toEqual([])
  }, 60_000)

  it('a failed runtime that still holds its folder: reportLaunchFailed records the failure and returns', async () => {
    await stageTwo()
    const ran = b.cliEntryFor(s.userData, '1.5.0')
    await hold(b.versionDir(s.userData, '1.5.0'), 'move')
    const f = b.reportLaunchFailed(s.userData, ran, 'exited with code 1')
    expect(f).toMatchObject({ failedVersion: '1.5.0', pointer: { version: '1.4.0' } })
    expect(b.isBadVersion(s.userData, '1.5.0')).toBe(true)
    // The held folder is bad, never launched; removing it by hand says why it cannot go yet.
    expect(b.resolvePointerCliEntry(s.userData)).toBe(b.cliEntryFor(s.userData, '1.4.0'))
    expect(() => b.removeVersionDir(s.userData, '1.5.0')).toThrow(expect.objectContaining({ code: 'EBUSY' }))
    for (const h of holds.splice(0)) await h.release()
    b.removeVersionDir(s.userData, '1.5.0')
    expect(fs.existsSync(b.versionDir(s.userData, '1.5.0'))).toBe(false)
  }, 60_000)

  it('that cannot be moved aside when a run must replace it: EBUSY with a hint, nothing changed; staged once released', async () => {
    await stageTwo()
    // The pointer goes back to 1.4.0, and 1.5.0 is republished with other bytes: its unpointed
    // folder must be replaced.
    b.writePointer(s.userData, { version: '1.4.0', cliEntry: b.cliEntryFor(s.userData, '1.4.0') })
    const other = runtimeTarball('1.5.0', { extra: [{ path: 'package/NOTICE', body: 'republished\n' }] })
    s.publish('1.5.0', other)
    const held = await hold(b.versionDir(s.userData, '1.5.0'), 'move')
    const before = snapshot(s.store)
    const err = await b.checkAndStageLatestRuntime(s.opts({ currentVersion: '1.4.0' })).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'EBUSY', path: b.versionDir(s.userData, '1.5.0') })
    expect(err.hint).toMatch(/runtime still running/)
    await held.release()
    // Everything as it was (the lock files aside, which every run touches).
    const after = snapshot(s.store)
    for (const name of ['stage.lock', 'store.lock']) {
      delete before[name]
      delete after[name]
    }
    expect(after).toEqual(before)
    expect(b.readPointer(s.userData)?.version).toBe('1.4.0')
    expect(await b.checkAndStageLatestRuntime(s.opts({ currentVersion: '1.4.0' }))).toEqual({ kind: 'staged', version: '1.5.0' })
    expect(fs.existsSync(path.join(b.versionDir(s.userData, '1.5.0'), 'NOTICE'))).toBe(true)
  }, 60_000)
})
