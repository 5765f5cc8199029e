// What the addon says of a store (readStoreStatus, diagnoseStore), and the bounds it exports
// (optionLimits, cleanVersion) checked against what its calls accept.
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { binding, rejection } from './helpers/binding'
import { Scenario } from './helpers/scenario'

const b = binding
const s = Scenario.perTest()

/** Publishes and stages each version in turn; the last is pointed, the one before its fallback. */
async function stage(...versions: string[]) {
  for (const version of versions) {
    s.publish(version)
    expect(await b.checkAndStageLatestRuntime(s.opts())).toEqual({ kind: 'staged', version })
  }
}

/** The one problem diagnoseStore finds. */
async function onlyProblem() {
  const d = await b.diagnoseStore(s.userData)
  expect(d.healthy).toBe(false)
  expect(d.problems).toHaveLength(1)
  return d.problems[0]
}

describe('diagnoseStore', () => {
  it('a staged and pointed store is healthy; so is one never written', async () => {
    expect(await b.diagnoseStore(s.userData)).toEqual({ healthy: true, problems: [], notes: [] })
    await stage('1.1.0')
    expect(await b.diagnoseStore(s.userData)).toEqual({ healthy: true, problems: [], notes: [] })
  })

  it('a pointer that is not JSON', async () => {
    await stage('1.1.0')
    fs.writeFileSync(path.join(s.store, 'current.json'), '{"version": "1.1.0",')
    expect(await onlyProblem()).toEqual({
      kind: 'pointer-invalid',
      problem: 'current.json is unreadable or names a folder outside this store',
      fix: expect.stringContaining('the app runs its bundled runtime'),
    })
  })

  it('a pointer whose version folder is missing', async () => {
    await stage('1.1.0')
    fs.rmSync(path.join(s.versionsDir, '1.1.0'), { recursive: true })
    expect(await onlyProblem()).toEqual({
      kind: 'pointed-damaged',
      problem: 'the pointed version 1.1.0 is not whole',
      fix: 'run stage: it stages that version again',
    })
  })

  it('an entry of the wrong type at a store name, then the note once it was moved aside', async () => {
    await stage('1.1.0')
    fs.rmSync(s.stagingDir, { recursive: true, force: true })
    fs.writeFileSync(s.stagingDir, 'not a folder')
    expect(await onlyProblem()).toEqual({
      kind: 'misplaced',
      problem: 'staging is a regular file where the store keeps a folder, so no update can be staged',
      fix: expect.stringContaining('it moves staging aside to staging.misplaced-<pid>-<n>'),
    })
    b.cleanupPartials(s.userData)
    const d = await b.diagnoseStore(s.userData)
    expect(d).toMatchObject({ healthy: true, problems: [] })
    expect(d.notes).toEqual([{ kind: 'moved-aside', note: expect.stringMatching(/^staging\.misplaced-\d+-\d+ was moved aside/) }])
  })

  it('a store file over its cap is not read, and says so with its size', async () => {
    await stage('1.1.0')
    const record = path.join(s.store, 'launches.json')
    fs.writeFileSync(record, `{"attempts":{},"pad":"${'x'.repeat(64 * 1024)}"}`)
    expect(await onlyProblem()).toEqual({
      kind: 'launch-record-refused',
      problem: `launches.json is larger than 64 KiB (${fs.statSync(record).size} bytes), so no launch is counted or confirmed`,
      fix: expect.stringContaining('delete it'),
    })
    // What the finding says is what the store does: the record reads as empty.
    expect((await b.readStoreStatus(s.userData)).versions[0]).toMatchObject({ attempts: 0, confirmed: false })
  })

  it('a launch on trial is a note, not a problem', async () => {
    await stage('1.1.0')
    b.beginLaunch(s.userData, { bundledVersion: '1.0.0' })
    const d = await b.diagnoseStore(s.userData)
    expect(d).toMatchObject({ healthy: true, problems: [] })
    expect(d.notes).toEqual([{ kind: 'unconfirmed-launches', note: expect.stringMatching(/^1\.1\.0 was launched 1 time and never confirmed healthy/) }])
  })
})

describe('readStoreStatus', () => {
  it('says why each version is kept by the rule pruneStore applies, and pruneStore removes the rest', async () => {
    await stage('1.2.0', '1.3.0')
    // Two older whole versions, one of them confirmed, and a pointer written by hand with no
    // fallback of its own.
    for (const version of ['1.0.5', '1.1.0']) {
      fs.cpSync(path.join(s.versionsDir, '1.2.0'), path.join(s.versionsDir, version), { recursive: true })
      fs.writeFileSync(path.join(s.versionsDir, version, '.kanban-runtime-complete.json'), JSON.stringify({ version, integrity: 'x', files: 1, bytes: 1 }))
    }
    expect(b.confirmLaunch(s.userData, b.cliEntryFor(s.userData, '1.0.5'))).toBe('1.0.5')
    fs.writeFileSync(path.join(s.store, 'current.json'), JSON.stringify({ version: '1.3.0', cliEntry: b.cliEntryFor(s.userData, '1.3.0') }))
    const st = await b.readStoreStatus(s.userData, { currentVersion: 'v1.1.0' })
    expect(st.versions.map((v) => [v.version, v.keptBecause])).toEqual([
      ['1.0.5', ['confirmed']],
      ['1.1.0', ['running']],
      ['1.2.0', ['fallback']],
      ['1.3.0', ['pointed']],
    ])
    // Not the pointer's `previous`, yet what pruning keeps as its fallback.
    expect(st.versions[2]).toMatchObject({ version: '1.2.0', fallback: false })
    expect(Object.keys(st.versions[0]).sort()).toEqual(['attempts', 'bad', 'bytes', 'confirmed', 'fallback', 'keptBecause', 'pointed', 'version', 'whole'])
    const unkept = (await b.readStoreStatus(s.userData)).versions.filter((v) => v.keptBecause.length === 0).map((v) => v.version)
    expect(unkept).toEqual(['1.1.0'])
    expect((await b.pruneStore(s.userData)).removed).toEqual(unkept)
  })

  it('a currentVersion that is not semver names no version', async () => {
    await stage('1.1.0')
    const st = await b.readStoreStatus(s.userData, { currentVersion: 'dev' })
    expect(st.versions.map((v) => v.keptBecause)).toEqual([['pointed']])
  })
})

describe('optionLimits', () => {
  const limits = b.optionLimits()
  const staging: [string, { min: number; max: number }][] = [
    ['timeoutMs', limits.timeoutMs],
    ['connectTimeoutMs', limits.timeoutMs],
    ['idleTimeoutMs', limits.timeoutMs],
    ['retries', limits.retries],
    ['minReleaseAgeMinutes', limits.minReleaseAgeMinutes],
    ['maxBytesPerSecond', limits.cap],
    ['maxUnpackedBytes', limits.cap],
    ['maxEntries', limits.cap],
    ['maxDocumentBytes', limits.cap],
  ]

  it('are whole numbers a JS number holds exactly', () => {
    for (const { min, max } of Object.values(limits)) {
      expect(Number.isSafeInteger(min) && Number.isSafeInteger(max) && min <= max).toBe(true)
    }
  })

  it('each staging option is refused just past its exported range and taken at its ends', async () => {
    s.publish('1.1.0')
    for (const [option, { min, max }] of staging) {
      for (const past of [min - 1, max + 1]) {
        const err = await rejection(b.checkAndStageLatestRuntime(s.opts({ [option]: past })))
        expect([option, past, err.code, err.option]).toEqual([option, past, 'EINVALID_OPTION', option])
      }
      for (const end of [min, max]) {
        // The smallest timeouts and caps fail the run itself, never its option check.
        const outcome = await b.checkAndStageLatestRuntime(s.opts({ [option]: end })).catch((e) => e)
        expect([option, end, outcome.code]).not.toEqual([option, end, 'EINVALID_OPTION'])
      }
    }
    // The runs at the ends went on to stage.
    expect(s.isWhole('1.1.0')).toBe(true)
  })

  it("beginLaunch's maxUnconfirmedLaunches is refused just past its exported range and taken at its ends", async () => {
    await stage('1.1.0')
    const { min, max } = limits.maxUnconfirmedLaunches
    for (const past of [min - 1, max + 1]) {
      expect(() => b.beginLaunch(s.userData, { bundledVersion: '1.0.0', maxUnconfirmedLaunches: past })).toThrow(
        expect.objectContaining({ code: 'EINVALID_OPTION', option: 'maxUnconfirmedLaunches' }),
      )
    }
    expect(b.beginLaunch(s.userData, { bundledVersion: '1.0.0', maxUnconfirmedLaunches: max })).toMatchObject({ version: '1.1.0', attempt: 1 })
    // At the smallest limit, the one launch never confirmed rolls it back.
    expect(b.beginLaunch(s.userData, { bundledVersion: '1.0.0', maxUnconfirmedLaunches: min })).toMatchObject({
      cliEntry: null,
      rolledBack: { version: '1.1.0', reason: 'unconfirmed-launches' },
    })
  })
})

describe('cleanVersion', () => {
  it('reads a version as every call of the addon does', () => {
    expect(['1.2.3', 'v1.2.3', '=1.2.3', ' 1.2.3 ', '1.2.3-rc.1+b.5'].map((v) => b.cleanVersion(v))).toEqual(['1.2.3', '1.2.3', '1.2.3', '1.2.3', '1.2.3-rc.1+b.5'])
    for (const v of ['1.2', 'latest', '', '1.2.3.4', '01.2.3', 42, null, undefined, {}]) expect(b.cleanVersion(v)).toBeNull()
    // What it refuses, beginLaunch refuses.
    expect(() => b.beginLaunch(s.userData, { bundledVersion: '1.2' })).toThrow(expect.objectContaining({ code: 'EINVALID_OPTION', option: 'bundledVersion' }))
  })
})
