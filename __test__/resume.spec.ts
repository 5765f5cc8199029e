// Bad networks: a broken tarball download resumes (Range + If-Range) within a call, across calls
// and across processes, and starts over cleanly whenever the server's answer or the kept bytes
// cannot be trusted; the package document is revalidated with a 304; maxBytesPerSecond caps the
// download rate.
import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import type { BodyOptions, Served } from '../scripts/testkit/registry.mjs'
import { stageInChild } from './helpers/child'
import { binding, rejection } from './helpers/binding'
import { runCli, stageArgs } from './helpers/cli'
import { runtimeTarball } from './helpers/fixtures'
import { Scenario } from './helpers/scenario'

const { checkAndStageLatestRuntime, readPointer } = binding

const s = Scenario.perTest()

/** A runtime tarball of about `bytes`, incompressible, so byte offsets mean what they say. */
function bigTarball(version: string, bytes: number): Buffer {
  return runtimeTarball(version, { extra: [{ path: 'package/blob.bin', body: randomBytes(bytes) }] })
}

/** Serves `body` as kanban@version's tarball with the ETag "v1" and byte ranges, as configured. */
function serveTarball(version: string, body: Buffer, o: BodyOptions = {}) {
  return s.registry.serveBody(s.registry.tarballPath('kanban', version), body, { etag: '"v1"', ...o })
}

/** Publishes 1.1.0 as a big tarball of about `bytes`; returns the tarball. */
function publishBig(bytes = 1 << 20): Buffer {
  const tgz = bigTarball('1.1.0', bytes)
  s.publish('1.1.0', tgz)
  return tgz
}

/**
 * Publishes a big 1.1.0, serves it with `o` and the first connection cut halfway, and stages it
 * with one retry.
 */
async function stageAfterOneCut(o: BodyOptions = {}) {
  const tgz = publishBig()
  const cut = tgz.length >> 1
  const t = serveTarball('1.1.0', tgz, { ...o, cutAt: (i) => (i === 0 ? cut : undefined) })
  expect(await checkAndStageLatestRuntime(s.opts({ retries: 1 }))).toEqual({ kind: 'staged', version: '1.1.0' })
  return { tgz, cut, t }
}

/** The resume was answered with a 206 that could not be used, so the download started over. */
function expectUnusableRange(log: Served[]) {
  expect(log.map((e) => [e.status, e.range === undefined])).toEqual([
    [200, true],
    [206, false],
    [200, true],
  ])
}

/** Kills `child` `ms` after a new request in `log` has received its first bytes. */
function killOnceDownloading(child: ChildProcess, log: Served[], ms: number) {
  const from = log.length
  const poll = setInterval(() => {
    if (log.slice(from).some((e) => e.bytes > 0)) {
      clearInterval(poll)
      setTimeout(() => child.kill('SIGKILL'), ms)
    }
  }, 5)
  child.on('exit', () => clearInterval(poll))
}

function keptFiles(): string[] {
  return fs.existsSync(s.stagingDir) ? fs.readdirSync(s.stagingDir).filter((n) => n.includes('.download')) : []
}

function keptBytes(version: string): number {
  return fs.statSync(path.join(s.stagingDir, `${version}.download`)).size
}

function expectStagedClean(version: string) {
  expect(readPointer(s.userData)?.version).toBe(version)
  expect(s.isWhole(version)).toBe(true)
  expect(s.partials()).toEqual([])
  expect(keptFiles()).toEqual([])
}

describe('resume', () => {
  it('resumes a cut mid-body within one call, fetching each byte once', async () => {
    const tgz = publishBig()
    const cut = Math.floor(tgz.length * 0.4)
    const t = serveTarball('1.1.0', tgz, { cutAt: (i) => (i === 0 ? cut : undefined) })
    const outcome = await checkAndStageLatestRuntime(s.opts({ retries: 2 }))
    expect(outcome).toEqual({ kind: 'staged', version: '1.1.0' })
    expect(t.log.map((e) => [e.status, e.range, e.ifRange])).toEqual([
      [200, undefined, undefined],
      [206, `bytes=${cut}-`, '"v1"'],
    ])
    expect(t.served()).toBe(tgz.length)
    expectStagedClean('1.1.0')
  })

  it('keeps the bytes when the cuts outlast the retries, and the next call and another process resume them', async () => {
    const tgz = publishBig()
    const third = Math.floor(tgz.length / 3)
    // Calls 1 and 2 each get one more third, then a connection that drops before any byte.
    const cuts = [third, 0, 2 * third, 0]
    const t = serveTarball('1.1.0', tgz, { cutAt: (i) => cuts[i] })
    const opts = s.opts({ retries: 1 })

    expect((await rejection(checkAndStageLatestRuntime(opts))).code).toBe('ENETWORK')
    expect(keptBytes('1.1.0')).toBe(third)
    expect(readPointer(s.userData)).toBeNull()

    expect((await rejection(checkAndStageLatestRuntime(opts))).code).toBe('ENETWORK')
    expect(keptBytes('1.1.0')).toBe(2 * third)
    expect(t.log[2]).toMatchObject({ status: 206, range: `bytes=${third}-` })

    expect(await stageInChild(opts)).toEqual({ kind: 'staged', version: '1.1.0' })
    expect(t.log[4]).toMatchObject({ status: 206, range: `bytes=${2 * third}-` })
    expect(t.served()).toBe(tgz.length)
    expectStagedClean('1.1.0')
  })

  it("replays kept bytes only within the call's caps: more than its tarball cap is refused before any request", async () => {
    const tgz = publishBig(3 << 20)
    const cut = 2 << 20
    const t = serveTarball('1.1.0', tgz, { cutAt: (i) => (i === 0 ? cut : undefined) })
    expect((await rejection(checkAndStageLatestRuntime(s.opts()))).code).toBe('ENETWORK')
    expect(keptBytes('1.1.0')).toBe(cut)
    // The smallest caps allow a body of about 1 MiB: the 2 MiB kept already exceed it.
    const err = await rejection(checkAndStageLatestRuntime(s.opts({ maxUnpackedBytes: 1, maxEntries: 1 })))
    expect(err).toMatchObject({ code: 'ETOO_LARGE', limit: 'tarballBytes' })
    expect(t.log).toHaveLength(1)
    expect(s.partials()).toEqual([])
  })

  it('starts over from byte 0 when the server ignores Range', async () => {
    const { tgz, cut, t } = await stageAfterOneCut({ ranges: false })
    expect(t.log.map((e) => [e.status, e.range])).toEqual([
      [200, undefined],
      [200, `bytes=${cut}-`],
    ])
    expect(t.served()).toBe(cut + tgz.length)
    expectStagedClean('1.1.0')
  })

  it('gives up after the retries when every attempt is cut at the same byte', { timeout: 30_000 }, async () => {
    const tgz = publishBig(256 * 1024)
    const cut = 20 * 1024
    // From byte 0 every time (no validator, so nothing is kept, and Range ignored), cut at 20 KB.
    for (const o of [{ etag: null }, { ranges: false }] as BodyOptions[]) {
      const t = serveTarball('1.1.0', tgz, { ...o, cutAt: () => cut })
      const e = await rejection(checkAndStageLatestRuntime(s.opts({ retries: 3, timeoutMs: 20_000 })))
      expect(e).toMatchObject({ code: 'ENETWORK', phase: 'downloading' })
      // The first attempt got to 20 KB; the next three got no further, and each counted.
      expect(t.log.map((r) => r.bytes)).toEqual([cut, cut, cut, cut])
      expect(readPointer(s.userData)).toBeNull()
      expect(s.partials()).toEqual([])
    }
  })

  it('starts over when the ETag changed between attempts', async () => {
    const { t } = await stageAfterOneCut({ etag: (i) => (i === 0 ? '"v1"' : '"v2"') })
    // If-Range named the old ETag, so the server sent the whole new representation.
    expect(t.log.map((e) => [e.status, e.ifRange])).toEqual([
      [200, undefined],
      [200, '"v1"'],
    ])
    expectStagedClean('1.1.0')
  })

  it('drops the kept bytes when a server that ignores If-Range sends a range of another ETag', async () => {
    const { t } = await stageAfterOneCut({ etag: (i) => (i === 0 ? '"v1"' : '"v2"'), ignoreIfRange: true })
    expectUnusableRange(t.log)
    expectStagedClean('1.1.0')
  })

  it('starts over when Content-Range does not start at the kept length', async () => {
    const { t } = await stageAfterOneCut({ shift: -100 })
    expectUnusableRange(t.log)
    expectStagedClean('1.1.0')
  })

  it('restarts cleanly, never with EINTEGRITY, when the kept bytes were damaged on disk', async () => {
    const tgz = publishBig()
    const cut = tgz.length >> 1
    const t = serveTarball('1.1.0', tgz, { cutAt: (i) => (i === 0 ? cut : undefined) })
    expect((await rejection(checkAndStageLatestRuntime(s.opts()))).code).toBe('ENETWORK')
    const kept = path.join(s.stagingDir, '1.1.0.download')
    const fd = fs.openSync(kept, 'r+')
    fs.writeSync(fd, Buffer.alloc(4096, 0x55), 0, 4096, cut >> 1)
    fs.closeSync(fd)
    expect(await checkAndStageLatestRuntime(s.opts())).toEqual({ kind: 'staged', version: '1.1.0' })
    expect(t.log.map((e) => [e.status, e.range])).toEqual([
      [200, undefined],
      [206, `bytes=${cut}-`],
      [200, undefined],
    ])
    expectStagedClean('1.1.0')
  })

  it('sweeps kept bytes once a newer version supersedes them', async () => {
    const old = publishBig(256 * 1024)
    serveTarball('1.1.0', old, { cutAt: () => old.length >> 1 })
    expect((await rejection(checkAndStageLatestRuntime(s.opts()))).code).toBe('ENETWORK')
    expect(keptFiles().sort()).toEqual(['1.1.0.download', '1.1.0.download.json'])
    s.publish('1.2.0')
    expect(await checkAndStageLatestRuntime(s.opts())).toEqual({ kind: 'staged', version: '1.2.0' })
    expect(keptFiles()).toEqual([])
  })

  it('survives SIGKILL during a resumed download', { timeout: 120_000 }, async () => {
    const tgz = bigTarball('1.1.0', 4 << 20)
    s.publish('1.1.0', tgz, { unpackedSize: 5 << 20 })
    // ~70 writes 10 ms apart: a run takes about a second.
    const t = serveTarball('1.1.0', tgz, { pace: 10 })
    const opts = s.opts({ retries: 1 })
    let resumedAfterKill = 0
    for (let i = 0; i < 4; i++) {
      fs.rmSync(s.userData, { recursive: true, force: true })
      fs.mkdirSync(s.userData)
      const before = t.log.length
      // The first child is killed mid-download; the second resumes and is killed too. Each kill
      // lands a random moment after its download began, however long the child took to start.
      for (const ms of [Math.random() * 300, Math.random() * 400]) {
        await stageInChild(opts, (c) => killOnceDownloading(c, t.log, ms))
        s.expectPointerSafe()
      }
      if (t.log.slice(before).some((e) => e.status === 206)) resumedAfterKill += 1
      const outcome = await checkAndStageLatestRuntime(opts)
      expect(['staged', 'already-staged']).toContain(outcome.kind)
      expectStagedClean('1.1.0')
    }
    expect(resumedAfterKill).toBeGreaterThan(0)
  })
})

describe('conditional document fetch', () => {
  const cacheFile = () => path.join(s.store, 'package-document.cache')
  const docRequests = () => s.registry.requests.filter((r) => r.url === '/kanban')

  /** Serves documents with ETags and publishes 1.0.0; returns options of an app running 1.0.0. */
  function upToDateWithEtags() {
    s.registry.documentEtags = true
    s.publish('1.0.0')
    return s.opts({ currentVersion: '1.0.0' })
  }

  it('revalidates the cached document and uses it on 304; a new document replaces it', async () => {
    const opts = upToDateWithEtags()
    expect(await checkAndStageLatestRuntime(opts)).toEqual({ kind: 'up-to-date' })
    const cold = s.registry.documentBytes
    expect(cold).toBeGreaterThan(0)
    expect(fs.existsSync(cacheFile())).toBe(true)
    expect(await checkAndStageLatestRuntime(opts)).toEqual({ kind: 'up-to-date' })
    expect(docRequests()[1].headers['if-none-match']).toMatch(/^"/)
    expect(s.registry.documentBytes).toBe(cold)

    s.publish('1.1.0')
    expect(await checkAndStageLatestRuntime(opts)).toEqual({ kind: 'staged', version: '1.1.0' })
    expect(s.registry.documentBytes).toBeGreaterThan(cold)
  })

  it('asks unconditionally without a cached copy', async () => {
    const opts = upToDateWithEtags()
    await checkAndStageLatestRuntime(opts)
    fs.rmSync(cacheFile())
    expect(await checkAndStageLatestRuntime(opts)).toEqual({ kind: 'up-to-date' })
    expect(docRequests().map((r) => r.headers['if-none-match'])).toEqual([undefined, undefined])
    expect(fs.existsSync(cacheFile())).toBe(true)
  })

  it('drops a cached copy that no longer parses and fetches the document again', async () => {
    const opts = upToDateWithEtags()
    await checkAndStageLatestRuntime(opts)
    // Same validators, body replaced by something of the same length that is not JSON.
    const raw = fs.readFileSync(cacheFile())
    const nl = raw.indexOf(10)
    fs.writeFileSync(cacheFile(), Buffer.concat([raw.subarray(0, nl + 1), Buffer.alloc(raw.length - nl - 1, 0x7b)]))
    expect(await checkAndStageLatestRuntime(opts)).toEqual({ kind: 'up-to-date' })
    const reqs = docRequests()
    expect(reqs.length).toBe(3)
    expect(reqs[1].headers['if-none-match']).toBeDefined()
    expect(reqs[2].headers['if-none-match']).toBeUndefined()
    expect(fs.readFileSync(cacheFile())).toEqual(raw)
  })

  it('rejects a 304 to a request that was not conditional', async () => {
    s.registry.routes.set('/kanban', (_req, res) => {
      res.writeHead(304)
      res.end()
    })
    const e = await rejection(checkAndStageLatestRuntime(s.opts()))
    expect(e).toMatchObject({ code: 'EHTTP', status: 304 })
  })
})

describe('maxBytesPerSecond', () => {
  it('holds the download to the cap, with steady progress', { timeout: 30_000 }, async () => {
    const tgz = publishBig(2 << 20)
    const cap = 1 << 20
    const events: { at: number; bytes: number; phase: string }[] = []
    const outcome = await checkAndStageLatestRuntime(
      s.opts({
        maxBytesPerSecond: cap,
        onProgress: (p: { phase: string; downloadedBytes: number }) =>
          events.push({ at: performance.now(), bytes: p.downloadedBytes, phase: p.phase }),
      }),
    )
    expect(outcome).toEqual({ kind: 'staged', version: '1.1.0' })
    const dl = events.filter((e) => e.phase === 'downloading')
    const first = dl[0]
    const last = dl[dl.length - 1]
    expect(last.bytes).toBe(tgz.length)
    const rate = (last.bytes - first.bytes) / ((last.at - first.at) / 1000)
    expect(rate).toBeGreaterThan(cap * 0.8)
    expect(rate).toBeLessThan(cap * 1.2)
    // Smooth: no gap of more than half a second between progress events.
    const gaps = dl.slice(1).map((e, i) => e.at - dl[i].at)
    expect(Math.max(...gaps)).toBeLessThan(500)
  })

  it('must be a positive integer', async () => {
    s.publish('1.1.0')
    for (const bad of [0, -5, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      const e = await rejection(checkAndStageLatestRuntime(s.opts({ maxBytesPerSecond: bad })))
      expect(e).toMatchObject({ code: 'EINVALID_OPTION', option: 'maxBytesPerSecond' })
    }
    expect(s.registry.requests).toEqual([])
  })
})

describe('cli --max-bytes-per-second', () => {
  const cli = (...args: string[]) => runCli([...stageArgs(s), '--json', ...args])

  it('passes the cap to the download, and refuses a bad value', { timeout: 20_000 }, async () => {
    const tgz = publishBig(512 * 1024)
    const r = await cli('--max-bytes-per-second', String(256 * 1024))
    expect(r.code).toBe(0)
    // About two seconds at the cap; uncapped it takes a few tens of ms.
    expect(r.ms).toBeGreaterThan(1500)
    expect(s.isWhole('1.1.0')).toBe(true)
    const bad = await cli('--max-bytes-per-second', '0')
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain("--max-bytes-per-second must be a whole number from 1 to 9007199254740991, not '0'")
  })
})
