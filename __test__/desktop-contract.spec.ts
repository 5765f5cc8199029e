// The contract with the Electron app's main process: the thirteen synchronous store functions it
// imports, with their documented return, null and throw behaviour, and the two sequences the app
// builds from them (choosing what to launch at start-up, rolling back a runtime that failed to
// start), written here the way the app calls them.
import fs from 'node:fs'
import path from 'node:path'
import semver from 'semver'
import { describe, expect, it } from 'vitest'
import { binding } from './helpers/binding'
import { tempDir, typeScriptStore } from './helpers/fixtures'
import { Scenario } from './helpers/scenario'

const {
  checkAndStageLatestRuntime,
  cleanupPartials,
  clearPointer,
  cliEntryFor,
  isBadVersion,
  markBadVersion,
  partialDir,
  pointerFileExists,
  readPointer,
  removeVersionDir,
  resolvePointerCliEntry,
  versionDir,
  versionFromCliEntry,
  writePointer,
} = binding

const s = Scenario.perTest()

/** The app's own call: exactly these three options, the public registry swapped for ours. */
function desktopCall(currentVersion: string) {
  return checkAndStageLatestRuntime({
    userData: s.userData,
    currentVersion,
    nativeDepsSource: s.native,
    registry: s.registry.url,
  })
}

function thrown(fn: () => unknown): any {
  try {
    fn()
  } catch (e) {
    return e
  }
  throw new Error('expected a throw')
}

/** The app's start-up rule: run the pointed version only when it is newer than the bundled one. */
function launchOverride(userData: string, bundled: string): string | null {
  const pointer = readPointer(userData)
  if (!pointer) {
    if (pointerFileExists(userData)) clearPointer(userData)
    return null
  }
  if (semver.lte(pointer.version, bundled)) {
    clearPointer(userData)
    return null
  }
  const cli = resolvePointerCliEntry(userData)
  if (!cli) clearPointer(userData)
  return cli
}

/** The app's rollback after a failed start, keyed on the `cliEntry` it launched. */
function rollback(userData: string, cliEntry: string): { failed: string | null; marked: boolean } {
  const failed = versionFromCliEntry(userData, cliEntry)
  const stillPointed = readPointer(userData)?.cliEntry === cliEntry
  let marked = false
  if (failed) {
    try {
      markBadVersion(userData, failed)
      marked = true
    } catch {
      // The app logs it and keeps the pointer, so the next start tries the mark again.
    }
    if (marked) removeVersionDir(userData, failed)
  }
  if (marked && stillPointed) clearPointer(userData)
  return { failed, marked }
}

describe('paths', () => {
  it('versionDir, partialDir and cliEntryFor name the original layout', () => {
    const u = tempDir()
    expect(versionDir(u, '1.2.3')).toBe(path.join(u, 'runtime-store', 'versions', '1.2.3'))
    expect(partialDir(u, '1.2.3')).toBe(path.join(u, 'runtime-store', 'versions', '1.2.3.partial'))
    expect(cliEntryFor(u, '1.2.3')).toBe(path.join(u, 'runtime-store', 'versions', '1.2.3', 'dist', 'cli.js'))
  })

  it.each([
    ['versionDir', versionDir],
    ['partialDir', partialDir],
    ['cliEntryFor', cliEntryFor],
  ] as const)('%s throws "invalid semver" with a code for a version that is not semver', (_name, fn) => {
    const err = thrown(() => fn(tempDir(), '../1.0.0'))
    expect(err).toMatchObject({ code: 'EINVALID_OPTION', option: 'version' })
    expect(err.message).toContain('invalid semver: ../1.0.0')
  })

  it('versionFromCliEntry inverts cliEntryFor and returns null for any other path', () => {
    const u = tempDir()
    expect(versionFromCliEntry(u, cliEntryFor(u, '2.0.0-rc.1'))).toBe('2.0.0-rc.1')
    const other = tempDir()
    for (const p of [
      '',
      'runtime-store/versions/1.2.3/dist/cli.js',
      '/tmp/1.2.3/dist/not-cli.js',
      '/elsewhere/1.2.3/dist/cli.js',
      cliEntryFor(other, '1.2.3'),
      path.join(u, 'runtime-store', 'versions', 'latest', 'dist', 'cli.js'),
      `${versionDir(u, '1.2.3')}/dist/../dist/cli.js`,
      `${versionDir(u, '1.2.3')}//dist/cli.js`,
    ]) {
      expect(versionFromCliEntry(u, p)).toBeNull()
    }
  })
})

describe('the pointer', () => {
  it('writePointer writes the original file; readPointer and resolvePointerCliEntry read it back', async () => {
    s.publish('1.4.0')
    expect(await desktopCall('1.0.0')).toEqual({ kind: 'staged', version: '1.4.0' })
    clearPointer(s.userData)
    const cliEntry = cliEntryFor(s.userData, '1.4.0')
    expect(writePointer(s.userData, { version: '1.4.0', cliEntry })).toBeUndefined()
    expect(fs.readFileSync(path.join(s.store, 'current.json'), 'utf8')).toBe(
      `${JSON.stringify({ version: '1.4.0', cliEntry })}\n`,
    )
    expect(readPointer(s.userData)).toEqual({ version: '1.4.0', cliEntry })
    expect(resolvePointerCliEntry(s.userData)).toBe(cliEntry)
  })

  it('writePointer throws the original words for a bad version or a non-canonical cliEntry, and writes nothing', () => {
    const u = tempDir()
    const canonical = cliEntryFor(u, '1.0.0')
    const bad = thrown(() => writePointer(u, { version: 'one', cliEntry: canonical }))
    expect(bad).toMatchObject({ code: 'EINVALID_OPTION' })
    expect(bad.message).toContain('invalid semver: one')
    for (const cliEntry of ['runtime-store/versions/1.0.0/dist/cli.js', '/elsewhere/dist/cli.js']) {
      const err = thrown(() => writePointer(u, { version: '1.0.0', cliEntry }))
      expect(err).toMatchObject({ code: 'EINVALID_OPTION' })
      expect(err.message).toContain(`cliEntry for 1.0.0 must be ${canonical}, got ${cliEntry}`)
    }
    expect(pointerFileExists(u)).toBe(false)
  })

  it('readPointer returns null for a missing, corrupt, relative or non-canonical pointer; pointerFileExists tells them apart', () => {
    const u = tempDir()
    expect(readPointer(u)).toBeNull()
    expect(pointerFileExists(u)).toBe(false)
    const file = path.join(u, 'runtime-store', 'current.json')
    fs.mkdirSync(path.dirname(file), { recursive: true })
    for (const body of [
      '{',
      '[]',
      'null',
      JSON.stringify({ version: 'x', cliEntry: cliEntryFor(u, '1.0.0') }),
      JSON.stringify({ version: '1.0.0', cliEntry: 'runtime-store/versions/1.0.0/dist/cli.js' }),
      JSON.stringify({ version: '1.0.0', cliEntry: cliEntryFor(u, '1.0.1') }),
      JSON.stringify({ version: '1.0.0', cliEntry: 42 }),
    ]) {
      fs.writeFileSync(file, body)
      expect(readPointer(u)).toBeNull()
      expect(resolvePointerCliEntry(u)).toBeNull()
      expect(pointerFileExists(u)).toBe(true)
    }
    clearPointer(u)
    expect(pointerFileExists(u)).toBe(false)
    // A folder where the file should be is no pointer file.
    fs.mkdirSync(file)
    expect(pointerFileExists(u)).toBe(false)
  })

  it('clearPointer on a store that does not exist does nothing and does not throw', () => {
    const u = tempDir()
    expect(clearPointer(u)).toBeUndefined()
    expect(fs.existsSync(path.join(u, 'runtime-store', 'current.json'))).toBe(false)
  })

  it('resolvePointerCliEntry trusts only a whole folder: a pointer whose node-pty is missing runs nothing', async () => {
    s.publish('1.4.0')
    await desktopCall('1.0.0')
    expect(resolvePointerCliEntry(s.userData)).toBe(cliEntryFor(s.userData, '1.4.0'))
    fs.rmSync(path.join(versionDir(s.userData, '1.4.0'), 'node_modules', 'node-pty'), { recursive: true })
    expect(resolvePointerCliEntry(s.userData)).toBeNull()
  })
})

describe('leftovers and folders', () => {
  it('cleanupPartials removes the partial folders of interrupted runs and nothing else', () => {
    const u = tempDir()
    expect(cleanupPartials(u)).toBeUndefined()
    typeScriptStore(u, '1.5.0')
    fs.mkdirSync(partialDir(u, '1.6.0'), { recursive: true })
    fs.writeFileSync(path.join(partialDir(u, '1.6.0'), 'half.js'), 'x')
    cleanupPartials(u)
    expect(fs.existsSync(partialDir(u, '1.6.0'))).toBe(false)
    expect(resolvePointerCliEntry(u)).toBe(cliEntryFor(u, '1.5.0'))
  })

  it('cleanupPartials never removes the partial of a run in flight', async () => {
    s.publish('1.7.0')
    const release = s.holdTarball('1.7.0')
    const run = desktopCall('1.0.0')
    const deadline = Date.now() + 10_000
    while (s.partials().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    const live = s.partials()
    expect(live.length).toBeGreaterThan(0)
    cleanupPartials(s.userData)
    expect(s.partials()).toEqual(live)
    release()
    expect(await run).toEqual({ kind: 'staged', version: '1.7.0' })
    expect(s.isWhole('1.7.0')).toBe(true)
  })

  it('removeVersionDir removes a version and does nothing for garbage or a missing folder', async () => {
    s.publish('1.4.0')
    await desktopCall('1.0.0')
    for (const v of ['not-semver', '../..', '9.9.9']) expect(removeVersionDir(s.userData, v)).toBeUndefined()
    expect(s.isWhole('1.4.0')).toBe(true)
    removeVersionDir(s.userData, '1.4.0')
    expect(fs.existsSync(versionDir(s.userData, '1.4.0'))).toBe(false)
    expect(removeVersionDir(tempDir(), '1.4.0')).toBeUndefined()
  })
})

describe('bad versions', () => {
  it('markBadVersion returns at once, keeps the list de-duplicated in semver order, isBadVersion reads it', () => {
    const u = tempDir()
    expect(isBadVersion(u, '1.0.0')).toBe(false)
    expect(isBadVersion(u, 'garbage')).toBe(false)
    for (const v of ['1.10.0', '1.2.0', '1.2.0-rc.1', '1.10.0']) expect(markBadVersion(u, v)).toBeNull()
    expect(JSON.parse(fs.readFileSync(path.join(u, 'runtime-store', 'bad-versions.json'), 'utf8'))).toEqual([
      '1.2.0-rc.1',
      '1.2.0',
      '1.10.0',
    ])
    expect(isBadVersion(u, '1.2.0')).toBe(true)
    expect(isBadVersion(u, '1.3.0')).toBe(false)
    const err = thrown(() => markBadVersion(u, 'nope'))
    expect(err).toMatchObject({ code: 'EINVALID_OPTION' })
    expect(err.message).toContain('invalid semver: nope')
  })

  it('markBadVersion throws when the mark cannot be written, and changes nothing', async () => {
    s.publish('1.4.0')
    await desktopCall('1.0.0')
    const before = fs.readFileSync(path.join(s.store, 'current.json'), 'utf8')
    fs.mkdirSync(path.join(s.store, 'bad-versions.json'))
    expect(() => markBadVersion(s.userData, '1.4.0')).toThrow(expect.objectContaining({ code: expect.any(String) }))
    expect(fs.readFileSync(path.join(s.store, 'current.json'), 'utf8')).toBe(before)
    expect(s.isWhole('1.4.0')).toBe(true)
  })
})

describe('start-up: max(pointer, bundled)', () => {
  it('runs a pointed version newer than the bundled one', async () => {
    s.publish('1.4.0')
    await desktopCall('1.0.0')
    expect(launchOverride(s.userData, '1.0.0')).toBe(cliEntryFor(s.userData, '1.4.0'))
    expect(readPointer(s.userData)?.version).toBe('1.4.0')
  })

  it('drops a pointer at or below the bundled version', async () => {
    s.publish('1.4.0')
    await desktopCall('1.0.0')
    expect(launchOverride(s.userData, '1.4.0')).toBeNull()
    expect(pointerFileExists(s.userData)).toBe(false)
  })

  it('removes an invalid current.json', () => {
    const u = tempDir()
    fs.mkdirSync(path.join(u, 'runtime-store'), { recursive: true })
    fs.writeFileSync(path.join(u, 'runtime-store', 'current.json'), '{"version":"2.0.0","cliEntry":"/etc/passwd"}')
    expect(launchOverride(u, '1.0.0')).toBeNull()
    expect(pointerFileExists(u)).toBe(false)
  })

  it('drops a pointer whose folder is gone', async () => {
    s.publish('1.4.0')
    await desktopCall('1.0.0')
    fs.rmSync(versionDir(s.userData, '1.4.0'), { recursive: true })
    expect(launchOverride(s.userData, '1.0.0')).toBeNull()
    expect(pointerFileExists(s.userData)).toBe(false)
  })
})

describe('rollback after a failed start', () => {
  it('marks the version that ran, removes its folder and the pointer; the next check skips it', async () => {
    s.publish('1.4.0')
    await desktopCall('1.0.0')
    const ran = launchOverride(s.userData, '1.0.0')!
    expect(rollback(s.userData, ran)).toEqual({ failed: '1.4.0', marked: true })
    expect(isBadVersion(s.userData, '1.4.0')).toBe(true)
    expect(fs.existsSync(versionDir(s.userData, '1.4.0'))).toBe(false)
    expect(pointerFileExists(s.userData)).toBe(false)
    expect(await desktopCall('1.0.0')).toEqual({ kind: 'bad-version', version: '1.4.0' })
    expect(s.registry.tarballRequests()).toBe(1)
  })

  it('a background stage that advanced the pointer meanwhile is left alone', async () => {
    s.publish('1.4.0')
    await desktopCall('1.0.0')
    const ran = launchOverride(s.userData, '1.0.0')!
    s.publishVersions(['1.4.0', '1.5.0'])
    expect(await desktopCall('1.4.0')).toEqual({ kind: 'staged', version: '1.5.0' })
    expect(rollback(s.userData, ran)).toEqual({ failed: '1.4.0', marked: true })
    expect(isBadVersion(s.userData, '1.4.0')).toBe(true)
    expect(isBadVersion(s.userData, '1.5.0')).toBe(false)
    expect(fs.existsSync(versionDir(s.userData, '1.4.0'))).toBe(false)
    expect(readPointer(s.userData)?.version).toBe('1.5.0')
    expect(resolvePointerCliEntry(s.userData)).toBe(cliEntryFor(s.userData, '1.5.0'))
  })

  it('keeps the pointer and the folder when the mark cannot be recorded', async () => {
    s.publish('1.4.0')
    await desktopCall('1.0.0')
    const ran = launchOverride(s.userData, '1.0.0')!
    fs.mkdirSync(path.join(s.store, 'bad-versions.json'))
    expect(rollback(s.userData, ran)).toEqual({ failed: '1.4.0', marked: false })
    expect(readPointer(s.userData)?.cliEntry).toBe(ran)
    expect(s.isWhole('1.4.0')).toBe(true)
  })

  it('a cliEntry outside the store marks nothing and keeps the pointer', async () => {
    s.publish('1.4.0')
    await desktopCall('1.0.0')
    expect(rollback(s.userData, '/opt/kanban/1.4.0/dist/cli.js')).toEqual({ failed: null, marked: false })
    expect(isBadVersion(s.userData, '1.4.0')).toBe(false)
    expect(resolvePointerCliEntry(s.userData)).toBe(cliEntryFor(s.userData, '1.4.0'))
  })
})

describe('a store the TypeScript stager wrote', () => {
  it('is adopted as it is: its pointer runs and its version is not downloaded again', async () => {
    const cli = typeScriptStore(s.userData, '2.0.0')
    expect(launchOverride(s.userData, '1.0.0')).toBe(cli)
    s.publish('2.0.0')
    expect(await desktopCall('2.0.0')).toEqual({ kind: 'up-to-date' })
    expect(await desktopCall('1.0.0')).toEqual({ kind: 'already-staged' })
    expect(s.registry.tarballRequests()).toBe(0)
    expect(readPointer(s.userData)).toMatchObject({ version: '2.0.0', cliEntry: cli })
  })

  it('its bad list is honoured: a version a user already found broken is not downloaded', async () => {
    typeScriptStore(s.userData, '2.0.0', ['2.1.0', '1.9.0'])
    s.publishVersions(['2.0.0', '2.1.0'])
    expect(isBadVersion(s.userData, '2.1.0')).toBe(true)
    expect(await desktopCall('2.0.0')).toEqual({ kind: 'bad-version', version: '2.1.0' })
    expect(s.registry.tarballRequests()).toBe(0)
    expect(launchOverride(s.userData, '1.0.0')).toBe(cliEntryFor(s.userData, '2.0.0'))
  })

  it('its partial folders are swept by cleanupPartials', () => {
    const u = tempDir()
    typeScriptStore(u, '2.0.0')
    fs.mkdirSync(path.join(partialDir(u, '2.1.0'), 'dist'), { recursive: true })
    cleanupPartials(u)
    expect(fs.readdirSync(path.join(u, 'runtime-store', 'versions'))).toEqual(['2.0.0'])
  })
})
