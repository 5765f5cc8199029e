// Hostile tarballs: every one is refused with its code, nothing is written outside the partial,
// no partial remains, and the pointer and the earlier staged version are untouched.
import { execFileSync } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { hugeLongName } from '../scripts/fixtures/hostile.mjs'
import { tar, tgz, type TarEntry } from '../scripts/testkit/tar.mjs'
import { binding, rejection } from './helpers/binding'
import { stageInChild } from './helpers/child'
import { cliBody, snapshot, tempDir } from './helpers/fixtures'
import { Scenario } from './helpers/scenario'

const { checkAndStageLatestRuntime } = binding

let outside: string
let sentinel: string
const s = Scenario.perTest(() => {
  outside = tempDir('krs-outside-')
  sentinel = path.join(outside, 'sentinel.txt')
  fs.writeFileSync(sentinel, 'untouched')
})

const base: TarEntry[] = [
  { path: 'package/package.json', body: '{"name":"kanban","version":"1.1.0"}' },
  { path: 'package/dist/cli.js', body: cliBody('1.1.0') },
]

/** Cases that are refused with a code; each builds its tarball from the `outside` folder. */
const cases: { name: string; code: string; tarball: () => Buffer }[] = [
  { name: 'path traversal', code: 'EUNSAFE_ENTRY', tarball: () => tgz([...base, { path: 'package/../../../../evil.txt', body: 'x' }]) },
  { name: 'absolute path', code: 'EUNSAFE_ENTRY', tarball: () => tgz([...base, { path: path.join(outside, 'evil.txt'), body: 'x' }]) },
  {
    name: 'symlink then a write through it',
    code: 'EUNSAFE_ENTRY',
    tarball: () =>
      tgz([...base, { path: 'package/lnk', type: 'symlink', linkname: outside }, { path: 'package/lnk/evil.txt', body: 'x' }]),
  },
  {
    name: 'hardlink to a file outside',
    code: 'EUNSAFE_ENTRY',
    tarball: () => tgz([...base, { path: 'package/hl', type: 'link', linkname: sentinel }]),
  },
  {
    name: 'hardlink then a write through it',
    code: 'EUNSAFE_ENTRY',
    tarball: () =>
      tgz([...base, { path: 'package/hl', type: 'link', linkname: sentinel }, { path: 'package/hl', body: 'overwritten' }]),
  },
  { name: 'backslash names', code: 'EUNSAFE_ENTRY', tarball: () => tgz([...base, { path: 'package/..\\..\\evil.txt', body: 'x' }]) },
  {
    name: 'repeated roots',
    code: 'EUNSAFE_ENTRY',
    tarball: () => tgz([...base, { path: 'other/dist/cli.js', body: 'replaced by a second root' }]),
  },
  {
    name: 'a dir and a symlink of the same name',
    code: 'EUNSAFE_ENTRY',
    tarball: () =>
      tgz([
        ...base,
        { path: 'package/lib', type: 'dir' },
        { path: 'package/lib', type: 'symlink', linkname: outside },
        { path: 'package/lib/evil.txt', body: 'x' },
      ]),
  },
  { name: 'Windows-reserved name', code: 'EUNSAFE_ENTRY', tarball: () => tgz([...base, { path: 'package/lib/aux.js', body: 'x' }]) },
  { name: 'drive prefix', code: 'EUNSAFE_ENTRY', tarball: () => tgz([...base, { path: 'package/C:evil.txt', body: 'x' }]) },
  { name: 'FIFO', code: 'EUNSAFE_ENTRY', tarball: () => tgz([...base, { path: 'package/fifo', type: 'fifo' }]) },
  { name: 'character device', code: 'EUNSAFE_ENTRY', tarball: () => tgz([...base, { path: 'package/tty', type: 'char' }]) },
  {
    name: 'over-deep paths',
    code: 'ETOO_LARGE',
    tarball: () => tgz([...base, { path: `package/${'d/'.repeat(40)}f.js`, body: 'x' }]),
  },
  {
    name: 'a PAX size header that disagrees with the ustar one',
    code: 'EUNSAFE_ENTRY',
    tarball: () =>
      tgz([...base, { path: 'package/a.js', body: 'x'.repeat(1024), headerSize: 1024, pax: { size: '2048' } }]),
  },
  {
    name: 'a file, then a folder of the same name',
    code: 'EUNSAFE_ENTRY',
    tarball: () => tgz([...base, { path: 'package/lib', body: 'x' }, { path: 'package/lib/a.js', body: 'y' }]),
  },
  {
    name: 'a folder, then a file of the same name',
    code: 'EUNSAFE_ENTRY',
    tarball: () => tgz([...base, { path: 'package/lib', type: 'dir' }, { path: 'package/lib', body: 'x' }]),
  },
  { name: 'node_modules shipped as a file', code: 'EUNSAFE_ENTRY', tarball: () => tgz([...base, { path: 'package/node_modules', body: 'x' }]) },
  {
    name: 'node_modules/node-pty shipped as a file',
    code: 'EUNSAFE_ENTRY',
    tarball: () => tgz([...base, { path: 'package/node_modules/node-pty', body: 'x' }]),
  },
  { name: 'a superscript port name', code: 'EUNSAFE_ENTRY', tarball: () => tgz([...base, { path: 'package/lib/COM\u00b9.js', body: 'x' }]) },
  { name: 'a character Windows refuses', code: 'EUNSAFE_ENTRY', tarball: () => tgz([...base, { path: 'package/lib/a?.js', body: 'x' }]) },
  {
    name: 'a gzip bomb',
    code: 'ETOO_LARGE',
    // 64 MiB of zeros in one entry compresses to ~64 KiB; the document claims 1 MiB unpacked.
    tarball: () => gzipSync(tar([...base, { path: 'package/bomb.bin', body: Buffer.alloc(64 << 20) }]), { level: 9 }),
  },
  {
    name: 'a lying size header',
    code: 'EBADARCHIVE',
    tarball: () => gzipSync(tar([...base, { path: 'package/liar.js', body: 'short', headerSize: 100_000 }]).subarray(0, -1024)),
  },
  {
    name: 'truncated gzip',
    code: 'EBADARCHIVE',
    tarball: () => {
      const full = tgz([...base, { path: 'package/big.bin', body: crypto.randomBytes(100_000) }])
      return full.subarray(0, full.length - 5000)
    },
  },
]

describe('hostile tarballs', () => {
  for (const c of cases) {
    it(`refuses ${c.name} with ${c.code}`, async () => {
      const before = await s.stageBaseline()
      s.publish('1.1.0', c.tarball())
      const err = await rejection(checkAndStageLatestRuntime(s.opts()))
      expect(err).toBeInstanceOf(Error)
      expect(err.code).toBe(c.code)
      expect(err.url).toBe(`${s.registry.url}kanban/-/kanban-1.1.0.tgz`)
      expect(fs.readdirSync(outside)).toEqual(['sentinel.txt'])
      expect(fs.readFileSync(sentinel, 'utf8')).toBe('untouched')
      expect(fs.readdirSync(path.dirname(s.userData)).filter((n) => n === 'evil.txt')).toEqual([])
      s.expectUnchanged(before, '1.0.5')
      expect(s.tree('1.0.5')).toContain('dist/cli.js')
    })
  }

  it('refuses a 300 MiB GNU long name with ETOO_LARGE before reading it, in a short message', async () => {
    const tarball: Buffer = await hugeLongName()
    expect(tarball.length).toBeLessThan(2 << 20)
    s.publish('1.1.0', tarball)
    const rssBefore = process.memoryUsage().rss
    const err = await rejection(checkAndStageLatestRuntime(s.opts()))
    expect(err).toMatchObject({ code: 'ETOO_LARGE', limit: 'extensionHeader' })
    expect(err.message.length).toBeLessThan(1000)
    // The name is never buffered: the process grows by far less than the name's 300 MiB.
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(100 << 20)
    expect(s.partials()).toEqual([])
  })

  it('reads every gzip member: dist/cli.js in the second one is staged whole', async () => {
    const raw = tar(base)
    // The first entry (package.json, header and one block) ends at byte 1024: cut there.
    const tarball = Buffer.concat([gzipSync(raw.subarray(0, 1024)), gzipSync(raw.subarray(1024))])
    s.publish('1.1.0', tarball)
    expect(await checkAndStageLatestRuntime(s.opts())).toEqual({ kind: 'staged', version: '1.1.0' })
    expect(fs.readFileSync(path.join(s.versionsDir, '1.1.0', 'dist/cli.js'), 'utf8')).toBe(cliBody('1.1.0'))
  })

  it('accepts zero padding after the gzip stream, and refuses any other trailing bytes', async () => {
    // The integrity covers the padded bytes, as the registry would compute it.
    s.publish('1.1.0', Buffer.concat([tgz(base), Buffer.alloc(512)]))
    expect(await checkAndStageLatestRuntime(s.opts())).toEqual({ kind: 'staged', version: '1.1.0' })
    expect(fs.readFileSync(path.join(s.versionsDir, '1.1.0', 'dist/cli.js'), 'utf8')).toBe(cliBody('1.1.0'))
    for (const tail of [Buffer.from('x'), Buffer.concat([Buffer.alloc(512), Buffer.from([7])])]) {
      s.publish('1.2.0', Buffer.concat([tgz(base), tail]))
      const err = await rejection(checkAndStageLatestRuntime(s.opts()))
      expect(err).toMatchObject({ code: 'EBADARCHIVE', url: `${s.registry.url}kanban/-/kanban-1.2.0.tgz` })
      expect(s.partials()).toEqual([])
    }
  })

  it('names the refused entry', async () => {
    s.publish('1.1.0', tgz([...base, { path: 'package/lnk', type: 'symlink', linkname: '/etc' }]))
    const err = await rejection(checkAndStageLatestRuntime(s.opts()))
    expect(err).toMatchObject({ code: 'EUNSAFE_ENTRY', entry: 'package/lnk' })
  })

  it('refuses an endless tarball body with ETOO_LARGE before it fills the disk, and keeps none of it', async () => {
    const before = await s.stageBaseline()
    s.publish('1.1.0', tgz(base))
    // No Content-Length, a strong ETag (so bytes would be kept for resuming), and bytes forever.
    s.registry.routes.set(s.registry.tarballPath('kanban', '1.1.0'), (_req, res) => {
      res.writeHead(200, { etag: '"endless"' })
      const junk = crypto.randomBytes(64 * 1024)
      const pump = () => {
        while (!res.destroyed && res.write(junk)) {}
        if (!res.destroyed) res.once('drain', pump)
      }
      pump()
    })
    const err = await rejection(checkAndStageLatestRuntime(s.opts({ maxUnpackedBytes: 1 << 20, maxEntries: 16 })))
    expect(err).toMatchObject({ code: 'ETOO_LARGE', limit: 'tarballBytes' })
    s.expectUnchanged(before, '1.0.5')
  })

  it('maxUnpackedBytes lowers the cap', async () => {
    s.publish('1.1.0', tgz([...base, { path: 'package/big.bin', body: Buffer.alloc(200_000) }]))
    const err = await rejection(checkAndStageLatestRuntime(s.opts({ maxUnpackedBytes: 100_000 })))
    expect(err.code).toBe('ETOO_LARGE')
    expect(s.partials()).toEqual([])
  })

  it('maxEntries caps the entry count', async () => {
    const many = Array.from({ length: 50 }, (_, i) => ({ path: `package/f${i}.js`, body: 'x' }))
    s.publish('1.1.0', tgz([...base, ...many]))
    const err = await rejection(checkAndStageLatestRuntime(s.opts({ maxEntries: 20 })))
    expect(err.code).toBe('ETOO_LARGE')
  })

  it.skipIf(process.platform === 'win32')(
    'stages a package of 20,000 files under a 256 open-file limit',
    { timeout: 240_000 },
    async () => {
      // 200 folders of 100 files: far more files than the limit allows open at once.
      const files = Array.from({ length: 20_000 }, (_, i) => ({
        path: `package/lib/d${Math.floor(i / 100)}/f${i % 100}.js`,
        body: `module.exports = ${i}\n`,
      }))
      s.publish('1.1.0', tgz([...base, ...files]), { fileCount: files.length + base.length })
      const outcome = await stageInChild(s.opts(), undefined, 256)
      expect(outcome).toEqual({ kind: 'staged', version: '1.1.0' })
      const lib = path.join(s.versionsDir, '1.1.0', 'lib')
      expect(fs.readdirSync(lib).length).toBe(200)
      expect(fs.readdirSync(path.join(lib, 'd199')).length).toBe(100)
      expect(fs.readFileSync(path.join(lib, 'd123', 'f45.js'), 'utf8')).toBe('module.exports = 12345\n')
    },
  )

  it.skipIf(process.platform === 'win32')('sets modes explicitly and never keeps setuid, setgid or sticky bits', async () => {
    s.publish(
      '1.1.0',
      tgz([
        ...base,
        { path: 'package/bin/tool', body: '#!/bin/sh\n', mode: 0o4755 },
        { path: 'package/lib/data.json', body: '{}', mode: 0o6666 },
        { path: 'package/lib/sticky', body: '', mode: 0o1777 },
      ]),
    )
    expect((await checkAndStageLatestRuntime(s.opts())).kind).toBe('staged')
    const mode = (p: string) => fs.statSync(path.join(s.versionsDir, '1.1.0', p)).mode & 0o7777
    expect(mode('bin/tool')).toBe(0o755)
    expect(mode('lib/data.json')).toBe(0o644)
    expect(mode('lib/sticky')).toBe(0o755)
    expect(mode('dist/cli.js')).toBe(0o755) // the package's bin
  })
})

describe('a full disk', () => {
  it.skipIf(process.platform !== 'linux')('fails with ENOSPC, removes the partial, keeps the pointer and the earlier version', async (ctx) => {
    const mnt = tempDir('krs-tmpfs-')
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt], { stdio: 'pipe' })
    } catch (e) {
      console.log(`skipped: cannot mount a tmpfs here (${String((e as Error).message).split('\n')[0]})`)
      ctx.skip()
      return
    }
    try {
      s.userData = mnt
      const before = await s.stageBaseline()
      // Random bytes do not compress, so the 3 MiB file really needs 3 MiB of the 1 MiB disk.
      s.publish('1.1.0', tgz([...base, { path: 'package/payload.bin', body: crypto.randomBytes(3 << 20) }]))
      const err = await rejection(checkAndStageLatestRuntime(s.opts({ maxUnpackedBytes: 64 << 20 })))
      expect(err.code).toBe('ENOSPC')
      expect(typeof err.path).toBe('string')
      s.expectUnchanged(before, '1.0.5')
      expect(snapshot(s.store)).toEqual(before)
    } finally {
      execFileSync('umount', [mnt])
    }
  })
})

