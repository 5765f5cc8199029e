// The store's files as the disk holds them: version names that look like leftovers, a damaged
// bad list, files that are not regular, a frozen lock holder, a read-only store, and other
// spellings of the same userData.
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { type TestContext, describe, expect, it } from 'vitest'
import { binding, rejection } from './helpers/binding'
import { holdLock } from './helpers/child'
import { tempDir } from './helpers/fixtures'
import { Scenario } from './helpers/scenario'

const b = binding as any
const s = Scenario.perTest()
const addon = path.resolve(__dirname, '..', 'index.js')

/** Runs `body` in a child Node with the addon as `b` and `u` the userData; a hang is killed. */
function inChild(userData: string, body: string): { status: number | null; out: string; ms: number } {
  const started = Date.now()
  const r = spawnSync(process.execPath, ['-e', `const b = require(${JSON.stringify(addon)}); const u = ${JSON.stringify(userData)}; ${body}`], {
    encoding: 'utf8',
    // A read that blocks on a FIFO never returns: the kill is the test's failure signal.
    timeout: 10_000,
  })
  return { status: r.status, out: r.stdout.trim(), ms: Date.now() - started }
}

describe('versions named like the store leftovers', () => {
  it('2.0.0-a.trash-1 stays staged: the next check downloads nothing', async () => {
    s.publish('2.0.0-a.trash-1')
    expect(await b.checkAndStageLatestRuntime(s.opts())).toEqual({ kind: 'staged', version: '2.0.0-a.trash-1' })
    expect(s.isWhole('2.0.0-a.trash-1')).toBe(true)
    expect(await b.checkAndStageLatestRuntime(s.opts())).toEqual({ kind: 'already-staged' })
    expect(s.registry.tarballRequests()).toBe(1)
  })

  it('2.0.0-rc.partial survives pruning and cleanupPartials while pointed', async () => {
    s.publish('2.0.0-rc.partial')
    expect(await b.checkAndStageLatestRuntime(s.opts())).toEqual({ kind: 'staged', version: '2.0.0-rc.partial' })
    b.cleanupPartials(s.userData)
    const pruned = await b.pruneStore(s.userData, '1.0.0')
    expect(pruned.removed).toEqual([])
    expect(s.isWhole('2.0.0-rc.partial')).toBe(true)
    expect(b.resolvePointerCliEntry(s.userData)).toBe(b.cliEntryFor(s.userData, '2.0.0-rc.partial'))
  })
})

describe('a partly damaged bad list', () => {
  it('keeps every valid entry, for reading and for the next mark', () => {
    const u = tempDir()
    const file = path.join(u, 'runtime-store', 'bad-versions.json')
    fs.mkdirSync(path.dirname(file), { recursive: true })
    fs.writeFileSync(file, JSON.stringify(['1.4.0', 7, null, { v: 1 }, '1.5.0', 'nope']))
    expect(b.isBadVersion(u, '1.4.0')).toBe(true)
    expect(b.isBadVersion(u, '1.5.0')).toBe(true)
    b.markBadVersion(u, '1.6.0')
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual(['1.4.0', '1.5.0', '1.6.0'])
  })

  it('readPointer never returns a version the damaged list names', async () => {
    s.publish('1.4.0')
    await b.checkAndStageLatestRuntime(s.opts())
    fs.writeFileSync(path.join(s.store, 'bad-versions.json'), JSON.stringify([false, '1.4.0']))
    expect(b.readPointer(s.userData)).toBeNull()
    expect(b.resolvePointerCliEntry(s.userData)).toBeNull()
  })
})

describe('files that are not regular files', () => {
  // Windows has no FIFO in a folder (its named pipes live in \\.\pipe\), nor /dev/zero.
  it.skipIf(process.platform === 'win32')('a FIFO for current.json or bad-versions.json never blocks the JS thread', () => {
    const u = tempDir()
    const store = path.join(u, 'runtime-store')
    fs.mkdirSync(store, { recursive: true })
    for (const name of ['current.json', 'bad-versions.json']) {
      expect(spawnSync('mkfifo', [path.join(store, name)]).status).toBe(0)
    }
    const r = inChild(
      u,
      "console.log(JSON.stringify([b.readPointer(u), b.resolvePointerCliEntry(u), b.isBadVersion(u, '1.0.0'), b.pointerFileExists(u)]))",
    )
    expect(r.status).toBe(0)
    expect(JSON.parse(r.out)).toEqual([null, null, false, false])
  })

  it.skipIf(process.platform === 'win32')('a current.json linked to /dev/zero is no pointer, read without filling memory', () => {
    const u = tempDir()
    const store = path.join(u, 'runtime-store')
    fs.mkdirSync(store, { recursive: true })
    fs.symlinkSync('/dev/zero', path.join(store, 'current.json'))
    fs.symlinkSync('/dev/zero', path.join(store, 'bad-versions.json'))
    const r = inChild(
      u,
      "console.log(JSON.stringify([b.readPointer(u), b.isBadVersion(u, '1.0.0'), process.memoryUsage().rss < 512 * 2 ** 20]))",
    )
    expect(r.status).toBe(0)
    expect(JSON.parse(r.out)).toEqual([null, false, true])
  })

  it('a huge current.json is no pointer', () => {
    const u = tempDir()
    const store = path.join(u, 'runtime-store')
    fs.mkdirSync(store, { recursive: true })
    const cliEntry = b.cliEntryFor(u, '1.0.0')
    fs.writeFileSync(path.join(store, 'current.json'), JSON.stringify({ version: '1.0.0', cliEntry, pad: 'x'.repeat(64 << 10) }))
    expect(b.readPointer(u)).toBeNull()
  })
})

describe('a frozen holder of the store lock', () => {
  it('markBadVersion, writePointer and clearPointer give up after a bounded wait with ELOCKED, changing nothing', async () => {
    s.publish('1.4.0')
    await b.checkAndStageLatestRuntime(s.opts())
    const before = fs.readFileSync(path.join(s.store, 'current.json'), 'utf8')
    const release = await holdLock(path.join(s.store, 'store.lock'))
    try {
      const r = inChild(
        s.userData,
        "const t = Date.now(); try { b.markBadVersion(u, '1.4.0'); console.log('no throw') } catch (e) { console.log(JSON.stringify({ code: e.code, phase: e.phase, timeoutMs: e.timeoutMs, ms: Date.now() - t })) }",
      )
      const err = JSON.parse(r.out)
      expect(err).toMatchObject({ code: 'ELOCKED', phase: 'waiting-for-lock', timeoutMs: 5000 })
      expect(err.ms).toBeGreaterThanOrEqual(4900)
      expect(err.ms).toBeLessThan(9000)
      expect(b.isBadVersion(s.userData, '1.4.0')).toBe(false)
      expect(fs.readFileSync(path.join(s.store, 'current.json'), 'utf8')).toBe(before)
    } finally {
      await release()
    }
  })

  it('pruneStore fails with ELOCKED after its bounded wait, never holding the staging lock meanwhile', async () => {
    s.publish('1.4.0')
    await b.checkAndStageLatestRuntime(s.opts())
    const release = await holdLock(path.join(s.store, 'store.lock'))
    try {
      const t = Date.now()
      const pruning = rejection(b.pruneStore(s.userData))
      await new Promise((r) => setTimeout(r, 1000))
      expect(b.isStoreLocked(s.userData)).toBe(false)
      expect(await pruning).toMatchObject({ code: 'ELOCKED', phase: 'waiting-for-lock' })
      expect(Date.now() - t).toBeLessThan(9000)
      expect(s.isWhole('1.4.0')).toBe(true)
    } finally {
      await release()
    }
  })

  it('a staging call waits for it only within its timeoutMs, and an abort ends the wait', async () => {
    const release = await holdLock(path.join(s.store, 'store.lock'))
    try {
      s.publish('1.4.0')
      let t = Date.now()
      const timedOut = await rejection(b.checkAndStageLatestRuntime(s.opts({ timeoutMs: 1500 })))
      expect(timedOut).toMatchObject({ code: 'ETIMEDOUT', timeout: 'call', phase: 'waiting-for-lock' })
      expect(Date.now() - t).toBeLessThan(4000)

      const ac = new AbortController()
      setTimeout(() => ac.abort(), 500)
      t = Date.now()
      const aborted = await rejection(b.checkAndStageLatestRuntime(s.opts({ signal: ac.signal })))
      expect(aborted).toMatchObject({ code: 'EABORTED' })
      expect(Date.now() - t).toBeLessThan(3000)
      expect(b.isStoreLocked(s.userData)).toBe(false)
    } finally {
      await release()
    }
  })
})

describe('a read-only store', () => {
  it('isStoreLocked answers without creating or opening a lock file for writing', () => {
    const u = tempDir()
    fs.mkdirSync(path.join(u, 'runtime-store'))
    expect(b.isStoreLocked(u)).toBe(false)
    expect(fs.readdirSync(path.join(u, 'runtime-store'))).toEqual([])
  })

  it('isStoreLocked and readStoreStatus work where nothing can be written', async () => {
    s.publish('1.4.0')
    await b.checkAndStageLatestRuntime(s.opts())
    // As root, permission bits do not stop a writer: the child then drops to `nobody`, for whom
    // the store and its lock file are read-only. On Windows the chmod sets the lock file's
    // read-only attribute, which stops every writer.
    for (let d = s.userData; d !== path.dirname(d); d = path.dirname(d)) {
      if (d === path.dirname(s.userData)) break
      fs.chmodSync(d, 0o755)
    }
    fs.chmodSync(s.userData, 0o755)
    fs.chmodSync(path.dirname(s.userData), 0o755)
    fs.chmodSync(path.join(s.store, 'stage.lock'), 0o444)
    fs.chmodSync(s.store, 0o555)
    try {
      const r = inChild(
        s.userData,
        "if (process.getuid?.() === 0) process.setuid('nobody'); b.readStoreStatus(u).then((st) => console.log(JSON.stringify([b.isStoreLocked(u), st.locked, st.pointer && st.pointer.version])), (e) => console.log(JSON.stringify(e.code)))",
      )
      expect(JSON.parse(r.out)).toEqual([false, false, '1.4.0'])
    } finally {
      fs.chmodSync(s.store, 0o755)
      fs.chmodSync(path.join(s.store, 'stage.lock'), 0o644)
    }
  })
})

/**
 * Links `link` to the folder `target`: a symbolic link on POSIX, a junction on Windows (which needs
 * no privilege there). Skips the test where the OS makes neither, as Wine 8 does.
 */
function linkFolder(ctx: TestContext, target: string, link: string): void {
  try {
    fs.symlinkSync(target, link, 'junction')
  } catch (e: any) {
    if (e.code !== 'ENOTSUP') throw e
  }
  if (!fs.existsSync(link)) ctx.skip('this system makes no link to a folder (Wine 8 makes neither symlinks nor junctions)')
}

describe('other spellings of userData', () => {
  it('a store staged through a symlinked userData is found through the real path, and back', async (ctx) => {
    const link = path.join(tempDir(), 'link')
    linkFolder(ctx, s.userData, link)
    s.publish('1.4.0')
    expect(await b.checkAndStageLatestRuntime(s.opts({ userData: link }))).toEqual({ kind: 'staged', version: '1.4.0' })
    const real = fs.realpathSync(s.userData)
    expect(b.resolvePointerCliEntry(real)).toBe(b.cliEntryFor(real, '1.4.0'))
    expect(b.resolvePointerCliEntry(link)).toBe(b.cliEntryFor(real, '1.4.0'))
    expect(b.versionFromCliEntry(link, b.cliEntryFor(real, '1.4.0'))).toBe('1.4.0')
    expect(await b.checkAndStageLatestRuntime(s.opts({ userData: real }))).toEqual({ kind: 'already-staged' })
  })

  it('the store functions take a cliEntry joined from either spelling of userData', async (ctx) => {
    const link = path.join(tempDir(), 'link')
    linkFolder(ctx, s.userData, link)
    s.publish('1.4.0')
    expect(await b.checkAndStageLatestRuntime(s.opts())).toEqual({ kind: 'staged', version: '1.4.0' })
    const real = fs.realpathSync(s.userData)
    const joined = path.join(link, 'runtime-store', 'versions', '1.4.0', 'dist', 'cli.js')
    expect(b.versionFromCliEntry(link, joined)).toBe('1.4.0')
    expect(b.versionFromCliEntry(real, joined)).toBe('1.4.0')
    b.clearPointer(link)
    b.writePointer(link, { version: '1.4.0', cliEntry: joined })
    // Written with the canonical path, as the original's readers expect.
    expect(JSON.parse(fs.readFileSync(path.join(real, 'runtime-store', 'current.json'), 'utf8')).cliEntry).toBe(
      b.cliEntryFor(real, '1.4.0'),
    )
    // A spelling with `..` or of another folder is still refused with the original's words.
    const dotted = `${link}/x/../runtime-store/versions/1.4.0/dist/cli.js`
    expect(() => b.writePointer(link, { version: '1.4.0', cliEntry: dotted })).toThrow(
      /cliEntry for 1\.4\.0 must be/,
    )
    expect(b.versionFromCliEntry(link, path.join(tempDir(), 'runtime-store', 'versions', '1.4.0', 'dist', 'cli.js'))).toBeNull()
  })

  it('a userData with .. names the same store', async () => {
    s.publish('1.4.0')
    await b.checkAndStageLatestRuntime(s.opts())
    const dotted = path.join(s.userData, '..', path.basename(s.userData))
    const spelled = `${path.dirname(s.userData)}/x/../${path.basename(s.userData)}`
    fs.mkdirSync(path.join(path.dirname(s.userData), 'x'), { recursive: true })
    for (const u of [dotted, spelled]) {
      expect(b.readPointer(u)?.version).toBe('1.4.0')
      expect(b.resolvePointerCliEntry(u)).toBe(b.cliEntryFor(s.userData, '1.4.0'))
    }
  })

  it('a userData holding NUL is refused before any request', async () => {
    s.publish('1.4.0')
    const err = await rejection(b.checkAndStageLatestRuntime(s.opts({ userData: `${s.userData}\0x` })))
    expect(err).toMatchObject({ code: 'EINVALID_OPTION', option: 'userData' })
    expect(() => b.readPointer(`${s.userData}\0x`)).toThrow(expect.objectContaining({ code: 'EINVALID_OPTION' }))
    expect(s.registry.count(s.registry.docPath('kanban'))).toBe(0)
  })
})

/** Runs `body` in a child Node with the addon as `b`, `u` the userData and `opts` the staging options; killed after `killAfterMs`. */
function inChildAsync(
  userData: string,
  opts: Record<string, unknown>,
  body: string,
  killAfterMs: number,
): Promise<{ code: number | null; lines: any[] }> {
  return new Promise((resolve) => {
    const script = `const b = require(${JSON.stringify(addon)}); const u = ${JSON.stringify(userData)}; const opts = ${JSON.stringify(opts)}; ${body}`
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    // A call blocked on a FIFO never returns: the kill is the test's failure signal.
    const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, lines: out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) })
    })
  })
}

// Every call an app makes on a store, each timed, in the order an app's start-up and its checks
// make them; a line per call as it settles, so a hang names the call that hung.
const EVERY_CALL = `
(async () => {
  const A = '1.4.0', B = '2.0.0'
  const calls = [
    ['readPointer', () => b.readPointer(u)],
    ['resolvePointerCliEntry', () => b.resolvePointerCliEntry(u)],
    ['pointerFileExists', () => b.pointerFileExists(u)],
    ['isBadVersion', () => b.isBadVersion(u, A)],
    ['isStoreLocked', () => b.isStoreLocked(u)],
    ['versionFromCliEntry', () => b.versionFromCliEntry(u, b.cliEntryFor(u, A))],
    ['versionDir', () => b.versionDir(u, A)],
    ['partialDir', () => b.partialDir(u, A)],
    ['readStoreStatus', () => b.readStoreStatus(u)],
    ['resolveLaunch', () => b.resolveLaunch(u, { bundledVersion: '1.0.0' })],
    ['checkAndStageLatestRuntime', () => b.checkAndStageLatestRuntime(opts)],
    ['beginLaunch', () => b.beginLaunch(u, { bundledVersion: '1.0.0' })],
    ['confirmLaunch', () => b.confirmLaunch(u, b.cliEntryFor(u, B))],
    ['markBadVersion', () => b.markBadVersion(u, '1.9.0')],
    ['writePointer', () => b.writePointer(u, { version: B, cliEntry: b.cliEntryFor(u, B) })],
    ['removeVersionDir', () => b.removeVersionDir(u, '1.8.0')],
    ['pruneStore', () => b.pruneStore(u, '1.0.0')],
    ['cleanupPartials', () => b.cleanupPartials(u)],
    ['reportLaunchFailed', () => b.reportLaunchFailed(u, b.cliEntryFor(u, B), 'test')],
    ['clearPointer', () => b.clearPointer(u)],
  ]
  for (const [name, f] of calls) {
    const t = Date.now()
    try {
      const value = await f()
      console.log(JSON.stringify({ name, ms: Date.now() - t, value: name === 'checkAndStageLatestRuntime' ? value : undefined }))
    } catch (e) {
      console.log(JSON.stringify({ name, ms: Date.now() - t, code: e.code, coded: b.isStageError(e), message: String(e.message) }))
    }
  }
})()
`

describe.skipIf(process.platform === 'win32')('every name the store reads, with something else in its place', () => {
  const A = '1.4.0'
  const B = '2.0.0'
  // A sparse file far past every cap: read whole it would take minutes and gigabytes.
  const OVERSIZED = 8 * 2 ** 30
  const hostile = {
    'a FIFO': (p: string) => expect(spawnSync('mkfifo', [p]).status).toBe(0),
    'a link to /dev/zero': (p: string) => fs.symlinkSync('/dev/zero', p),
    'a folder': (p: string) => fs.mkdirSync(p),
    'an oversized file': (p: string) => {
      fs.writeFileSync(p, '')
      fs.truncateSync(p, OVERSIZED)
    },
  }

  for (const [what, put] of Object.entries(hostile)) {
    it(`${what} at each of them: every call settles promptly, with a value or a coded error, and the check still stages`, async () => {
      const layout = b.storeLayout() as { path: string; kind: string }[]
      expect(layout.length).toBeGreaterThan(10)
      // A store with A staged and pointed; B is what the checks find.
      s.publishVersions([A, B], { latest: A })
      const template = tempDir()
      expect(await b.checkAndStageLatestRuntime(s.opts({ userData: template }))).toEqual({ kind: 'staged', version: A })
      s.publishVersions([A, B], { latest: B })
      for (const entry of layout) {
        const u = tempDir()
        fs.cpSync(template, u, { recursive: true })
        b.writePointer(u, { version: A, cliEntry: b.cliEntryFor(u, A) })
        b.beginLaunch(u, { bundledVersion: '1.0.0' })
        // The kept download is the one of the version the check stages; a version's own files are
        // the staged one's.
        const rel = entry.path.replace('{version}', entry.path.startsWith('staging/') ? B : A)
        const target = path.join(u, 'runtime-store', rel)
        fs.mkdirSync(path.dirname(target), { recursive: true })
        fs.rmSync(target, { recursive: true, force: true })
        put(target)
        const r = await inChildAsync(u, s.opts({ userData: u, timeoutMs: 20_000 }), EVERY_CALL, 40_000)
        const where = `${entry.path} as ${what}`
        expect(r.lines.map((l) => l.name), `${where}: the call after the last one listed hung`).toHaveLength(20)
        for (const l of r.lines) {
          expect(l.ms, `${where}: ${l.name}`).toBeLessThan(5000)
          if (l.code !== undefined) expect(l.coded, `${where}: ${l.name} threw ${l.message}`).toBe(true)
        }
        expect(r.lines.find((l) => l.name === 'checkAndStageLatestRuntime'), where).toMatchObject({
          value: { kind: 'staged', version: B },
        })
      }
    })
  }
})

describe('an entry of the wrong type at a name the store owns', () => {
  const V = '1.4.0'
  /** Puts a folder at a file's name, a file at a folder's, each holding `marker`. */
  function misplace(u: string, entry: { path: string; kind: string }, marker: string) {
    const p = path.join(u, 'runtime-store', entry.path)
    fs.mkdirSync(path.dirname(p), { recursive: true })
    if (entry.kind === 'file') {
      fs.mkdirSync(p)
      fs.writeFileSync(path.join(p, 'kept.txt'), marker)
    } else {
      fs.writeFileSync(p, marker)
    }
  }
  /** What was moved aside from `name`: its one `<name>.misplaced-*` sibling, read back. */
  function movedAside(u: string, name: string): string {
    const store = path.join(u, 'runtime-store')
    const aside = fs.readdirSync(store).filter((n) => n.startsWith(`${name}.misplaced-`))
    expect(aside, name).toHaveLength(1)
    const p = path.join(store, aside[0])
    return fs.readFileSync(fs.statSync(p).isDirectory() ? path.join(p, 'kept.txt') : p, 'utf8')
  }
  const top = () => (b.storeLayout() as { path: string; kind: string }[]).filter((e) => !e.path.includes('/'))

  /** After the healing, the store works at every name again: a check stages, a launch is counted, a mark is recorded. */
  async function expectHealed(u: string, name: string, warnings: any[]) {
    expect(movedAside(u, name), name).toBe(`marker of ${name}`)
    expect(warnings, name).toContainEqual(
      expect.objectContaining({ level: 'warn', fields: expect.objectContaining({ name, movedTo: expect.stringMatching(`^${name.replace(/\./g, '\\.')}\\.misplaced-`) }) }),
    )
    const st = await b.readStoreStatus(u)
    expect(st.misplaced, name).toEqual([])
    expect(st.movedAside, name).toEqual([expect.stringMatching(/\.misplaced-\d+-\d+$/)])
    expect(b.beginLaunch(u, { bundledVersion: '1.0.0' }), name).toMatchObject({ version: V, attempt: 1 })
    expect(b.markBadVersion(u, '1.3.0'), name).toBe(V)
  }

  it('each is moved aside by cleanupPartials, with an onLog warning, and kept; then the store works again', async () => {
    s.publish(V)
    for (const entry of top()) {
      const u = tempDir()
      misplace(u, entry, `marker of ${entry.path}`)
      expect((await b.readStoreStatus(u)).misplaced, entry.path).toEqual([
        { name: entry.path, found: entry.kind === 'file' ? 'folder' : 'file', expected: entry.kind },
      ])
      const warnings: any[] = []
      expect(b.cleanupPartials(u, { onLog: (e: any) => warnings.push(e) })).toBeUndefined()
      expect(await b.checkAndStageLatestRuntime(s.opts({ userData: u })), entry.path).toEqual({ kind: 'staged', version: V })
      await expectHealed(u, entry.path, warnings)
    }
  })

  it('each is moved aside by a staging run, with an onLog warning, and kept', async () => {
    s.publish(V)
    for (const entry of top()) {
      const u = tempDir()
      misplace(u, entry, `marker of ${entry.path}`)
      const warnings: any[] = []
      const outcome = await b.checkAndStageLatestRuntime(s.opts({ userData: u, onLog: (e: any) => warnings.push(e) }))
      expect(outcome, entry.path).toEqual({ kind: 'staged', version: V })
      // onLog entries are delivered through the event loop.
      await new Promise((r) => setTimeout(r, 50))
      await expectHealed(u, entry.path, warnings)
    }
  })

  it.skipIf(process.platform === 'win32')('a link is moved as itself: what it names, outside the store, is untouched', async () => {
    s.publish(V)
    const outside = tempDir()
    fs.mkdirSync(path.join(outside, '9.9.9.partial'))
    fs.writeFileSync(path.join(outside, '9.9.9.partial', 'keep'), 'keep')
    fs.mkdirSync(path.join(s.store), { recursive: true })
    fs.symlinkSync(outside, s.stagingDir)
    b.cleanupPartials(s.userData)
    expect(await b.checkAndStageLatestRuntime(s.opts())).toEqual({ kind: 'staged', version: V })
    expect(fs.readFileSync(path.join(outside, '9.9.9.partial', 'keep'), 'utf8')).toBe('keep')
    const aside = fs.readdirSync(s.store).filter((n) => n.startsWith('staging.misplaced-'))
    expect(aside).toHaveLength(1)
    expect(fs.readlinkSync(path.join(s.store, aside[0]))).toBe(outside)
  })

  it('cleanupPartials refuses an onLog that is not a function, and survives one that throws', () => {
    const u = tempDir()
    misplace(u, { path: 'current.json', kind: 'file' }, 'x')
    expect(() => b.cleanupPartials(u, { onLog: 42 })).toThrow(expect.objectContaining({ code: 'EINVALID_OPTION', option: 'onLog' }))
    expect(() => b.cleanupPartials(u, 'x')).toThrow(expect.objectContaining({ code: 'EINVALID_OPTION', option: 'opts' }))
    expect(
      b.cleanupPartials(u, {
        onLog: () => {
          throw new Error('a faulty logger')
        },
      }),
    ).toBeUndefined()
    expect(movedAside(u, 'current.json')).toBe('x')
  })

  it("a crashed writer's temp file is swept by cleanupPartials, not only by a staging run", async () => {
    s.publish(V)
    await b.checkAndStageLatestRuntime(s.opts())
    const torn = path.join(s.store, '.launches.json.tmp-4194999')
    fs.writeFileSync(torn, '{"attempts":')
    b.cleanupPartials(s.userData)
    expect(fs.existsSync(torn)).toBe(false)
    expect(b.beginLaunch(s.userData, { bundledVersion: '1.0.0' })).toMatchObject({ version: V, attempt: 1 })
  })
})
