import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { sri } from '../scripts/testkit/registry.mjs'
import { tgz } from '../scripts/testkit/tar.mjs'
import { binding, rejection } from './helpers/binding'
import { cliBody, listTree, runtimeTarball, snapshot, tempDir } from './helpers/fixtures'
import { Scenario } from './helpers/scenario'

const { checkAndStageLatestRuntime, readPointer, resolvePointerCliEntry, markBadVersion, isBadVersion, versionDir } =
  binding

const s = Scenario.perTest()

/** Asserts `versions/<v>` is a whole staged runtime with the package's and our files. */
function expectWholeVersion(version: string) {
  const dir = versionDir(s.userData, version)
  expect(dir).toBe(path.join(s.versionsDir, version))
  expect(listTree(dir)).toEqual([
    '.kanban-runtime-complete.json',
    'README.md',
    'dist/cli.js',
    'node_modules/node-pty/build/Release/pty.node',
    'node_modules/node-pty/package.json',
    'package.json',
  ])
  expect(fs.readFileSync(path.join(dir, 'dist/cli.js'), 'utf8')).toBe(cliBody(version))
  expect(fs.readFileSync(path.join(dir, 'node_modules/node-pty/build/Release/pty.node'), 'utf8')).toBe(
    'native-binary-for-tests',
  )
  const record = JSON.parse(fs.readFileSync(path.join(dir, '.kanban-runtime-complete.json'), 'utf8'))
  expect(record.version).toBe(version)
  expect(record.integrity).toMatch(/^sha512-/)
}

function expectPointerAt(version: string) {
  const cli = path.join(s.versionsDir, version, 'dist', 'cli.js')
  expect(readPointer(s.userData)).toMatchObject({ version, cliEntry: cli })
  expect(resolvePointerCliEntry(s.userData)).toBe(cli)
  const raw = JSON.parse(fs.readFileSync(path.join(s.store, 'current.json'), 'utf8'))
  expect(raw.version).toBe(version)
  expect(raw.cliEntry).toBe(cli)
}

function expectNoPartials() {
  expect(s.partials()).toEqual([])
}

describe('outcomes', () => {
  it('stages a newer version: pointer, layout, contents and modes', async () => {
    s.publishVersions(['1.0.0', '1.1.0'])
    const outcome = await checkAndStageLatestRuntime(s.opts())
    expect(outcome).toEqual({ kind: 'staged', version: '1.1.0' })
    expectWholeVersion('1.1.0')
    expectPointerAt('1.1.0')
    expectNoPartials()
    if (process.platform !== 'win32') {
      const mode = fs.statSync(path.join(s.versionsDir, '1.1.0/dist/cli.js')).mode & 0o7777
      expect(mode).toBe(0o755) // the package's bin
      expect(fs.statSync(path.join(s.versionsDir, '1.1.0/README.md')).mode & 0o7777).toBe(0o644)
    }
    expect(s.registry.count('/kanban')).toBe(1)
    expect(s.registry.count('/kanban/-/kanban-1.1.0.tgz')).toBe(1)
    const docReq = s.registry.requests.find((r) => r.url === '/kanban')!
    expect(docReq.headers.accept).toContain('application/vnd.npm.install-v1+json')
    expect(docReq.headers['user-agent']).toMatch(/^kanban-runtime-stager\/\d+\.\d+\.\d+/)
  })

  it('is up-to-date when latest equals or is older than the current version, without a download', async () => {
    s.publish('1.0.0')
    expect(await checkAndStageLatestRuntime(s.opts({ currentVersion: '1.0.0' }))).toEqual({ kind: 'up-to-date' })
    expect(await checkAndStageLatestRuntime(s.opts({ currentVersion: '2.0.0' }))).toEqual({ kind: 'up-to-date' })
    expect(s.registry.tarballRequests()).toBe(0)
    expect(fs.existsSync(s.store)).toBe(false)
    expect(readPointer(s.userData)).toBeNull()
  })

  it('reports bad-version for a latest marked bad and downloads nothing', async () => {
    s.publish('1.1.0')
    expect(markBadVersion(s.userData, '1.1.0')).toBeNull()
    expect(isBadVersion(s.userData, '1.1.0')).toBe(true)
    expect(await checkAndStageLatestRuntime(s.opts())).toEqual({ kind: 'bad-version', version: '1.1.0' })
    expect(s.registry.tarballRequests()).toBe(0)
    expect(readPointer(s.userData)).toBeNull()
    expect(fs.existsSync(s.versionsDir)).toBe(false)
  })

  it('reports already-staged once the pointer names latest, with one download in all', async () => {
    s.publish('1.1.0')
    expect((await checkAndStageLatestRuntime(s.opts())).kind).toBe('staged')
    const before = snapshot(s.store)
    expect(await checkAndStageLatestRuntime(s.opts())).toEqual({ kind: 'already-staged' })
    expect(s.registry.tarballRequests()).toBe(1)
    expect(snapshot(s.store)).toEqual(before)
  })

  it('stages when currentVersion is not semver, and writes the pointer', async () => {
    s.publish('0.0.1')
    const outcome = await checkAndStageLatestRuntime(s.opts({ currentVersion: 'dev-build' }))
    expect(outcome).toEqual({ kind: 'staged', version: '0.0.1' })
    expectPointerAt('0.0.1')
    expectWholeVersion('0.0.1')
  })

  it('rejects a dist-tag naming a non-semver version and writes nothing', async () => {
    s.registry.setDoc('kanban', { name: 'kanban', 'dist-tags': { latest: 'banana' }, versions: {} })
    const err = await rejection(checkAndStageLatestRuntime(s.opts()))
    expect(err).toBeInstanceOf(Error)
    expect(err.code).toBe('EINVALID_VERSION')
    expect(err.version).toBe('banana')
    expect(fs.readdirSync(s.userData)).toEqual([])
  })

  it('strips a top folder that is not package/', async () => {
    s.publish('1.2.0', runtimeTarball('1.2.0', { top: 'kanban-1.2.0' }))
    expect(await checkAndStageLatestRuntime(s.opts())).toEqual({ kind: 'staged', version: '1.2.0' })
    expectWholeVersion('1.2.0')
    expectPointerAt('1.2.0')
  })

  it('follows packageName and distTag', async () => {
    s.registry.publish('@kanban/rt', [{ version: '3.0.0-beta.1', tarball: runtimeTarball('3.0.0-beta.1') }], {
      latest: '0.0.1',
      beta: '3.0.0-beta.1',
    })
    const outcome = await checkAndStageLatestRuntime(s.opts({ packageName: '@kanban/rt', distTag: 'beta' }))
    expect(outcome).toEqual({ kind: 'staged', version: '3.0.0-beta.1' })
    expect(s.registry.count('/@kanban%2frt')).toBe(1)
    expectPointerAt('3.0.0-beta.1')
  })
})

describe('fixed defects of the original', () => {
  it('re-stages a pointed folder that lost node-pty instead of reporting already-staged', async () => {
    s.publish('1.1.0')
    await checkAndStageLatestRuntime(s.opts())
    fs.rmSync(path.join(s.versionsDir, '1.1.0/node_modules/node-pty'), { recursive: true })
    expect(resolvePointerCliEntry(s.userData)).toBeNull()
    expect(await checkAndStageLatestRuntime(s.opts())).toEqual({ kind: 'staged', version: '1.1.0' })
    expectWholeVersion('1.1.0')
    expectPointerAt('1.1.0')
    expect(s.registry.tarballRequests()).toBe(2)
  })

  it('re-stages a pointed folder that lost its cli, or its completion record and its package.json', async () => {
    s.publish('1.1.0')
    await checkAndStageLatestRuntime(s.opts())
    fs.rmSync(path.join(s.versionsDir, '1.1.0/dist/cli.js'))
    expect((await checkAndStageLatestRuntime(s.opts())).kind).toBe('staged')
    // Without its record, a folder is whole only by the original implementation's rule, which
    // needs a package.json naming the version (see rollback.spec.ts for such stores).
    fs.rmSync(path.join(s.versionsDir, '1.1.0/.kanban-runtime-complete.json'))
    fs.rmSync(path.join(s.versionsDir, '1.1.0/package.json'))
    expect((await checkAndStageLatestRuntime(s.opts())).kind).toBe('staged')
    expectWholeVersion('1.1.0')
    expect(s.registry.tarballRequests()).toBe(3)
  })

  it('removes a stale partial left by a crashed run', async () => {
    s.publish('1.1.0')
    fs.mkdirSync(path.join(s.versionsDir, '1.1.0.partial/dist'), { recursive: true })
    fs.writeFileSync(path.join(s.versionsDir, '1.1.0.partial/dist/cli.js'), 'half')
    fs.mkdirSync(path.join(s.versionsDir, '0.9.0.partial'), { recursive: true })
    expect((await checkAndStageLatestRuntime(s.opts())).kind).toBe('staged')
    expectNoPartials()
    expect(fs.readdirSync(s.versionsDir)).toEqual(['1.1.0'])
    expectWholeVersion('1.1.0')
  })

  it("never deletes another caller's partial: a second stager waits for the lock", async () => {
    s.publishVersions(['2.0.0', '3.0.0'], { latest: '2.0.0', next: '3.0.0' })
    // The first caller's tarball trickles in, so its partial is in flight while the second starts.
    let firstStarted!: () => void
    const started = new Promise<void>((r) => (firstStarted = r))
    s.registry.hold(s.registry.tarballPath('kanban', '2.0.0'), runtimeTarball('2.0.0'), {
      onHead: () => firstStarted(),
      until: () => new Promise((r) => setTimeout(r, 600)),
    })
    const first = checkAndStageLatestRuntime(s.opts())
    await started
    await vi.waitFor(() => expect(fs.existsSync(path.join(s.stagingDir, '2.0.0.partial'))).toBe(true))
    const second = checkAndStageLatestRuntime(s.opts({ distTag: 'next' }))
    expect(await first).toEqual({ kind: 'staged', version: '2.0.0' })
    expect(await second).toEqual({ kind: 'staged', version: '3.0.0' })
    expectWholeVersion('3.0.0')
    expectWholeVersion('2.0.0')
    expect(readPointer(s.userData)).toMatchObject({ version: '3.0.0', previous: '2.0.0' })
  })

  it('repairs the pointer from a complete version after a failed pointer write, without downloading again', async () => {
    s.publish('1.1.0')
    // A folder where this process writes the pointer's temp file makes the pointer write fail
    // after the version's own rename succeeded: the state the original left orphaned. (A folder
    // at current.json itself is moved aside by the run, see store-files.spec.ts.)
    const tmp = path.join(s.store, `.current.json.tmp-${process.pid}`)
    fs.mkdirSync(path.join(tmp, 'blocker'), { recursive: true })
    const err = await rejection(checkAndStageLatestRuntime(s.opts()))
    expect(err.code).toBe('EIO')
    expect(err.path).toContain('current.json')
    expectWholeVersion('1.1.0')
    expect(readPointer(s.userData)).toBeNull()
    fs.rmSync(tmp, { recursive: true })

    expect(await checkAndStageLatestRuntime(s.opts())).toEqual({ kind: 'staged', version: '1.1.0' })
    expectPointerAt('1.1.0')
    expect(s.registry.tarballRequests()).toBe(1)
    expect(fs.readdirSync(s.store).filter((n) => n.includes('.tmp-'))).toEqual([])
  })

  it("treats a file where a folder must go as the package's fault: nothing staged, pointer untouched", async () => {
    s.publish('1.0.5')
    await checkAndStageLatestRuntime(s.opts({ currentVersion: '0.0.1' }))
    const before = snapshot(s.store)
    // `dist` is first written as a file, then needed as a folder: the package contradicts itself.
    // (A genuine write failure is the full-disk case in tarballs.spec.ts.)
    const broken = tgz([
      { path: 'package/package.json', body: '{}' },
      { path: 'package/dist', body: 'a file where a folder must go' },
      { path: 'package/dist/cli.js', body: cliBody('1.1.0') },
    ])
    s.publish('1.1.0', broken)
    const err = await rejection(checkAndStageLatestRuntime(s.opts()))
    expect(err).toMatchObject({ code: 'EUNSAFE_ENTRY', entry: 'dist' })
    expectNoPartials()
    expect(snapshot(s.store)).toEqual(before)
    expectPointerAt('1.0.5')
  })
})

describe('integrity and errors', () => {
  it('rejects a tarball whose sha512 differs, after one fresh re-download, with expected and actual', async () => {
    const good = runtimeTarball('1.1.0')
    const other = runtimeTarball('9.9.9')
    const expected = sri(other)
    s.publish('1.1.0', good, { integrity: expected })
    const err = await rejection(checkAndStageLatestRuntime(s.opts()))
    expect(err).toBeInstanceOf(Error)
    expect(err.code).toBe('EINTEGRITY')
    expect(err.expected).toBe(expected)
    expect(err.actual).toBe(sri(good))
    expect(err.url).toBe(`${s.registry.url}kanban/-/kanban-1.1.0.tgz`)
    expect(s.registry.tarballRequests()).toBe(2)
    expectNoPartials()
    expect(readPointer(s.userData)).toBeNull()
    expect(fs.existsSync(path.join(s.versionsDir, '1.1.0'))).toBe(false)
  })

  it('rejects with EHTTP and the status when the document is missing', async () => {
    const err = await rejection(checkAndStageLatestRuntime(s.opts({ packageName: 'nope' })))
    expect(err.code).toBe('EHTTP')
    expect(err.status).toBe(404)
    expect(err.url).toBe(`${s.registry.url}nope`)
  })

  it('rejects with ENATIVE_DEPS when the bundled node-pty is missing, before downloading', async () => {
    s.publish('1.1.0')
    const empty = tempDir()
    const err = await rejection(checkAndStageLatestRuntime(s.opts({ nativeDepsSource: empty })))
    expect(err.code).toBe('ENATIVE_DEPS')
    expect(err.path).toBe(empty)
    expect(s.registry.tarballRequests()).toBe(0)
  })

  it('rejects with EMISSING_CLI when the package has no dist/cli.js', async () => {
    s.publish('1.1.0', tgz([{ path: 'package/package.json', body: '{}' }]))
    const err = await rejection(checkAndStageLatestRuntime(s.opts()))
    expect(err.code).toBe('EMISSING_CLI')
    expectNoPartials()
    expect(fs.existsSync(path.join(s.versionsDir, '1.1.0'))).toBe(false)
  })

  it('rejects a document without the tag with EBADMANIFEST', async () => {
    s.publish('1.1.0')
    const err = await rejection(checkAndStageLatestRuntime(s.opts({ distTag: 'missing' })))
    expect(err.code).toBe('EBADMANIFEST')
  })

  it('rejects bad options with EINVALID_OPTION', async () => {
    const err = await rejection(checkAndStageLatestRuntime(s.opts({ registry: 'ftp://example' })))
    expect(err.code).toBe('EINVALID_OPTION')
    expect(err.option).toBe('registry')
    const err2 = await rejection(checkAndStageLatestRuntime(s.opts({ userData: '' })))
    expect(err2.code).toBe('EINVALID_OPTION')
  })

  it('never writes a link or a path outside the partial', async () => {
    const outside = tempDir()
    for (const entries of [
      [{ path: 'package/evil', type: 'symlink' as const, linkname: outside }],
      [{ path: 'package/../../evil', body: 'x' }],
      [{ path: `${outside}/evil`, body: 'x' }],
    ]) {
      s.publish('1.1.0', tgz(entries))
      const err = await rejection(checkAndStageLatestRuntime(s.opts()))
      expect(err.code).toBe('EUNSAFE_ENTRY')
      expect(typeof err.entry).toBe('string')
      expectNoPartials()
    }
    expect(fs.readdirSync(outside)).toEqual([])
    expect(readPointer(s.userData)).toBeNull()
  })
})

describe('store functions', () => {
  it('versionDir names the canonical folder and refuses non-semver', () => {
    expect(versionDir(s.userData, '1.2.3')).toBe(path.join(s.userData, 'runtime-store', 'versions', '1.2.3'))
    let err: any
    try {
      versionDir(s.userData, '../../etc')
    } catch (e) {
      err = e
    }
    expect(err.code).toBe('EINVALID_OPTION')
  })

  it('readPointer and resolvePointerCliEntry distrust a pointer outside the store', async () => {
    s.publish('1.1.0')
    await checkAndStageLatestRuntime(s.opts())
    const pointer = path.join(s.store, 'current.json')
    fs.writeFileSync(pointer, JSON.stringify({ version: '1.1.0', cliEntry: '/tmp/evil.js' }))
    expect(readPointer(s.userData)).toBeNull()
    expect(resolvePointerCliEntry(s.userData)).toBeNull()
    fs.writeFileSync(pointer, '{not json')
    expect(readPointer(s.userData)).toBeNull()
  })

  it('markBadVersion rolls the pointer back to the previous good version, then to none', async () => {
    s.publish('1.1.0')
    await checkAndStageLatestRuntime(s.opts())
    s.publishVersions(['1.1.0', '1.2.0'])
    expect(await checkAndStageLatestRuntime(s.opts())).toEqual({ kind: 'staged', version: '1.2.0' })
    expect(readPointer(s.userData)).toMatchObject({ version: '1.2.0', previous: '1.1.0' })

    expect(markBadVersion(s.userData, '1.2.0')).toBe('1.1.0')
    expectPointerAt('1.1.0')
    expect(isBadVersion(s.userData, '1.2.0')).toBe(true)
    expect(await checkAndStageLatestRuntime(s.opts())).toEqual({ kind: 'bad-version', version: '1.2.0' })

    expect(markBadVersion(s.userData, '1.1.0')).toBeNull()
    expect(readPointer(s.userData)).toBeNull()
    expect(resolvePointerCliEntry(s.userData)).toBeNull()
    expect(JSON.parse(fs.readFileSync(path.join(s.store, 'bad-versions.json'), 'utf8'))).toEqual(['1.1.0', '1.2.0'])
    expect(() => markBadVersion(s.userData, 'not-semver')).toThrow(expect.objectContaining({ code: 'EINVALID_OPTION' }))
  })
})
