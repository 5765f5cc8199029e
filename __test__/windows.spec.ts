// What a Windows desktop has that a Linux one rarely does: paths past 260 characters, a user name
// with spaces and letters beyond ASCII, other spellings of one folder, read-only attributes, and a
// running runtime's native module loaded from its version folder (a DLL Windows will not let go
// of). The tests hold on every platform the suite runs on; the spellings only Windows has run
// there alone (npm run test:windows runs them under Wine).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { binding, rejection } from './helpers/binding'
import { holdLock } from './helpers/child'
import { nativeDeps, runtimeTarball, tempDir } from './helpers/fixtures'
import { Scenario } from './helpers/scenario'

const b = binding as any
const s = Scenario.perTest()
const BIN = path.resolve(__dirname, '..', 'bin', 'kanban-runtime-stager.js')
const win32 = process.platform === 'win32'

/** Runs version `v`'s staged CLI with this Node; returns what it printed. */
function runStaged(userData: string, v: string): string {
  const r = spawnSync(process.execPath, [b.cliEntryFor(userData, v)], { encoding: 'utf8', timeout: 20_000 })
  return r.stdout.trim()
}

/** Every file and folder below `dir`. */
function walk(dir: string): { files: string[]; dirs: string[] } {
  const files: string[] = []
  const dirs: string[] = []
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const p = path.join(e.parentPath, e.name)
    if (e.isDirectory()) dirs.push(p)
    else files.push(p)
  }
  return { files, dirs }
}

/**
 * Sets the read-only attribute on every file below `dir` (chmod 0o444: on Windows that is the
 * attribute), and on Windows on every folder too, where it is an attribute Windows itself sets on
 * folders and not a permission. Returns how many were marked.
 */
function makeReadOnly(dir: string): number {
  const { files, dirs } = walk(dir)
  for (const f of files) fs.chmodSync(f, 0o444)
  if (win32) for (const d of [...dirs, dir]) fs.chmodSync(d, 0o555)
  return files.length
}

describe('long paths', () => {
  it('stages, launches and removes a version whose deepest file is past 260 characters', async () => {
    // A deep userData (a long user name, a roaming profile, an app folder) under the temp folder.
    let userData = tempDir()
    while (userData.length < 110) userData = path.join(userData, 'Kanban Desktop Application Data')
    fs.mkdirSync(userData, { recursive: true })
    s.userData = userData
    // 172 bytes below the package: within the extractor's limit, as a real dependency tree is.
    const deep = `dist/${'node_modules/@kanban-app/terminal-renderer-core/'.repeat(2)}lib/${'renderer-'.repeat(6)}backend-x.js`
    const tarball = (v: string) => runtimeTarball(v, { extra: [{ path: `package/${deep}`, body: `deep ${v}` }] })
    s.publish('1.4.0', tarball('1.4.0'))
    expect(await b.checkAndStageLatestRuntime(s.opts())).toEqual({ kind: 'staged', version: '1.4.0' })
    const file = path.join(b.versionDir(userData, '1.4.0'), deep)
    expect(file.length).toBeGreaterThan(260)
    expect(fs.readFileSync(file, 'utf8')).toBe('deep 1.4.0')
    expect(s.isWhole('1.4.0')).toBe(true)
    expect(runStaged(userData, '1.4.0')).toBe('kanban 1.4.0')

    s.publish('1.5.0', tarball('1.5.0'))
    expect(await b.checkAndStageLatestRuntime(s.opts())).toEqual({ kind: 'staged', version: '1.5.0' })
    expect(b.resolvePointerCliEntry(userData)).toBe(b.cliEntryFor(userData, '1.5.0'))
    const status = await b.readStoreStatus(userData)
    expect(status.versions.map((v: any) => [v.version, v.whole])).toEqual([
      ['1.4.0', true],
      ['1.5.0', true],
    ])
    b.removeVersionDir(userData, '1.4.0')
    expect(fs.existsSync(b.versionDir(userData, '1.4.0'))).toBe(false)
    expect(s.partials()).toEqual([])
    expect(await b.pruneStore(userData)).toMatchObject({ busy: false })
    expect(s.isWhole('1.5.0')).toBe(true)
  })
})

describe('a userData with spaces and letters beyond ASCII', () => {
  it('stages, points, launches, reports and removes through every API and the CLI', async () => {
    s.userData = path.join(tempDir(), 'Zoë Ångström-山田 (work)', 'Kanban App')
    fs.mkdirSync(s.userData, { recursive: true })
    s.publish('1.4.0')
    expect(await b.checkAndStageLatestRuntime(s.opts())).toEqual({ kind: 'staged', version: '1.4.0' })
    const entry = b.cliEntryFor(s.userData, '1.4.0')
    expect(entry.startsWith(fs.realpathSync.native(s.userData))).toBe(true)
    expect(b.readPointer(s.userData)).toMatchObject({ version: '1.4.0', cliEntry: entry })
    // The pointer file holds the same characters, as the app's own readers see them.
    expect(JSON.parse(fs.readFileSync(path.join(s.store, 'current.json'), 'utf8')).cliEntry).toBe(entry)
    expect(b.versionFromCliEntry(s.userData, entry)).toBe('1.4.0')
    expect(b.beginLaunch(s.userData, { bundledVersion: '1.0.0' })).toMatchObject({ cliEntry: entry })
    expect(runStaged(s.userData, '1.4.0')).toBe('kanban 1.4.0')
    expect((await b.readStoreStatus(s.userData)).versions[0]).toMatchObject({ version: '1.4.0', whole: true, pointed: true })

    // The CLI takes the folder as an argument: the command line carries it intact.
    const cli = spawnSync(process.execPath, [BIN, 'status', '--user-data', s.userData, '--json'], { encoding: 'utf8', timeout: 20_000 })
    expect(cli.status).toBe(0)
    expect(JSON.parse(cli.stdout).pointer).toMatchObject({ version: '1.4.0', cliEntry: entry })

    s.publish('1.5.0')
    expect(await b.checkAndStageLatestRuntime(s.opts())).toEqual({ kind: 'staged', version: '1.5.0' })
    expect(b.markBadVersion(s.userData, '1.5.0')).toBe('1.4.0')
    b.removeVersionDir(s.userData, '1.5.0')
    expect(fs.existsSync(b.versionDir(s.userData, '1.5.0'))).toBe(false)
    expect(s.partials()).toEqual([])
  })
})

describe.runIf(win32)('Windows spellings of one userData', () => {
  it('a drive-letter, a \\\\?\\, a forward-slash and a lower-case spelling name one store, one pointer and one lock', async () => {
    const drive = fs.realpathSync.native(s.userData)
    expect(drive).toMatch(/^[A-Z]:\\/)
    const verbatim = `\\\\?\\${drive}`
    const others = [verbatim, drive.replaceAll('\\', '/'), drive[0].toLowerCase() + drive.slice(1)]
    s.publish('1.4.0')
    // Staged through the \\?\ spelling, it is recorded in the drive-letter one that apps use.
    expect(await b.checkAndStageLatestRuntime(s.opts({ userData: verbatim }))).toEqual({ kind: 'staged', version: '1.4.0' })
    const entry = b.cliEntryFor(drive, '1.4.0')
    expect(entry.startsWith(`${drive}\\runtime-store\\`)).toBe(true)
    expect(JSON.parse(fs.readFileSync(path.join(drive, 'runtime-store', 'current.json'), 'utf8')).cliEntry).toBe(entry)
    for (const u of others) {
      expect([u, b.cliEntryFor(u, '1.4.0')]).toEqual([u, entry])
      expect([u, b.resolvePointerCliEntry(u)]).toEqual([u, entry])
      expect([u, b.versionFromCliEntry(u, entry)]).toEqual([u, '1.4.0'])
      expect([u, b.versionFromCliEntry(drive, path.join(u, 'runtime-store', 'versions', '1.4.0', 'dist', 'cli.js'))]).toEqual([u, '1.4.0'])
      expect([u, await b.checkAndStageLatestRuntime(s.opts({ userData: u }))]).toEqual([u, { kind: 'already-staged' }])
    }
    // A pointer written through the \\?\ spelling, with a cliEntry joined from it, is the same.
    b.clearPointer(verbatim)
    b.writePointer(verbatim, { version: '1.4.0', cliEntry: path.join(verbatim, 'runtime-store', 'versions', '1.4.0', 'dist', 'cli.js') })
    expect(b.readPointer(drive)).toMatchObject({ version: '1.4.0', cliEntry: entry })

    // One lock: held through the \\?\ spelling, a staging run through the drive letter waits.
    const release = await holdLock(path.join(verbatim, 'runtime-store', 'store.lock'))
    try {
      s.publish('1.5.0')
      const timedOut = await rejection(b.checkAndStageLatestRuntime(s.opts({ userData: drive, timeoutMs: 1500 })))
      expect(timedOut).toMatchObject({ code: 'ETIMEDOUT', phase: 'waiting-for-lock' })
    } finally {
      await release()
    }
    expect(await b.checkAndStageLatestRuntime(s.opts({ userData: drive }))).toEqual({ kind: 'staged', version: '1.5.0' })
  })
})

describe('read-only files in a staged version', () => {
  it('are removed with their version: pruned by a later run, by removeVersionDir, and when damaged and restaged', async () => {
    for (const v of ['1.4.0', '1.5.0']) {
      s.publish(v)
      expect(await b.checkAndStageLatestRuntime(s.opts())).toEqual({ kind: 'staged', version: v })
      expect(makeReadOnly(b.versionDir(s.userData, v))).toBeGreaterThan(3)
    }
    // 1.6.0 makes 1.4.0 neither pointed nor the fallback: the run prunes it.
    s.publish('1.6.0')
    expect(await b.checkAndStageLatestRuntime(s.opts())).toEqual({ kind: 'staged', version: '1.6.0' })
    expect(fs.existsSync(b.versionDir(s.userData, '1.4.0'))).toBe(false)
    expect(s.partials()).toEqual([])
    b.removeVersionDir(s.userData, '1.5.0')
    expect(fs.existsSync(b.versionDir(s.userData, '1.5.0'))).toBe(false)
    expect(s.partials()).toEqual([])

    // A damaged version (its CLI gone) with read-only files is replaced whole.
    const dir = b.versionDir(s.userData, '1.6.0')
    makeReadOnly(dir)
    const cli = b.cliEntryFor(s.userData, '1.6.0')
    fs.chmodSync(path.dirname(cli), 0o755)
    fs.chmodSync(cli, 0o644)
    fs.rmSync(cli)
    expect(s.isWhole('1.6.0')).toBe(false)
    expect(await b.checkAndStageLatestRuntime(s.opts())).toEqual({ kind: 'staged', version: '1.6.0' })
    expect(s.isWhole('1.6.0')).toBe(true)
    expect(s.partials()).toEqual([])
    expect(await b.pruneStore(s.userData)).toMatchObject({ busy: false })
    expect(runStaged(s.userData, '1.6.0')).toBe('kanban 1.6.0')
  })
})

describe("a running runtime's native module", () => {
  /** node-pty's own native module for this platform (Windows: conpty.node), from the suite's install. */
  function realNativeModule(): string {
    const require = createRequire(import.meta.url)
    const lib = path.dirname(require.resolve('node-pty/lib/utils.js'))
    const name = win32 ? 'conpty' : 'pty'
    const { dir } = require('node-pty/lib/utils.js').loadNativeModule(name)
    return path.resolve(lib, dir, `${name}.node`)
  }

  /** Starts a process that loads `file` as a runtime loads node-pty, and stays until killed. */
  async function loadIn(file: string): Promise<ChildProcess> {
    const child = spawn(process.execPath, ['-e', `require(${JSON.stringify(file)}); console.log('loaded'); setTimeout(() => {}, 60_000)`], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once('data', () => resolve())
      child.once('exit', (code) => reject(new Error(`the runtime exited ${code}`)))
    })
    return child
  }

  it('stays loaded while a newer version is staged and pointed; the folder goes once the runtime exits', async () => {
    const native = nativeDeps()
    const module = path.join(native, 'node-pty', 'build', 'Release', path.basename(realNativeModule()))
    fs.copyFileSync(realNativeModule(), module)
    s.native = native
    s.publish('1.4.0')
    expect(await b.checkAndStageLatestRuntime(s.opts())).toEqual({ kind: 'staged', version: '1.4.0' })
    const loaded = path.join(b.versionDir(s.userData, '1.4.0'), 'node_modules', 'node-pty', 'build', 'Release', path.basename(module))
    const runtime = await loadIn(loaded)
    const exited = new Promise((r) => runtime.once('exit', r))
    try {
      s.publish('1.5.0')
      expect(await b.checkAndStageLatestRuntime(s.opts({ currentVersion: '1.4.0' }))).toEqual({ kind: 'staged', version: '1.5.0' })
      expect(b.readPointer(s.userData)).toMatchObject({ version: '1.5.0', previous: '1.4.0' })
      // The running version stays whole: the app falls back to it if 1.5.0 never comes up.
      expect(s.isWhole('1.4.0')).toBe(true)
      expect(s.isWhole('1.5.0')).toBe(true)
      expect(runtime.exitCode).toBeNull()
      expect(await b.pruneStore(s.userData, '1.4.0')).toMatchObject({ removed: [], busy: false })
    } finally {
      runtime.kill()
      await exited
    }
    b.removeVersionDir(s.userData, '1.4.0')
    expect(fs.existsSync(b.versionDir(s.userData, '1.4.0'))).toBe(false)
    expect(s.partials()).toEqual([])
  })
})
