// What Windows users have that Linux users seldom do: paths past 260 characters, a userData with
// spaces and non-ASCII letters, two spellings of one store (a drive path and its \\?\ form),
// read-only files in a staged runtime, and a running runtime's node-pty loaded while a newer
// version is staged. Each runs everywhere; the Windows run (Windows Node under Wine) is where they
// matter.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { binding } from './helpers/binding'
import { listTree, runtimeTarball, tempDir } from './helpers/fixtures'
import { Scenario } from './helpers/scenario'

const b = binding as any
const s = Scenario.perTest()
const win = process.platform === 'win32'

/** Stages `version` into `userData` from the scenario's registry, as the app would. */
async function stage(userData: string, version: string, currentVersion = '1.0.0', extra: Record<string, unknown> = {}) {
  return b.checkAndStageLatestRuntime({ ...s.opts({ currentVersion, ...extra }), userData })
}

describe('paths Windows users have', () => {
  it('a runtime whose deepest file lies past 260 characters stages, runs and is removed', async () => {
    // Four folders of 34 characters: the path fits a ustar header's 155-byte prefix field.
    const deep = Array.from({ length: 4 }, (_, n) => `${String(n).repeat(2)}${'d'.repeat(32)}`).join('/')
    const file = `package/lib/${deep}/index.js`
    const userData = path.join(tempDir(), 'u'.repeat(80), 'Kanban Desktop')
    fs.mkdirSync(userData, { recursive: true })
    s.publish('1.4.0', runtimeTarball('1.4.0', { extra: [{ path: file, body: 'module.exports = 1\n' }] }))
    expect(await stage(userData, '1.0.0')).toEqual({ kind: 'staged', version: '1.4.0' })
    const staged = path.join(b.versionDir(userData, '1.4.0'), file.slice('package/'.length))
    expect(staged.length).toBeGreaterThan(260)
    expect(fs.readFileSync(staged, 'utf8')).toBe('module.exports = 1\n')
    expect(b.resolvePointerCliEntry(userData)).toBe(b.cliEntryFor(userData, '1.4.0'))
    expect((await b.readStoreStatus(userData)).versions[0]).toMatchObject({ version: '1.4.0', whole: true })
    b.clearPointer(userData)
    b.removeVersionDir(userData, '1.4.0')
    expect(fs.existsSync(b.versionDir(userData, '1.4.0'))).toBe(false)
    b.cleanupPartials(userData)
    expect((await b.readStoreStatus(userData)).trash).toEqual([])
  }, 60_000)

  it('a userData with spaces and non-ASCII letters', async () => {
    const userData = path.join(tempDir(), 'Änne Øster 日本語 Kanban')
    fs.mkdirSync(userData, { recursive: true })
    s.publish('1.4.0')
    expect(await stage(userData, '1.0.0')).toEqual({ kind: 'staged', version: '1.4.0' })
    const entry = b.cliEntryFor(userData, '1.4.0')
    expect(entry.startsWith(fs.realpathSync(userData))).toBe(true)
    expect(b.readPointer(userData)).toMatchObject({ version: '1.4.0', cliEntry: entry })
    expect(b.versionFromCliEntry(userData, entry)).toBe('1.4.0')
    expect(b.beginLaunch(userData, { bundledVersion: '1.0.0' })).toMatchObject({ cliEntry: entry, attempt: 1 })
    expect(b.confirmLaunch(userData, entry)).toBe('1.4.0')
    expect(fs.readFileSync(entry, 'utf8')).toContain("kanban 1.4.0")
  })

  it.runIf(win)('a drive path and its \\\\?\\ form are one store', async () => {
    const userData = tempDir()
    const verbatim = `\\\\?\\${userData}`
    s.publish('1.4.0')
    expect(await stage(verbatim, '1.0.0')).toEqual({ kind: 'staged', version: '1.4.0' })
    // Paths are handed out in the drive spelling, whichever spelling was given.
    const entry = b.cliEntryFor(userData, '1.4.0')
    expect(b.cliEntryFor(verbatim, '1.4.0')).toBe(entry)
    expect(entry.startsWith('\\\\?\\')).toBe(false)
    expect(b.readPointer(userData)).toMatchObject({ version: '1.4.0', cliEntry: entry })
    expect(b.readPointer(verbatim)).toEqual(b.readPointer(userData))
    expect(b.versionFromCliEntry(verbatim, entry)).toBe('1.4.0')
    expect(b.versionFromCliEntry(userData, `\\\\?\\${entry}`)).toBe('1.4.0')
    expect(await stage(userData, '1.4.0')).toEqual({ kind: 'up-to-date' })
    b.writePointer(verbatim, { version: '1.4.0', cliEntry: entry })
    expect(b.resolvePointerCliEntry(userData)).toBe(entry)
  })

  it('read-only files in a staged runtime never keep it from being pruned or removed', async () => {
    const readOnly = (v: string) =>
      runtimeTarball(v, { extra: [{ path: 'package/LICENSE', body: 'MIT\n', mode: 0o444 }, { path: 'package/lib/ro.js', body: '1\n', mode: 0o444 }] })
    for (const [v, current] of [['1.4.0', '1.0.0'], ['1.5.0', '1.4.0'], ['1.6.0', '1.5.0'], ['1.7.0', '1.6.0']]) {
      s.publish(v, readOnly(v))
      expect(await stage(s.userData, current)).toEqual({ kind: 'staged', version: v })
    }
    // Each run pruned what the pointer no longer needs, read-only files and all.
    const left = (await b.readStoreStatus(s.userData)).versions.map((v: any) => v.version)
    expect(left).not.toContain('1.4.0')
    b.writePointer(s.userData, { version: '1.7.0', cliEntry: b.cliEntryFor(s.userData, '1.7.0') })
    for (const v of left.filter((v: string) => v !== '1.7.0')) b.removeVersionDir(s.userData, v)
    b.cleanupPartials(s.userData)
    const st = await b.readStoreStatus(s.userData)
    expect(st.versions.map((v: any) => v.version)).toEqual(['1.7.0'])
    expect(st.trash).toEqual([])
    expect(fs.existsSync(s.stagingDir) ? listTree(s.stagingDir) : []).toEqual([])
  }, 60_000)

  it("a running runtime's node-pty stays loaded while newer versions are staged and the old one pruned", async () => {
    // The bundled node-pty's native module is a real one (this addon), so loading it holds it as a
    // running runtime's would.
    const addon = fs.readdirSync(path.join(__dirname, '..')).find((f) => f.endsWith('.node'))!
    fs.copyFileSync(path.join(__dirname, '..', addon), path.join(s.native, 'node-pty/build/Release/pty.node'))
    s.publish('1.4.0')
    expect(await stage(s.userData, '1.0.0')).toEqual({ kind: 'staged', version: '1.4.0' })
    const pty = path.join(b.versionDir(s.userData, '1.4.0'), 'node_modules/node-pty/build/Release/pty.node')
    const runtime = spawn(process.execPath, ['-e', `process.dlopen({ exports: {} }, ${JSON.stringify(pty)}); process.stdout.write('up\\n'); setInterval(() => {}, 1000)`], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    try {
      await new Promise<void>((resolve, reject) => {
        runtime.stdout!.once('data', () => resolve())
        runtime.once('exit', (code) => reject(new Error(`runtime exited ${code}`)))
      })
      // Newer versions stage while 1.4.0 runs; once it is neither pointed, fallback nor running,
      // pruning moves it out of its name and its deletion waits for the runtime.
      for (const [v, current] of [['1.5.0', '1.4.0'], ['1.6.0', '1.5.0'], ['1.7.0', '1.6.0']]) {
        s.publish(v)
        expect(await stage(s.userData, current)).toEqual({ kind: 'staged', version: v })
      }
      expect(b.resolvePointerCliEntry(s.userData)).toBe(b.cliEntryFor(s.userData, '1.7.0'))
      const st = await b.readStoreStatus(s.userData)
      expect(st.versions.map((v: any) => v.version)).not.toContain('1.4.0')
    } finally {
      const gone = new Promise((r) => runtime.once('exit', r))
      runtime.kill()
      await gone
    }
    b.cleanupPartials(s.userData)
    expect((await b.readStoreStatus(s.userData)).trash).toEqual([])
  }, 90_000)
})
