// The rollback is sacred: a version marked bad is never pointed to or offered as the fallback,
// marking answers at once even while another process downloads, the pointer never moves back to
// an older version except through that rollback, and stores of the original TypeScript
// implementation keep working without a second download.
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { stageInChild } from './helpers/child'
import { binding } from './helpers/binding'
import { typeScriptStore } from './helpers/fixtures'
import { Scenario } from './helpers/scenario'

const { checkAndStageLatestRuntime, markBadVersion, readPointer, resolvePointerCliEntry, readStoreStatus } = binding

const s = Scenario.perTest()

/** Waits until a tarball request for `version` has arrived. */
async function downloadStarted(version: string) {
  const p = s.registry.tarballPath('kanban', version)
  while (s.registry.count(p) === 0) await new Promise((r) => setTimeout(r, 10))
}

describe('marking bad', () => {
  it('answers within a second while another process downloads, and that download is never pointed', async () => {
    s.publish('1.0.0')
    expect((await checkAndStageLatestRuntime(s.opts({ currentVersion: '0.0.1' }))).kind).toBe('staged')
    s.publishVersions(['1.0.0', '2.0.0'])
    const release = s.holdTarball('2.0.0')
    const child = stageInChild(s.opts({ currentVersion: '1.0.0' }))
    await downloadStarted('2.0.0')
    expect((await readStoreStatus(s.userData)).locked).toBe(true)

    const t0 = Date.now()
    expect(markBadVersion(s.userData, '2.0.0')).toBe('1.0.0')
    expect(Date.now() - t0).toBeLessThan(1000)

    release()
    // The download finished after the mark: the stager re-reads the bad list before pointing.
    expect(await child).toEqual({ kind: 'bad-version', version: '2.0.0' })
    expect(readPointer(s.userData)).toMatchObject({ version: '1.0.0' })
    expect(resolvePointerCliEntry(s.userData)).toBe(path.join(s.versionsDir, '1.0.0', 'dist', 'cli.js'))
  })

  it('readPointer and resolvePointerCliEntry never return a bad version, whoever wrote the list', async () => {
    s.publish('1.0.0')
    await checkAndStageLatestRuntime(s.opts({ currentVersion: '0.0.1' }))
    s.publishVersions(['1.0.0', '2.0.0'])
    await checkAndStageLatestRuntime(s.opts({ currentVersion: '1.0.0' }))
    expect(readPointer(s.userData)).toMatchObject({ version: '2.0.0', previous: '1.0.0' })
    // Written without the rollback (an older app, a crash between the two writes).
    fs.writeFileSync(path.join(s.store, 'bad-versions.json'), '["2.0.0"]')
    expect(readPointer(s.userData)).toEqual({ version: '1.0.0', cliEntry: path.join(s.versionsDir, '1.0.0', 'dist', 'cli.js') })
    expect(resolvePointerCliEntry(s.userData)).toBe(path.join(s.versionsDir, '1.0.0', 'dist', 'cli.js'))
    fs.writeFileSync(path.join(s.store, 'bad-versions.json'), '["2.0.0","1.0.0"]')
    expect(readPointer(s.userData)).toBeNull()
    expect(resolvePointerCliEntry(s.userData)).toBeNull()
  })

  it('staging keeps the last good fallback when the pointed version and its fallback are bad', async () => {
    for (const v of ['1.0.0', '1.1.0', '1.2.0']) {
      s.publish(v)
      await checkAndStageLatestRuntime(s.opts({ currentVersion: '0.0.1' }))
    }
    // 1.1.0 and 1.2.0 went bad without a rollback; 1.0.0 was pruned, so nothing good is left...
    fs.writeFileSync(path.join(s.store, 'bad-versions.json'), '["1.1.0","1.2.0"]')
    s.publish('2.0.0')
    expect(await checkAndStageLatestRuntime(s.opts({ currentVersion: '0.0.1' }))).toEqual({ kind: 'staged', version: '2.0.0' })
    expect(readPointer(s.userData)?.previous).toBeUndefined()
    // ...and once 2.0.0 is good and 3.0.0 comes, 2.0.0 is the fallback that pruning keeps.
    s.publish('3.0.0')
    await checkAndStageLatestRuntime(s.opts({ currentVersion: '0.0.1' }))
    expect(readPointer(s.userData)).toMatchObject({ version: '3.0.0', previous: '2.0.0' })
    expect(fs.readdirSync(s.versionsDir).sort()).toEqual(['2.0.0', '3.0.0'])
  })
})

describe('the pointer never moves backwards', () => {
  it('a stager whose tag names an older version leaves the newer pointer alone, without downloading', async () => {
    s.publishVersions(['2.0.0', '3.0.0'], { latest: '2.0.0', next: '3.0.0' })
    expect(await checkAndStageLatestRuntime(s.opts({ currentVersion: '1.0.0', distTag: 'next' }))).toEqual({ kind: 'staged', version: '3.0.0' })
    expect(await checkAndStageLatestRuntime(s.opts({ currentVersion: '1.0.0' }))).toEqual({ kind: 'already-staged' })
    expect(readPointer(s.userData)?.version).toBe('3.0.0')
    expect(s.registry.count(s.registry.tarballPath('kanban', '2.0.0'))).toBe(0)
  })

  it('two stagers racing with different tags leave the newer version pointed', async () => {
    s.publishVersions(['2.0.0', '3.0.0'], { latest: '2.0.0', next: '3.0.0' })
    // The older one waits for the lock while the newer one downloads, then finds it staged.
    const release = s.holdTarball('3.0.0')
    const newer = checkAndStageLatestRuntime(s.opts({ currentVersion: '1.0.0', distTag: 'next' }))
    await downloadStarted('3.0.0')
    const older = stageInChild(s.opts({ currentVersion: '1.0.0' }))
    await new Promise((r) => setTimeout(r, 300))
    release()
    expect(await newer).toEqual({ kind: 'staged', version: '3.0.0' })
    expect(await older).toEqual({ kind: 'already-staged' })
    expect(readPointer(s.userData)?.version).toBe('3.0.0')
  })
})

describe('versions compare as npm compares them', () => {
  it.each(['v2.0.0', '=2.0.0', '  2.0.0 ', '2.0.0+local.3'])('currentVersion %j is 2.0.0: up-to-date', async (current) => {
    s.publish('2.0.0')
    expect(await checkAndStageLatestRuntime(s.opts({ currentVersion: current }))).toEqual({ kind: 'up-to-date' })
  })

  it('build metadata does not make a version newer', async () => {
    s.publish('2.0.0+build.5')
    expect(await checkAndStageLatestRuntime(s.opts({ currentVersion: '2.0.0' }))).toEqual({ kind: 'up-to-date' })
  })
})

describe('stores of the original TypeScript implementation', () => {
  /** The layout the original left: no completion record, pointer without `previous`. */
  const legacyStore = (version: string) => typeScriptStore(s.userData, version)

  it('its pointed folder is run at start-up and adopted, not downloaded again', async () => {
    const cli = legacyStore('2.0.0')
    expect(resolvePointerCliEntry(s.userData)).toBe(cli)
    s.publish('2.0.0')
    expect(await checkAndStageLatestRuntime(s.opts({ currentVersion: '1.0.0' }))).toEqual({ kind: 'already-staged' })
    expect(s.registry.tarballRequests()).toBe(0)
    expect(fs.existsSync(path.join(s.versionsDir, '2.0.0', '.kanban-runtime-complete.json'))).toBe(true)
    expect(s.isWhole('2.0.0')).toBe(true)
    expect(resolvePointerCliEntry(s.userData)).toBe(cli)
  })

  it('a newer version is staged over it, with the adopted one as the fallback', async () => {
    legacyStore('2.0.0')
    s.publish('3.0.0')
    expect(await checkAndStageLatestRuntime(s.opts({ currentVersion: '2.0.0' }))).toEqual({ kind: 'staged', version: '3.0.0' })
    expect(readPointer(s.userData)).toMatchObject({ version: '3.0.0', previous: '2.0.0' })
    expect(markBadVersion(s.userData, '3.0.0')).toBe('2.0.0')
  })
})

it('stray regular files in versions/ never block staging', async () => {
  fs.mkdirSync(s.versionsDir, { recursive: true })
  for (const name of ['notes.partial', '0.9.0', '2.0.0.partial', '2.0.0']) fs.writeFileSync(path.join(s.versionsDir, name), 'x')
  s.publish('2.0.0')
  expect(await checkAndStageLatestRuntime(s.opts())).toEqual({ kind: 'staged', version: '2.0.0' })
  expect(fs.readdirSync(s.versionsDir)).toEqual(['2.0.0'])
  expect(s.isWhole('2.0.0')).toBe(true)
})
