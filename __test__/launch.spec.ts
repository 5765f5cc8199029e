// Launch health: a staged runtime gets a fixed number of trial launches and must be confirmed,
// or it is rolled back by itself. The app's start-up is a real child process here, which crashes,
// hangs and is killed, as an Electron main process taken down by its runtime would be.
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { binding } from './helpers/binding'
import { holdLock } from './helpers/child'
import { runtimeTarball, tempDir } from './helpers/fixtures'
import { Scenario } from './helpers/scenario'

const b = binding as any
const s = Scenario.perTest()
const addon = path.resolve(__dirname, '..', 'index.js')
const autoUpdate = path.resolve(__dirname, '..', 'auto-update.js')
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { createRuntimeAutoUpdate } = require(autoUpdate)

async function stage(version: string, currentVersion = '1.0.0') {
  s.publish(version)
  return b.checkAndStageLatestRuntime(s.opts({ currentVersion }))
}

/**
 * One start of the app in a child process: it decides what to launch, prints it, then dies the
 * way `end` says: `crash` (the runtime took the main process down), `hang` (killed by the test,
 * as a user force-quits a frozen app) or `exit`.
 */
async function start(userData: string, end: 'crash' | 'hang' | 'exit', max = 2): Promise<any> {
  const body = `
    const b = require(${JSON.stringify(addon)})
    const l = b.beginLaunch(${JSON.stringify(userData)}, { bundledVersion: '1.0.0', maxUnconfirmedLaunches: ${max} })
    process.stdout.write(JSON.stringify(l) + '\\n')
    if (${JSON.stringify(end)} === 'crash') process.kill(process.pid, 'SIGKILL')
    if (${JSON.stringify(end)} === 'hang') setInterval(() => {}, 1000)
  `
  return JSON.parse((await runStart(body, end === 'hang')).line)
}

/**
 * Runs one start's `body` in a child process: resolves to the first line it prints, and how it
 * exited. With `hang`, the child is killed with SIGKILL once it printed, as a force-quit.
 */
async function runStart(body: string, hang: boolean): Promise<{ line: string; code: number | null; signal: string | null }> {
  const child = spawn(process.execPath, ['-e', body], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  const line = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d
      if (out.includes('\n')) resolve(out.split('\n')[0])
    })
    child.once('exit', (code, signal) => (out.includes('\n') ? undefined : reject(new Error(`start died: ${code} ${signal}`))))
  })
  if (hang) child.kill('SIGKILL')
  const [code, signal] = await new Promise<[number | null, string | null]>((r) =>
    child.exitCode !== null || child.signalCode !== null ? r([child.exitCode, child.signalCode]) : child.once('exit', (c, sig) => r([c, sig])),
  )
  return { line, code, signal }
}

describe('a staged runtime that never comes up is left behind by itself', () => {
  for (const end of ['crash', 'hang'] as const) {
    it(`one that ${end === 'crash' ? 'kills the app' : 'hangs until the app is force-quit'} on every start: at most max + 1 starts`, async () => {
      expect(await stage('1.4.0')).toEqual({ kind: 'staged', version: '1.4.0' })
      const launched: string[] = []
      let last: any
      for (let n = 0; n < 10; n++) {
        last = await start(s.userData, end)
        if (!last.cliEntry) break
        launched.push(`${last.version}#${last.attempt}`)
      }
      expect(launched).toEqual(['1.4.0#1', '1.4.0#2'])
      expect(last).toMatchObject({ cliEntry: null, version: '1.0.0', rolledBack: { version: '1.4.0', reason: 'unconfirmed-launches' } })
      expect(b.isBadVersion(s.userData, '1.4.0')).toBe(true)
      expect(await b.checkAndStageLatestRuntime(s.opts())).toEqual({ kind: 'bad-version', version: '1.4.0' })
      // Told once: the next start just runs the bundled runtime.
      expect(await start(s.userData, 'exit')).toMatchObject({ cliEntry: null, attempt: 0 })
    })
  }

  it('rolls back to the newest confirmed version still whole, not to the bundled runtime', async () => {
    await stage('1.4.0')
    const first = await start(s.userData, 'exit')
    expect(b.confirmLaunch(s.userData, first.cliEntry)).toBe('1.4.0')
    expect(await stage('1.5.0', '1.4.0')).toEqual({ kind: 'staged', version: '1.5.0' })
    for (let n = 1; n <= 2; n++) expect(await start(s.userData, 'crash')).toMatchObject({ version: '1.5.0', attempt: n })
    const back = await start(s.userData, 'exit')
    expect(back).toMatchObject({ version: '1.4.0', attempt: 0, rolledBack: { version: '1.5.0' } })
    expect(back.cliEntry).toBe(b.cliEntryFor(s.userData, '1.4.0'))
  })

  it('a confirmed version is never rolled back by the counter', async () => {
    await stage('1.4.0')
    const first = await start(s.userData, 'exit')
    b.confirmLaunch(s.userData, first.cliEntry)
    for (let n = 0; n < 5; n++) {
      expect(await start(s.userData, 'crash')).toMatchObject({ version: '1.4.0', attempt: 0, cliEntry: first.cliEntry })
    }
    expect(b.isBadVersion(s.userData, '1.4.0')).toBe(false)
  })

  it('pruning keeps the newest confirmed version', async () => {
    await stage('1.4.0')
    b.confirmLaunch(s.userData, (await start(s.userData, 'exit')).cliEntry)
    await stage('1.5.0', '1.4.0')
    await stage('1.6.0', '1.5.0')
    const pruned = await b.pruneStore(s.userData, '1.6.0')
    expect(pruned.removed).not.toContain('1.4.0')
    expect(s.isWhole('1.4.0')).toBe(true)
  })

  it('the launch rule: a stale pointer, an invalid one, an unrunnable one', async () => {
    await stage('1.4.0')
    expect(b.beginLaunch(s.userData, { bundledVersion: '1.4.0' })).toMatchObject({ cliEntry: null, attempt: 0 })
    expect(b.pointerFileExists(s.userData)).toBe(false)
    fs.writeFileSync(path.join(s.store, 'current.json'), '{"version":"9.0.0","cliEntry":"/bin/sh"}')
    expect(b.beginLaunch(s.userData, { bundledVersion: '1.0.0' }).cliEntry).toBeNull()
    expect(b.pointerFileExists(s.userData)).toBe(false)
    b.writePointer(s.userData, { version: '1.4.0', cliEntry: b.cliEntryFor(s.userData, '1.4.0') })
    fs.rmSync(path.join(b.versionDir(s.userData, '1.4.0'), 'node_modules'), { recursive: true })
    expect(b.beginLaunch(s.userData, { bundledVersion: '1.0.0' }).cliEntry).toBeNull()
    expect(b.pointerFileExists(s.userData)).toBe(false)
  })

  it('a store with no pointer is left as it is', () => {
    const u = tempDir()
    expect(b.beginLaunch(u, { bundledVersion: '1.0.0' })).toEqual({ cliEntry: null, version: '1.0.0', attempt: 0 })
    expect(fs.readdirSync(u)).toEqual([])
  })

  it('bad options are EINVALID_OPTION naming the option', () => {
    const u = tempDir()
    for (const [opts, option] of [
      [undefined, 'opts'],
      [{}, 'bundledVersion'],
      [{ bundledVersion: 'one' }, 'bundledVersion'],
      [{ bundledVersion: '1.0.0', maxUnconfirmedLaunches: 0 }, 'maxUnconfirmedLaunches'],
      [{ bundledVersion: '1.0.0', maxUnconfirmedLaunches: 1.5 }, 'maxUnconfirmedLaunches'],
      [{ bundledVersion: '1.0.0', maxUnconfirmedLaunches: '2' }, 'maxUnconfirmedLaunches'],
    ] as const) {
      expect(() => b.beginLaunch(u, opts)).toThrow(expect.objectContaining({ code: 'EINVALID_OPTION', option }))
    }
    expect(() => b.confirmLaunch(u, 42)).toThrow(expect.objectContaining({ code: 'EINVALID_OPTION', option: 'cliEntry' }))
  })
})

describe('kill -9 during beginLaunch', () => {
  /** Busy-waits `us` microseconds: finer than a timer, to land a kill anywhere in a call. */
  function spin(us: number) {
    const end = process.hrtime.bigint() + BigInt(Math.round(us * 1000))
    while (process.hrtime.bigint() < end);
  }

  /** Starts a child that loads the addon, says `ready`, and runs `body` once it reads a byte. */
  async function armed(body: string) {
    const child = spawn(process.execPath, ['-e', `const b = require(${JSON.stringify(addon)}); process.stdout.write('ready\\n'); process.stdin.once('data', () => { ${body} })`], {
      stdio: ['pipe', 'pipe', 'inherit'],
    })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    await vi.waitFor(() => expect(out).toContain('ready'), { timeout: 10_000 })
    return { child, out: () => out }
  }

  it('100 kills at random instants: the count is off by at most one and no rollback is lost', async () => {
    await stage('1.4.0')
    const pristine = tempDir()
    fs.cpSync(s.userData, pristine, { recursive: true })
    const launches = path.join('runtime-store', 'launches.json')
    for (let i = 0; i < 100; i++) {
      const u = tempDir()
      fs.cpSync(pristine, u, { recursive: true })
      b.writePointer(u, { version: '1.4.0', cliEntry: b.cliEntryFor(u, '1.4.0') })
      const rollback = i % 2 === 1
      // Odd runs start with the trials used up, so the killed call is a rollback.
      if (rollback) fs.writeFileSync(path.join(u, launches), JSON.stringify({ attempts: { '1.4.0': 2 }, confirmed: [] }))
      const { child, out } = await armed(
        `for (;;) { const l = b.beginLaunch(${JSON.stringify(u)}, { bundledVersion: '1.0.0', maxUnconfirmedLaunches: ${rollback ? 2 : 1000} }); process.stdout.write(l.attempt + '\\n') }`,
      )
      child.stdin.write('x')
      spin(Math.random() * 3000)
      child.kill('SIGKILL')
      await new Promise((r) => child.once('exit', r))
      const done = out().split('\n').slice(1).filter(Boolean)
      const file = path.join(u, launches)
      // Never torn: the old record or the new one.
      const record = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : { attempts: {} }
      if (rollback) {
        // However far the rollback got, 1.4.0 is never launched again.
        const next = b.beginLaunch(u, { bundledVersion: '1.0.0' })
        expect(next.cliEntry).toBeNull()
        expect(b.isBadVersion(u, '1.4.0')).toBe(true)
      } else {
        const printed = done.length ? Number(done[done.length - 1]) : 0
        const counted = record.attempts['1.4.0'] ?? 0
        expect(counted - printed).toBeGreaterThanOrEqual(0)
        expect(counted - printed).toBeLessThanOrEqual(1)
        expect(b.readPointer(u)?.version).toBe('1.4.0')
      }
      fs.rmSync(u, { recursive: true, force: true })
    }
  }, 120_000)
})

describe('reportLaunchFailed', () => {
  it('marks the version that ran, removes its folder, rolls the pointer back', async () => {
    await stage('1.4.0')
    const ran = b.beginLaunch(s.userData, { bundledVersion: '1.0.0' }).cliEntry
    expect(b.reportLaunchFailed(s.userData, ran, 'probe failed')).toEqual({ failedVersion: '1.4.0', pointer: null })
    expect(b.isBadVersion(s.userData, '1.4.0')).toBe(true)
    expect(fs.existsSync(b.versionDir(s.userData, '1.4.0'))).toBe(false)
    expect(b.pointerFileExists(s.userData)).toBe(false)
  })

  it('a background stage that advanced the pointer meanwhile is left alone', async () => {
    await stage('1.4.0')
    const ran = b.beginLaunch(s.userData, { bundledVersion: '1.0.0' }).cliEntry
    expect(await stage('1.5.0', '1.4.0')).toEqual({ kind: 'staged', version: '1.5.0' })
    const f = b.reportLaunchFailed(s.userData, ran, 'crashed')
    expect(f).toMatchObject({ failedVersion: '1.4.0', pointer: { version: '1.5.0' } })
    expect(b.resolvePointerCliEntry(s.userData)).toBe(b.cliEntryFor(s.userData, '1.5.0'))
    expect(b.isBadVersion(s.userData, '1.5.0')).toBe(false)
  })

  it('throws when the mark cannot be recorded, and leaves everything as it was', async () => {
    await stage('1.4.0')
    const ran = b.beginLaunch(s.userData, { bundledVersion: '1.0.0' }).cliEntry
    fs.mkdirSync(path.join(s.store, 'bad-versions.json'))
    const before = fs.readFileSync(path.join(s.store, 'current.json'), 'utf8')
    expect(() => b.reportLaunchFailed(s.userData, ran, 'x')).toThrow(expect.objectContaining({ code: 'EIO' }))
    expect(fs.readFileSync(path.join(s.store, 'current.json'), 'utf8')).toBe(before)
    expect(s.isWhole('1.4.0')).toBe(true)
  })

  it('a cliEntry outside the store changes nothing', async () => {
    await stage('1.4.0')
    expect(b.reportLaunchFailed(s.userData, '/opt/kanban/1.4.0/dist/cli.js', 'x')).toMatchObject({
      failedVersion: null,
      pointer: { version: '1.4.0' },
    })
    expect(b.isBadVersion(s.userData, '1.4.0')).toBe(false)
  })

  it('keeps why and when each launch failed, for readStoreStatus, newest first', async () => {
    await stage('1.4.0')
    const ran = b.beginLaunch(s.userData, { bundledVersion: '1.0.0' }).cliEntry
    const before = Date.now()
    b.reportLaunchFailed(s.userData, ran, `exit code 3 from http://ci:hunter2@127.0.0.1:9/x ${'y'.repeat(10_000)}`)
    const reported = (await b.readStoreStatus(s.userData)).launchFailures
    expect(reported).toHaveLength(1)
    expect(reported[0]).toMatchObject({ version: '1.4.0', reason: 'launch-failed' })
    // The app's words are masked, as every error and log line is, and cut to a size a status shows.
    expect(reported[0].detail).toMatch(/^exit code 3 from http:\/\/\*\*\*@127\.0\.0\.1:9\/x y+…$/)
    expect(reported[0].detail.length).toBeLessThanOrEqual(301)
    expect(reported[0].at).toBeGreaterThanOrEqual(before)
    expect(reported[0].at).toBeLessThanOrEqual(Date.now())

    // Rolled back by beginLaunch itself: no words from the app.
    await stage('1.5.0')
    for (let n = 0; n < 3; n++) b.beginLaunch(s.userData, { bundledVersion: '1.0.0' })
    expect(b.isBadVersion(s.userData, '1.5.0')).toBe(true)
    const st = await b.readStoreStatus(s.userData)
    expect(st.launchFailures.map((f: any) => [f.version, f.reason, f.detail])).toEqual([
      ['1.5.0', 'unconfirmed-launches', null],
      ['1.4.0', 'launch-failed', reported[0].detail],
    ])
    // Marked bad by hand: bad, with no launch failure on record.
    await stage('1.6.0')
    b.markBadVersion(s.userData, '1.6.0')
    const after = await b.readStoreStatus(s.userData)
    expect(after.badVersions).toEqual(['1.4.0', '1.5.0', '1.6.0'])
    expect(after.launchFailures.map((f: any) => f.version)).toEqual(['1.5.0', '1.4.0'])
  })
})

describe('createRuntimeAutoUpdate', () => {
  // Every wiring a test made is stopped after it: no confirmation left pending on a removed store.
  const made: any[] = []
  afterEach(() => {
    for (const u of made.splice(0)) u.stop()
  })

  function app(bundled = '1.0.0', settings: Record<string, unknown> = {}) {
    const res = tempDir()
    const unpacked = path.join(res, 'app.asar.unpacked')
    fs.mkdirSync(path.join(unpacked, 'cli'), { recursive: true })
    fs.writeFileSync(path.join(unpacked, 'cli', 'package.json'), JSON.stringify({ version: bundled }))
    fs.cpSync(s.native, path.join(unpacked, 'node_modules'), { recursive: true })
    const calls: unknown[][] = []
    const logs: unknown[][] = []
    const logger = { log: (...a: unknown[]) => logs.push(a), warn: (...a: unknown[]) => logs.push(a) }
    const u = createRuntimeAutoUpdate(
      { isPackaged: true, userData: s.userData, resourcesPath: res, shellVersion: '0.0.1', broadcast: (...a: unknown[]) => calls.push(a) },
      { staging: { registry: s.registry.url, retries: 0 }, firstCheckDelayMs: 10, checkIntervalMs: 50, logger, ...settings },
    )
    made.push(u)
    return { u, calls, logs }
  }

  it('is null when the app is not packaged', () => {
    expect(createRuntimeAutoUpdate({ isPackaged: false, userData: '/x', resourcesPath: '/x', shellVersion: '1.0.0', broadcast() {} })).toBeNull()
  })

  it('stages in the background, launches it next, rolls it back on failure keyed on what ran', async () => {
    s.publish('1.4.0')
    const { u, calls } = app()
    expect(u.resolveCliEntryOverride()).toBeNull()
    u.scheduleChecks()
    await vi.waitFor(() => expect(calls).toContainEqual(['runtime:update-staged', '1.4.0']), { timeout: 10_000 })
    u.stop()
    const ran = u.resolveCliEntryOverride()
    expect(ran).toBe(b.cliEntryFor(s.userData, '1.4.0'))
    u.onCliEntryOverrideFailed('probe failed', ran)
    expect(calls).toContainEqual(['runtime:rolled-back', '1.4.0'])
    expect(b.isBadVersion(s.userData, '1.4.0')).toBe(true)
    expect(u.resolveCliEntryOverride()).toBeNull()
  })

  it('a failure reported with a reason of any type (an Error, an exit code) still rolls back', async () => {
    const reasons: unknown[] = [new Error('exited'), 1, { signal: 'SIGSEGV' }]
    const recorded = ['Error: exited', '1', '[object Object]']
    for (const [i, reason] of reasons.entries()) {
      const version = `1.${4 + i}.0`
      await stage(version)
      const { u, calls } = app()
      const ran = u.resolveCliEntryOverride()
      expect(ran).toBe(b.cliEntryFor(s.userData, version))
      u.onCliEntryOverrideFailed(reason as any, ran!)
      expect(b.isBadVersion(s.userData, version)).toBe(true)
      expect(calls).toContainEqual(['runtime:rolled-back', version])
      // What the app passed is what status shows of the failure.
      const failures = (await b.readStoreStatus(s.userData)).launchFailures
      expect(failures.find((f: any) => f.version === version)).toMatchObject({ reason: 'launch-failed', detail: recorded[i] })
      u.stop()
    }
  })

  it('a maxUnconfirmedLaunches the addon would refuse is refused at creation', () => {
    for (const maxUnconfirmedLaunches of [0, 1.5, 1001, '2', null]) {
      expect(() => app('1.0.0', { maxUnconfirmedLaunches })).toThrow(TypeError)
    }
  })

  it('a broadcast listener that throws never turns a launch decision into null', async () => {
    await stage('1.4.0')
    const { u } = app('1.0.0', { maxUnconfirmedLaunches: 1 })
    const ran = u.resolveCliEntryOverride()
    expect(ran).toBe(b.cliEntryFor(s.userData, '1.4.0'))
    const res = tempDir()
    fs.mkdirSync(path.join(res, 'app.asar.unpacked', 'cli'), { recursive: true })
    fs.writeFileSync(path.join(res, 'app.asar.unpacked', 'cli', 'package.json'), JSON.stringify({ version: '1.0.0' }))
    const throwing = createRuntimeAutoUpdate(
      {
        isPackaged: true,
        userData: s.userData,
        resourcesPath: res,
        shellVersion: '0.0.1',
        broadcast: () => {
          throw new Error('listener failed')
        },
      },
      { maxUnconfirmedLaunches: 1, logger: { log() {}, warn() {} }, confirmAfterMs: 0 },
    )!
    // The second unconfirmed launch rolls 1.4.0 back and broadcasts it: the listener throws, the
    // decision (the bundled runtime) stands.
    expect(throwing.resolveCliEntryOverride()).toBeNull()
    expect(b.isBadVersion(s.userData, '1.4.0')).toBe(true)
  })

  it('background checks never count as launches: a healthy runtime survives any number of them', async () => {
    await stage('1.4.0')
    const { u, calls, logs } = app()
    const ran = u.resolveCliEntryOverride()
    u.scheduleChecks()
    // Many checks at a 50 ms interval, each running the launch rule (waited for by count: a slow
    // host may run fewer in a given time).
    await vi.waitFor(() => expect(s.registry.count(s.registry.docPath('kanban'))).toBeGreaterThan(3), { timeout: 20_000 })
    u.stop()
    expect(calls).toEqual([])
    expect(logs.filter((l) => String(l[0]).includes('failed'))).toEqual([])
    // Still the first trial, and stop() ended it cleanly: the next launch is the first again.
    expect(b.beginLaunch(s.userData, { bundledVersion: '1.0.0' })).toMatchObject({ cliEntry: ran, attempt: 1 })
  })

  it('rolls back unconfirmed launches by itself and tells the app once; a confirmed one stays', async () => {
    await stage('1.4.0')
    // Each start a wiring of its own, none stopped: app processes that died.
    const starts = [app(), app(), app(), app()]
    const ran = starts[0].u.resolveCliEntryOverride()
    expect(starts[1].u.resolveCliEntryOverride()).toBe(ran)
    expect(starts[2].u.resolveCliEntryOverride()).toBeNull()
    expect(starts[2].calls).toEqual([['runtime:rolled-back', '1.4.0']])
    expect(starts[3].u.resolveCliEntryOverride()).toBeNull()
    expect(starts[3].calls).toEqual([])

    await stage('1.5.0')
    const { u } = app()
    const next = u.resolveCliEntryOverride()
    expect(u.confirmCliEntryOverride(next)).toBe('1.5.0')
    for (let n = 0; n < 4; n++) expect(app().u.resolveCliEntryOverride()).toBe(next)
  })

  it('restarts of the runtime within one session never add up to a rollback', async () => {
    await stage('1.4.0')
    const { u, calls } = app()
    const entry = b.cliEntryFor(s.userData, '1.4.0')
    // A restart, a settings change: each relaunch ends the one before, which reported no failure.
    for (let n = 0; n < 5; n++) expect(u.resolveCliEntryOverride()).toBe(entry)
    expect(calls).toEqual([])
    expect(b.isBadVersion(s.userData, '1.4.0')).toBe(false)
    const record = () => JSON.parse(fs.readFileSync(path.join(s.store, 'launches.json'), 'utf8'))
    expect(record().attempts).toEqual({ '1.4.0': 1 })
    u.stop()
    expect(record().attempts).toEqual({})
  })

  it('a confirmation that fails keeps the trial open, so a clean quit still ends it', async () => {
    await stage('1.4.0')
    const { u, logs } = app('1.0.0', { confirmAfterMs: null })
    const entry = u.resolveCliEntryOverride()
    const file = path.join(s.store, 'launches.json')
    const saved = fs.readFileSync(file)
    // The record cannot be rewritten for a moment: the confirmation fails, and is logged.
    fs.rmSync(file)
    fs.mkdirSync(file)
    expect(u.confirmCliEntryOverride(entry)).toBeNull()
    expect(logs.some((l) => String(l[0]).includes('confirmLaunch failed'))).toBe(true)
    fs.rmdirSync(file)
    fs.writeFileSync(file, saved)
    u.stop()
    expect(JSON.parse(fs.readFileSync(file, 'utf8')).attempts).toEqual({})
  })

  it('a failed mark is logged and swallowed, and the pointer kept', async () => {
    await stage('1.4.0')
    const { u, calls, logs } = app()
    const ran = u.resolveCliEntryOverride()
    fs.mkdirSync(path.join(s.store, 'bad-versions.json'))
    expect(() => u.onCliEntryOverrideFailed('x', ran)).not.toThrow()
    // As the desktop does: the version that failed is the cliEntry's, recorded or not.
    expect(calls).toEqual([['runtime:rolled-back', '1.4.0']])
    expect(logs.some((l) => String(l[0]).includes('reportLaunchFailed failed'))).toBe(true)
    expect(b.readPointer(s.userData)?.cliEntry).toBe(ran)
  })

  it('a corrupt bundled package.json falls back to the shell version', async () => {
    await stage('1.4.0')
    const res = tempDir()
    fs.mkdirSync(path.join(res, 'app.asar.unpacked', 'cli'), { recursive: true })
    fs.writeFileSync(path.join(res, 'app.asar.unpacked', 'cli', 'package.json'), '{"version": 3}')
    const u = createRuntimeAutoUpdate({ isPackaged: true, userData: s.userData, resourcesPath: res, shellVersion: '1.4.0', broadcast() {} })
    expect(u.resolveCliEntryOverride()).toBeNull()
    expect(b.pointerFileExists(s.userData)).toBe(false)
  })

  it("the bundled version is read with the addon's parser: one it refuses falls back to the shell version", async () => {
    await stage('1.4.0')
    for (const [bundled, launches] of [
      // Not semver: refused, so the shell's 1.0.0 decides and the staged 1.4.0 launches.
      ['1.5', true],
      ['1.5.0.1', true],
      // npm's spelling of 1.5.0, which the addon takes: newer than 1.4.0, so the bundled one runs.
      ['v1.5.0', false],
    ] as const) {
      const res = tempDir()
      fs.mkdirSync(path.join(res, 'app.asar.unpacked', 'cli'), { recursive: true })
      fs.writeFileSync(path.join(res, 'app.asar.unpacked', 'cli', 'package.json'), JSON.stringify({ version: bundled }))
      const u = createRuntimeAutoUpdate(
        { isPackaged: true, userData: s.userData, resourcesPath: res, shellVersion: '1.0.0', broadcast() {} },
        { confirmAfterMs: null, logger: { log() {}, warn() {} } },
      )
      made.push(u)
      expect([bundled, u.resolveCliEntryOverride()]).toEqual([bundled, launches ? b.cliEntryFor(s.userData, '1.4.0') : null])
      u.stop()
    }
  })

  it('maxUnconfirmedLaunches takes the range optionLimits exports, both ends', () => {
    const { min, max } = b.optionLimits().maxUnconfirmedLaunches
    for (const maxUnconfirmedLaunches of [min, max]) expect(() => app('1.0.0', { maxUnconfirmedLaunches })).not.toThrow()
    for (const maxUnconfirmedLaunches of [min - 1, max + 1]) {
      expect(() => app('1.0.0', { maxUnconfirmedLaunches })).toThrow(expect.objectContaining({ code: 'EINVALID_OPTION', option: 'maxUnconfirmedLaunches' }))
    }
  })

  it('the race: the runtime from A fails after a background check pointed at B: A is marked bad, the pointer stays on B', async () => {
    await stage('1.4.0')
    const { u, calls } = app()
    const ran = u.resolveCliEntryOverride()
    expect(ran).toBe(b.cliEntryFor(s.userData, '1.4.0'))
    // While the runtime from 1.4.0 starts, the background check stages 1.5.0.
    s.publish('1.5.0')
    u.scheduleChecks()
    await vi.waitFor(() => expect(calls).toContainEqual(['runtime:update-staged', '1.5.0']), { timeout: 10_000 })
    u.stop()
    expect(b.readPointer(s.userData)?.version).toBe('1.5.0')
    u.onCliEntryOverrideFailed('readiness probe failed', ran)
    expect(calls).toContainEqual(['runtime:rolled-back', '1.4.0'])
    expect(b.isBadVersion(s.userData, '1.4.0')).toBe(true)
    expect(fs.existsSync(b.versionDir(s.userData, '1.4.0'))).toBe(false)
    expect(b.isBadVersion(s.userData, '1.5.0')).toBe(false)
    expect(b.readPointer(s.userData)?.version).toBe('1.5.0')
    // The next start tries the newer one, as its first trial.
    expect(u.resolveCliEntryOverride()).toBe(b.cliEntryFor(s.userData, '1.5.0'))
    expect(b.beginLaunch(s.userData, { bundledVersion: '1.0.0' })).toMatchObject({ version: '1.5.0', attempt: 2 })
  })

  /**
   * 1.4.0 and 1.5.0 staged, the pointer on 1.5.0 with 1.4.0 as its fallback, and a registry whose
   * document deprecates 1.5.0 ("breaks login"); `newer`, when given, is published as the latest.
   */
  async function pointedAndDeprecated(newer?: { version: string; tarball: Buffer; integrity?: string }) {
    await stage('1.4.0')
    await stage('1.5.0', '1.4.0')
    s.registry.publish(
      'kanban',
      [
        { version: '1.4.0', tarball: runtimeTarball('1.4.0') },
        { version: '1.5.0', tarball: runtimeTarball('1.5.0'), deprecated: 'breaks login' },
        ...(newer ? [newer] : []),
      ],
      { latest: newer?.version ?? '1.5.0' },
    )
  }

  it('broadcasts runtime:withdrawn with the version and the new pointer when its publisher deprecates the one pointed', async () => {
    for (const [bundled, pointer] of [
      ['1.0.0', '1.4.0'],
      // 1.4.0 is not newer than this app's own runtime: back to the bundled one.
      ['1.4.0', null],
    ] as const) {
      await pointedAndDeprecated()
      const { u, calls, logs } = app(bundled, { staging: { registry: s.registry.url, retries: 0, honorDeprecation: true } })
      u.scheduleChecks()
      await vi.waitFor(() => expect(calls).toContainEqual(['runtime:withdrawn', '1.5.0', pointer]), { timeout: 10_000 })
      // Later checks find nothing more to withdraw, and stage nothing.
      await new Promise((r) => setTimeout(r, 300))
      u.stop()
      expect(calls).toEqual([['runtime:withdrawn', '1.5.0', pointer]])
      expect(logs.some((l) => String(l[0]).includes('kanban@1.5.0 was withdrawn by its publisher (breaks login)'))).toBe(true)
      expect(b.readPointer(s.userData)?.version ?? null).toBe(pointer)
      expect(b.isBadVersion(s.userData, '1.5.0')).toBe(false)
      expect(u.resolveCliEntryOverride()).toBe(pointer && b.cliEntryFor(s.userData, pointer))
      u.stop()
      fs.rmSync(s.userData, { recursive: true, force: true })
    }
  })

  it('broadcasts runtime:withdrawn when the check that withdrew the running version then fails to stage a newer one', async () => {
    // A tarball that never matches its integrity: every check that gets this far rejects.
    await pointedAndDeprecated({ version: '1.6.0', tarball: runtimeTarball('1.6.0'), integrity: `sha512-${Buffer.alloc(64).toString('base64')}` })
    const { u, calls, logs } = app('1.0.0', { staging: { registry: s.registry.url, retries: 0, honorDeprecation: true } })
    u.scheduleChecks()
    await vi.waitFor(() => expect(calls).toContainEqual(['runtime:withdrawn', '1.5.0', '1.4.0']), { timeout: 10_000 })
    // Later checks fail the same way from 1.4.0: the withdrawal is announced once.
    await vi.waitFor(() => expect(logs.filter((l) => String(l[0]).includes('check failed')).length).toBeGreaterThan(2), { timeout: 10_000 })
    u.stop()
    expect(calls).toEqual([['runtime:withdrawn', '1.5.0', '1.4.0']])
    expect(b.readPointer(s.userData)?.version).toBe('1.4.0')
    expect(b.isBadVersion(s.userData, '1.5.0')).toBe(false)
  })

  it(
    'a launch resolution that throws in a background check is logged, and the check still runs',
    async () => {
      await stage('1.4.0')
      // The shell now bundles 1.5.0: the pointer at 1.4.0 is stale and resolveLaunch must drop it,
      // under a store lock that a frozen process holds.
      const release = await holdLock(path.join(s.store, 'store.lock'))
      try {
        const before = s.registry.count(s.registry.docPath('kanban'))
        const { u, logs } = app('1.5.0', { checkIntervalMs: 60_000 })
        u.scheduleChecks()
        await vi.waitFor(() => expect(logs.some((l) => String(l[0]).includes('resolveLaunch failed'))).toBe(true), { timeout: 15_000 })
        // The check went on to the registry, from the bundled version: nothing newer there.
        await vi.waitFor(() => expect(s.registry.count(s.registry.docPath('kanban'))).toBeGreaterThan(before), { timeout: 10_000 })
        u.stop()
        expect(logs.some((l) => String(l[0]).includes('Runtime update check failed'))).toBe(false)
      } finally {
        await release()
      }
    },
    30_000,
  )

  describe('confirmAfterMs: an app that only changed its import', () => {
    /**
     * One start of an app that only swapped its wiring for this module: it resolves what to
     * launch, then its runtime runs for `upMs` (the process stays up), or takes the app down at
     * once (`crash`). Resolves to the cliEntry it launched.
     */
    async function appStart(end: { upMs: number } | 'crash', confirmAfterMs: number): Promise<string | null> {
      const body = `
        const { createRuntimeAutoUpdate } = require(${JSON.stringify(autoUpdate)})
        const u = createRuntimeAutoUpdate(
          { isPackaged: true, userData: ${JSON.stringify(s.userData)}, resourcesPath: '/nonexistent', shellVersion: '1.0.0', broadcast() {} },
          { confirmAfterMs: ${confirmAfterMs}, logger: { log() {}, warn() {} } },
        )
        const cliEntry = u.resolveCliEntryOverride()
        process.stdout.write(JSON.stringify(cliEntry) + '\\n')
        if (${JSON.stringify(end)} === 'crash') process.kill(process.pid, 'SIGKILL')
        else setTimeout(() => {}, ${end === 'crash' ? 0 : end.upMs})
      `
      const r = await new Promise<{ out: string; code: number | null; signal: string | null }>((resolve) => {
        const child = spawn(process.execPath, ['-e', body], { stdio: ['ignore', 'pipe', 'inherit'] })
        let out = ''
        child.stdout.on('data', (d) => (out += d))
        child.on('exit', (code, signal) => resolve({ out, code, signal }))
      })
      // Windows has no signals: process.kill ends the process at once with exit code 1.
      if (process.platform === 'win32') expect(r.code).toBe(end === 'crash' ? 1 : 0)
      else expect(r.signal).toBe(end === 'crash' ? 'SIGKILL' : null)
      return JSON.parse(r.out.split('\n')[0])
    }

    const health = async (version: string) => (await b.readStoreStatus(s.userData)).versions.find((v: any) => v.version === version)

    it('a healthy runtime survives any number of starts: each trial is confirmed once it stayed up', async () => {
      await stage('1.4.0')
      const entry = b.cliEntryFor(s.userData, '1.4.0')
      for (let n = 0; n < 6; n++) expect(await appStart({ upMs: 300 }, 100)).toBe(entry)
      expect(await health('1.4.0')).toMatchObject({ confirmed: true, attempts: 0, bad: false })
      // A newer release staged later gets its trial and is confirmed alike.
      await stage('1.5.0', '1.4.0')
      for (let n = 0; n < 4; n++) expect(await appStart({ upMs: 300 }, 100)).toBe(b.cliEntryFor(s.userData, '1.5.0'))
      expect(await health('1.5.0')).toMatchObject({ confirmed: true, attempts: 0, bad: false })
    })

    it('a runtime that takes the app down before the delay is still rolled back after max + 1 starts', async () => {
      await stage('1.4.0')
      const entry = b.cliEntryFor(s.userData, '1.4.0')
      expect(await appStart('crash', 200)).toBe(entry)
      expect(await appStart('crash', 200)).toBe(entry)
      expect(await appStart({ upMs: 0 }, 200)).toBeNull()
      expect(b.isBadVersion(s.userData, '1.4.0')).toBe(true)
    })

    it('a failure reported before the delay rolls back, and the pending confirmation never fires', async () => {
      await stage('1.4.0')
      const { u, calls } = app('1.0.0', { confirmAfterMs: 100 })
      const ran = u.resolveCliEntryOverride()
      u.onCliEntryOverrideFailed('exited with code 1', ran)
      await new Promise((r) => setTimeout(r, 300))
      expect(calls).toEqual([['runtime:rolled-back', '1.4.0']])
      expect(b.isBadVersion(s.userData, '1.4.0')).toBe(true)
      const record = JSON.parse(fs.readFileSync(path.join(s.store, 'launches.json'), 'utf8'))
      expect(record.confirmed ?? []).not.toContain('1.4.0')
    })

    it('stop() cancels a pending confirmation and ends the trial; 0 and null turn it off; scheduleChecks keeps it', async () => {
      await stage('1.4.0')
      // Trials enough that the counter rolls nothing back here.
      const trials = { maxUnconfirmedLaunches: 10 }
      const stopped = app('1.0.0', { ...trials, confirmAfterMs: 100 }).u
      stopped.resolveCliEntryOverride()
      stopped.stop()
      for (const confirmAfterMs of [0, null]) app('1.0.0', { ...trials, confirmAfterMs }).u.resolveCliEntryOverride()
      await new Promise((r) => setTimeout(r, 300))
      // Neither confirmed nor counted for the stopped one: only the two still open count.
      expect(await health('1.4.0')).toMatchObject({ confirmed: false, attempts: 2 })
      // Checks scheduled after the launch leave its confirmation pending.
      const { u } = app('1.0.0', { ...trials, confirmAfterMs: 100, firstCheckDelayMs: 60_000 })
      u.resolveCliEntryOverride()
      u.scheduleChecks()
      await vi.waitFor(async () => expect(await health('1.4.0')).toMatchObject({ confirmed: true, attempts: 0 }), { timeout: 5_000 })
    })

    it('a confirmAfterMs past a timer\'s 32 bits waits as long as it says', async () => {
      await stage('1.4.0')
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
      try {
        const { u } = app('1.0.0', { confirmAfterMs: 2 ** 31 + 5_000 })
        u.resolveCliEntryOverride()
        vi.advanceTimersByTime(2 ** 31 - 1)
        vi.advanceTimersByTime(4_000)
        expect(await health('1.4.0')).toMatchObject({ confirmed: false, attempts: 1 })
        vi.advanceTimersByTime(1_001)
        expect(await health('1.4.0')).toMatchObject({ confirmed: true, attempts: 0 })
      } finally {
        vi.useRealTimers()
      }
    })
  })

  it('its timers never keep the process alive', () => {
    const r = spawnSync(
      process.execPath,
      [
        '-e',
        `const { createRuntimeAutoUpdate } = require(${JSON.stringify(autoUpdate)}); const u = createRuntimeAutoUpdate({ isPackaged: true, userData: ${JSON.stringify(tempDir())}, resourcesPath: '/nonexistent', shellVersion: '1.0.0', broadcast() {} }); u.scheduleChecks(); console.log('scheduled')`,
      ],
      { encoding: 'utf8', timeout: 10_000 },
    )
    expect(r.status).toBe(0)
    expect(r.stdout.trim()).toBe('scheduled')
  })
})

describe('the wiring counts a start only when it did not end cleanly', () => {
  type End = 'quit' | 'crash' | 'hang' | 'probe-fails' | 'ready-then-crash'

  /**
   * One start of the app in a child process with the wiring in the box: it resolves what to
   * launch, prints it, then ends as `end` says: `quit` (the runtime runs briefly, the app quits
   * normally and calls stop()), `crash` (the runtime takes the main process down at once), `hang`
   * (killed by the test, as a user force-quits a frozen app), `probe-fails` (the readiness probe
   * fails, reported, then a normal quit) or `ready-then-crash` (confirmed at readiness, then the
   * main process dies). The automatic confirmation is a minute away: no start here lasts that long.
   */
  async function appStart(end: End): Promise<string | null> {
    const body = `
      const { createRuntimeAutoUpdate } = require(${JSON.stringify(autoUpdate)})
      const u = createRuntimeAutoUpdate(
        { isPackaged: true, userData: ${JSON.stringify(s.userData)}, resourcesPath: '/nonexistent', shellVersion: '1.0.0', broadcast() {} },
        { confirmAfterMs: 60000, logger: { log() {}, warn() {} } },
      )
      const cliEntry = u.resolveCliEntryOverride()
      process.stdout.write(JSON.stringify(cliEntry) + '\\n')
      const end = ${JSON.stringify(end)}
      if (end === 'crash') process.kill(process.pid, 'SIGKILL')
      if (end === 'hang') setInterval(() => {}, 1000)
      if (end === 'ready-then-crash') {
        if (cliEntry) u.confirmCliEntryOverride(cliEntry)
        process.kill(process.pid, 'SIGKILL')
      }
      if (end === 'probe-fails' && cliEntry) u.onCliEntryOverrideFailed('readiness probe failed', cliEntry)
      if (end === 'quit' || end === 'probe-fails') setTimeout(() => { u.stop(); process.exit(0) }, 50)
    `
    const { line, code, signal } = await runStart(body, end === 'hang')
    if (end === 'quit' || end === 'probe-fails') expect([code, signal]).toEqual([0, null])
    // Windows has no signals: a process that kills itself ends with exit code 1.
    else if (process.platform === 'win32') expect(signal === 'SIGKILL' || code === 1).toBe(true)
    else expect(signal).toBe('SIGKILL')
    return JSON.parse(line)
  }

  const health = async (version: string) => (await b.readStoreStatus(s.userData)).versions.find((v: any) => v.version === version)

  // maxUnconfirmedLaunches is the default, 2.
  const table: { name: string; ends: End[]; launched: number; rolledBack: boolean }[] = [
    { name: 'clean quits x5 keep the version', ends: ['quit', 'quit', 'quit', 'quit', 'quit', 'quit'], launched: 6, rolledBack: false },
    { name: 'kill -9 at start x(N+1) rolls it back', ends: ['crash', 'crash', 'crash'], launched: 2, rolledBack: true },
    { name: 'a hang until force-quit x(N+1) rolls it back', ends: ['hang', 'hang', 'hang'], launched: 2, rolledBack: true },
    { name: 'clean quits between crashes do not wipe the crashes', ends: ['quit', 'crash', 'quit', 'crash', 'quit'], launched: 4, rolledBack: true },
    { name: 'a failed probe rolls it back at once', ends: ['probe-fails', 'quit'], launched: 1, rolledBack: true },
    {
      name: 'a readiness confirmation survives a crash right after it',
      ends: ['ready-then-crash', 'crash', 'crash', 'crash', 'quit'],
      launched: 5,
      rolledBack: false,
    },
  ]

  for (const row of table) {
    it(row.name, async () => {
      await stage('1.4.0')
      const entry = b.cliEntryFor(s.userData, '1.4.0')
      const launched: (string | null)[] = []
      for (const end of row.ends) launched.push(await appStart(end))
      expect(launched).toEqual(row.ends.map((_, n) => (n < row.launched ? entry : null)))
      expect(b.isBadVersion(s.userData, '1.4.0')).toBe(row.rolledBack)
      if (!row.rolledBack) {
        expect(b.readPointer(s.userData)?.cliEntry).toBe(entry)
        // The version is still on trial (never confirmed) with no start counted against it, or
        // confirmed.
        expect(await health('1.4.0')).toMatchObject(
          row.ends[0] === 'ready-then-crash' ? { confirmed: true, attempts: 0 } : { confirmed: false, attempts: 0 },
        )
      }
    }, 60_000)
  }

  it('endLaunch: a clean end is recorded before it returns, once per trial launch', async () => {
    await stage('1.4.0')
    const entry = b.cliEntryFor(s.userData, '1.4.0')
    expect(b.beginLaunch(s.userData, { bundledVersion: '1.0.0' })).toMatchObject({ attempt: 1 })
    expect(b.beginLaunch(s.userData, { bundledVersion: '1.0.0' })).toMatchObject({ attempt: 2 })
    expect(b.endLaunch(s.userData, entry)).toBe('1.4.0')
    expect(JSON.parse(fs.readFileSync(path.join(s.store, 'launches.json'), 'utf8')).attempts).toEqual({ '1.4.0': 1 })
    expect(b.endLaunch(s.userData, entry)).toBe('1.4.0')
    expect(b.endLaunch(s.userData, entry)).toBeNull()
    expect(b.endLaunch(s.userData, '/elsewhere/versions/1.4.0/dist/cli.js')).toBeNull()
    expect(() => b.endLaunch(s.userData, 42)).toThrow(expect.objectContaining({ code: 'EINVALID_OPTION', option: 'cliEntry' }))
    // A confirmed version has no trial to end.
    b.beginLaunch(s.userData, { bundledVersion: '1.0.0' })
    b.confirmLaunch(s.userData, entry)
    expect(b.endLaunch(s.userData, entry)).toBeNull()
  })
})

describe('the wiring\'s timers', () => {
  const made: any[] = []
  afterEach(() => {
    for (const u of made.splice(0)) u.stop()
  })
  const MAX_DELAY_MS = 365 * 24 * 60 * 60 * 1000

  function wiring(settings: Record<string, unknown>, broadcast: (...a: unknown[]) => void = () => {}) {
    const res = tempDir()
    fs.mkdirSync(path.join(res, 'app.asar.unpacked', 'cli'), { recursive: true })
    fs.writeFileSync(path.join(res, 'app.asar.unpacked', 'cli', 'package.json'), JSON.stringify({ version: '1.0.0' }))
    fs.cpSync(s.native, path.join(res, 'app.asar.unpacked', 'node_modules'), { recursive: true })
    const u = createRuntimeAutoUpdate(
      { isPackaged: true, userData: s.userData, resourcesPath: res, shellVersion: '0.0.1', broadcast },
      { staging: { registry: s.registry.url, retries: 0 }, logger: { log() {}, warn() {} }, ...settings },
    )
    made.push(u)
    return u
  }

  it('a setting past its maximum, or not a whole number of ms, is refused at creation with EINVALID_OPTION', () => {
    expect(require(autoUpdate).MAX_DELAY_MS).toBe(MAX_DELAY_MS)
    for (const option of ['firstCheckDelayMs', 'checkIntervalMs', 'confirmAfterMs']) {
      for (const value of [-1, 1.5, MAX_DELAY_MS + 1, Number.POSITIVE_INFINITY, Number.NaN, '30000']) {
        expect(() => wiring({ [option]: value }), `${option}: ${String(value)}`).toThrow(TypeError)
        expect(() => wiring({ [option]: value })).toThrow(expect.objectContaining({ code: 'EINVALID_OPTION', option }))
      }
      // The maximum itself is a wait like any other.
      expect(() => wiring({ [option]: MAX_DELAY_MS })).not.toThrow()
    }
    // An interval of 0 would spin.
    expect(() => wiring({ checkIntervalMs: 0 })).toThrow(expect.objectContaining({ code: 'EINVALID_OPTION', option: 'checkIntervalMs' }))
    expect(() => wiring({ maxUnconfirmedLaunches: 0 })).toThrow(expect.objectContaining({ code: 'EINVALID_OPTION', option: 'maxUnconfirmedLaunches' }))
  })

  it('waits past a timer\'s 32 bits are held, never fired at once: no request for a month', async () => {
    s.publish('1.4.0')
    const doc = s.registry.docPath('kanban')
    // Just past Node's limit, and past it once the +-10 % spread is drawn.
    wiring({ firstCheckDelayMs: 2 ** 31 }).scheduleChecks()
    wiring({ firstCheckDelayMs: 0, checkIntervalMs: 30 * 24 * 60 * 60 * 1000 }).scheduleChecks()
    await vi.waitFor(() => expect(s.registry.count(doc)).toBe(1), { timeout: 10_000 })
    await new Promise((r) => setTimeout(r, 1_500))
    // The second wiring's first check, and nothing else.
    expect(s.registry.count(doc)).toBe(1)
  })

  it('a chained first check fires when it is due, and not before', async () => {
    s.publish('1.4.0')
    const doc = s.registry.docPath('kanban')
    // Captured before the fake timers: the check itself is real network, waited for in real time.
    const realSetTimeout = globalThis.setTimeout
    const realSleep = (ms: number) => new Promise((r) => realSetTimeout(r, ms))
    const staged: unknown[] = []
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    try {
      const day = 24 * 60 * 60 * 1000
      wiring({ firstCheckDelayMs: 30 * day, checkIntervalMs: 30 * day }, (...a) => staged.push(a)).scheduleChecks()
      vi.advanceTimersByTime(30 * day - 1)
      await realSleep(300)
      expect(s.registry.count(doc)).toBe(0)
      vi.advanceTimersByTime(1)
      await vi.waitFor(() => expect(staged).toEqual([['runtime:update-staged', '1.4.0']]), { timeout: 10_000 })
    } finally {
      vi.useRealTimers()
    }
    expect(s.registry.count(doc)).toBe(1)
  })
})

describe('the wiring never throws into the app', () => {
  const throwing = {
    log() {
      throw new Error('logger failed')
    },
    warn() {
      throw new Error('logger failed')
    },
  }

  it('a throwing logger never breaks a launch decision, a rollback or a failure report', async () => {
    await stage('1.4.0')
    const calls: unknown[][] = []
    const wiring = () =>
      createRuntimeAutoUpdate(
        { isPackaged: true, userData: s.userData, resourcesPath: '/nonexistent', shellVersion: '1.0.0', broadcast: (...a: unknown[]) => calls.push(a) },
        { maxUnconfirmedLaunches: 1, confirmAfterMs: null, logger: throwing },
      )
    const u = wiring()
    const entry = b.cliEntryFor(s.userData, '1.4.0')
    expect(u.resolveCliEntryOverride()).toBe(entry)
    // The next start, after one that never ended cleanly: the counter's rollback logs a warning,
    // the logger throws, the decision stands.
    expect(wiring().resolveCliEntryOverride()).toBeNull()
    expect(calls).toEqual([['runtime:rolled-back', '1.4.0']])
    expect(b.isBadVersion(s.userData, '1.4.0')).toBe(true)
    await stage('1.5.0')
    const next = u.resolveCliEntryOverride()
    expect(() => u.onCliEntryOverrideFailed('exited', next)).not.toThrow()
    expect(calls).toContainEqual(['runtime:rolled-back', '1.5.0'])
    // A reason whose String() throws still rolls back.
    await stage('1.6.0')
    const third = u.resolveCliEntryOverride()
    const hostile = { toString: () => { throw new Error('no') } }
    expect(() => u.onCliEntryOverrideFailed(hostile as any, third)).not.toThrow()
    expect(b.isBadVersion(s.userData, '1.6.0')).toBe(true)
    expect(() => u.stop()).not.toThrow()
  })

  it('an error whose message cannot even be read is still swallowed', async () => {
    await stage('1.4.0')
    const hostile = new Error('listener failed')
    Object.defineProperty(hostile, 'message', {
      get() {
        throw new Error('no message')
      },
    })
    const u = createRuntimeAutoUpdate(
      {
        isPackaged: true,
        userData: s.userData,
        resourcesPath: '/nonexistent',
        shellVersion: '1.0.0',
        broadcast: () => {
          throw hostile
        },
      },
      { maxUnconfirmedLaunches: 1, confirmAfterMs: null, logger: { log() {}, warn() {} } },
    )
    const entry = u.resolveCliEntryOverride()
    expect(entry).toBe(b.cliEntryFor(s.userData, '1.4.0'))
    // A second start that died with no clean end: the counter rolls back and broadcasts.
    b.beginLaunch(s.userData, { bundledVersion: '1.0.0', maxUnconfirmedLaunches: 5 })
    const second = createRuntimeAutoUpdate(
      { isPackaged: true, userData: s.userData, resourcesPath: '/nonexistent', shellVersion: '1.0.0', broadcast: () => { throw hostile } },
      { maxUnconfirmedLaunches: 1, confirmAfterMs: null, logger: { log() {}, warn() {} } },
    )
    expect(() => second.resolveCliEntryOverride()).not.toThrow()
    expect(b.isBadVersion(s.userData, '1.4.0')).toBe(true)
    expect(() => u.onCliEntryOverrideFailed('exited', entry)).not.toThrow()
  })

  /** Runs `body` after a wiring `u` with a throwing logger is made, in a child that watches for an uncaught error. */
  function childWithThrowingLogger(body: string, settings: string) {
    // The app's resources, with its node-pty, for a check that stages.
    const res = tempDir()
    fs.mkdirSync(path.join(res, 'app.asar.unpacked', 'cli'), { recursive: true })
    fs.writeFileSync(path.join(res, 'app.asar.unpacked', 'cli', 'package.json'), JSON.stringify({ version: '1.0.0' }))
    fs.cpSync(s.native, path.join(res, 'app.asar.unpacked', 'node_modules'), { recursive: true })
    const script = `
      process.on('uncaughtException', (e) => { console.log('uncaught: ' + e.message); process.exit(3) })
      process.on('unhandledRejection', (e) => { console.log('unhandled: ' + (e && e.message)); process.exit(4) })
      const fs = require('node:fs'), path = require('node:path')
      const { createRuntimeAutoUpdate } = require(${JSON.stringify(autoUpdate)})
      const thrower = () => { throw new Error('logger failed') }
      const u = createRuntimeAutoUpdate(
        { isPackaged: true, userData: ${JSON.stringify(s.userData)}, resourcesPath: ${JSON.stringify(res)}, shellVersion: '1.0.0', broadcast: (...a) => console.log(JSON.stringify(a)) },
        { logger: { log: thrower, warn: thrower }, ${settings} },
      )
      ${body}
    `
    return new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
      let out = ''
      child.stdout.on('data', (d) => (out += d))
      child.on('exit', (code) => resolve({ code, out }))
    })
  }

  it('a confirmation timer whose confirmLaunch fails, with a throwing logger, is no uncaught exception', async () => {
    await stage('1.4.0')
    const r = await childWithThrowingLogger(
      `
      const entry = u.resolveCliEntryOverride()
      // The record cannot be rewritten now: confirmLaunch throws EIO inside the timer.
      const record = path.join(${JSON.stringify(s.store)}, 'launches.json')
      fs.rmSync(record)
      fs.mkdirSync(record)
      setTimeout(() => { console.log('alive ' + entry); process.exit(0) }, 500)
      `,
      'confirmAfterMs: 50',
    )
    expect(r.out).not.toContain('uncaught')
    expect(r.code).toBe(0)
    expect(r.out).toContain(`alive ${b.cliEntryFor(s.userData, '1.4.0')}`)
    expect(await b.readStoreStatus(s.userData).then((st: any) => st.versions[0].confirmed)).toBe(false)
  })

  it('a background check with a throwing logger is no unhandled rejection, and still broadcasts', async () => {
    s.publish('1.4.0')
    const r = await childWithThrowingLogger(
      `
      u.scheduleChecks()
      // Alive until the check is done and its outcome logged (the logger throws there), or 10 s.
      const started = Date.now()
      const wait = setInterval(() => {
        if (!fs.existsSync(path.join(${JSON.stringify(s.store)}, 'current.json')) && Date.now() - started < 10000) return
        setTimeout(() => { clearInterval(wait); u.stop(); process.exit(0) }, 300)
      }, 50)
      `,
      `firstCheckDelayMs: 0, checkIntervalMs: 60000, staging: { registry: ${JSON.stringify(s.registry.url)}, retries: 0, hostNodeVersion: '22.12.0' }`,
    )
    expect(r.out).not.toMatch(/uncaught|unhandled/)
    expect(r.code).toBe(0)
    expect(r.out).toContain('["runtime:update-staged","1.4.0"]')
  }, 20_000)
})
