// Hostile networks: stalls, errors, resets, truncation, corruption, aborts, proxies, auth.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { Registry, sri } from '../scripts/testkit/registry.mjs'
import { binding, rejection } from './helpers/binding'
import { runtimeTarball } from './helpers/fixtures'
import { Proxy } from './helpers/proxy'
import { Scenario } from './helpers/scenario'
import { makeTestCa } from './helpers/test-ca'

const { checkAndStageLatestRuntime, readPointer } = binding

const s = Scenario.perTest()

const TARBALL = '/kanban/-/kanban-1.1.0.tgz'

/**
 * Stages the baseline, then publishes 1.1.0 with a tarball that sends its first `head` bytes and
 * then nothing, forever. Returns the baseline's snapshot.
 */
async function stallOverBaseline(head: number): Promise<Record<string, string>> {
  const before = await s.stageBaseline()
  s.publish('1.1.0')
  s.registry.hold(TARBALL, runtimeTarball('1.1.0'), { head })
  return before
}

/** Runs `fn` against an HTTPS registry whose certificate comes from a private test CA. */
async function withSecureRegistry(ctx: { skip: () => void }, fn: (secure: Registry, caPem: string) => Promise<void>) {
  const tls = makeTestCa()
  if (!tls) {
    console.log('skipped: no openssl to make a test certificate authority')
    return ctx.skip()
  }
  const secure = await Registry.start(tls)
  try {
    secure.publish('kanban', [{ version: '1.1.0', tarball: runtimeTarball('1.1.0') }], { latest: '1.1.0' })
    await fn(secure, tls.caPem)
  } finally {
    await secure.close()
  }
}

describe('timeouts', () => {
  // Windows answers a connect to a full accept queue with a reset rather than silence, so no local
  // listener can make a handshake hang there.
  it.skipIf(process.platform === 'win32')('a registry that never completes the TCP handshake fails with ETIMEDOUT after connectTimeoutMs', async (ctx) => {
    // A listener that never accepts, with its accept queue filled: further SYNs are dropped, so a
    // connect hangs exactly as it does against a firewalled host.
    const py = spawn('python3', [
      '-c',
      "import socket,time\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen(0)\nprint(s.getsockname()[1], flush=True)\ntime.sleep(60)",
    ])
    const port = await new Promise<number | null>((resolve) => {
      py.on('error', () => resolve(null))
      py.stdout.once('data', (d) => resolve(Number(String(d).trim())))
    })
    if (!port) {
      console.log('skipped: no python3 to hold a listener that never accepts')
      return ctx.skip()
    }
    const fillers = Array.from({ length: 4 }, () => net.connect(port, '127.0.0.1').on('error', () => {}))
    try {
      await new Promise((r) => setTimeout(r, 300))
      const registry = `http://127.0.0.1:${port}/`
      const err = await rejection(
        checkAndStageLatestRuntime(s.opts({ registry, connectTimeoutMs: 400, idleTimeoutMs: 30_000, timeoutMs: 60_000 })),
      )
      expect(err).toMatchObject({ code: 'ETIMEDOUT', timeoutMs: 400, url: `${registry}kanban` })
    } finally {
      for (const f of fillers) f.destroy()
      py.kill()
    }
  })

  it('a stalled document fails with ETIMEDOUT after the idle timeout', async () => {
    s.publish('1.1.0')
    s.registry.routes.set('/kanban', () => {}) // accepts, never answers
    const started = Date.now()
    const err = await rejection(checkAndStageLatestRuntime(s.opts({ idleTimeoutMs: 300 })))
    expect(err.code).toBe('ETIMEDOUT')
    expect(err.url).toBe(`${s.registry.url}kanban`)
    expect(Date.now() - started).toBeLessThan(10_000)
    expect(fs.existsSync(s.store)).toBe(false)
  })

  it('a tarball that stalls mid-body fails with ETIMEDOUT, leaving the store as it was', async () => {
    const before = await stallOverBaseline(20)
    const err = await rejection(checkAndStageLatestRuntime(s.opts({ idleTimeoutMs: 300 })))
    expect(err.code).toBe('ETIMEDOUT')
    expect(err.url).toBe(`${s.registry.url}kanban/-/kanban-1.1.0.tgz`)
    s.expectUnchanged(before, '1.0.5')
  })

  it('a registry that trickles bytes forever hits the overall timeoutMs', async () => {
    s.registry.routes.set('/kanban', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      const t = setInterval(() => res.write(' '), 50) // never idle, never done
      res.on('close', () => clearInterval(t))
    })
    const err = await rejection(checkAndStageLatestRuntime(s.opts({ timeoutMs: 600, idleTimeoutMs: 5_000 })))
    expect(err.code).toBe('ETIMEDOUT')
    expect(err.timeoutMs).toBe(600)
  })
})

describe('the package document size cap', () => {
  /** A valid document padded past `bytes` with whitespace, so only its size is wrong. */
  function bigDoc(bytes: number): Buffer {
    s.publish('1.1.0')
    const doc = JSON.stringify({ 'dist-tags': { latest: '1.1.0' }, versions: {} })
    return Buffer.concat([Buffer.from(doc), Buffer.alloc(bytes - doc.length, ' ')])
  }

  it('refuses a document over the default 8 MiB cap that declares its Content-Length', async () => {
    const body = bigDoc(9 << 20)
    s.registry.routes.set('/kanban', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length })
      res.end(body)
    })
    const err = await rejection(checkAndStageLatestRuntime(s.opts()))
    expect(err).toMatchObject({ code: 'ETOO_LARGE', limit: 'document', url: `${s.registry.url}kanban` })
    expect(s.registry.tarballRequests()).toBe(0)
  })

  it('refuses a chunked document over maxDocumentBytes while streaming it', async () => {
    const body = bigDoc(64 << 10)
    s.registry.routes.set('/kanban', (_req, res) => {
      // No Content-Length: the cap is found while the body streams in.
      res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' })
      for (let i = 0; i < body.length; i += 4096) res.write(body.subarray(i, i + 4096))
      res.end()
    })
    const err = await rejection(checkAndStageLatestRuntime(s.opts({ maxDocumentBytes: 32 << 10 })))
    expect(err).toMatchObject({ code: 'ETOO_LARGE', limit: 'document' })
  })

  it('maxDocumentBytes raises the cap, and must be a positive integer', async () => {
    s.publish('1.1.0')
    const doc = JSON.stringify({
      'dist-tags': { latest: '1.1.0' },
      versions: { '1.1.0': { dist: { tarball: `${s.registry.url}kanban/-/kanban-1.1.0.tgz`, integrity: sri(runtimeTarball('1.1.0')) } } },
    })
    const body = Buffer.concat([Buffer.from(doc), Buffer.alloc(9 << 20, ' ')])
    s.registry.routes.set('/kanban', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length })
      res.end(body)
    })
    expect(await checkAndStageLatestRuntime(s.opts({ maxDocumentBytes: 16 << 20 }))).toEqual({ kind: 'staged', version: '1.1.0' })
    for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      const err = await rejection(checkAndStageLatestRuntime(s.opts({ maxDocumentBytes: bad })))
      expect(err).toMatchObject({ code: 'EINVALID_OPTION', option: 'maxDocumentBytes' })
    }
  })
})

describe('retries', () => {
  it('retries a 500 on the document and then stages', async () => {
    s.publish('1.1.0')
    s.registry.failFirst('/kanban', 1, (res) => {
      res.writeHead(500)
      res.end()
    })
    expect(await checkAndStageLatestRuntime(s.opts({ retries: 2 }))).toEqual({ kind: 'staged', version: '1.1.0' })
    expect(s.registry.count('/kanban')).toBe(2)
  })

  it('gives up on a 503 that never ends after the configured retries, with EHTTP 503', async () => {
    s.publish('1.1.0')
    s.registry.routes.set('/kanban', (_req, res) => {
      res.writeHead(503)
      res.end()
    })
    const err = await rejection(checkAndStageLatestRuntime(s.opts({ retries: 2 })))
    expect(err.code).toBe('EHTTP')
    expect(err.status).toBe(503)
    expect(s.registry.count('/kanban')).toBe(3)
  })

  it('spends one retry budget on a tarball that answers 503 forever', async () => {
    const before = await s.stageBaseline()
    s.publish('1.1.0')
    s.registry.failFirst(TARBALL, Infinity, (res) => {
      res.writeHead(503)
      res.end()
    })
    const err = await rejection(checkAndStageLatestRuntime(s.opts({ retries: 2 })))
    expect(err).toMatchObject({ code: 'EHTTP', status: 503 })
    expect(s.registry.count(TARBALL)).toBe(3) // the first attempt and two retries, no more
    s.expectUnchanged(before, '1.0.5')
  })

  it('does not retry a 404', async () => {
    s.publish('1.1.0')
    s.registry.routes.set(TARBALL, (_req, res) => {
      res.writeHead(404)
      res.end()
    })
    const err = await rejection(checkAndStageLatestRuntime(s.opts({ retries: 3 })))
    expect(err).toMatchObject({ code: 'EHTTP', status: 404 })
    expect(s.registry.count(TARBALL)).toBe(1)
    expect(s.partials()).toEqual([])
  })

  it('honours Retry-After on a 429 and then stages', async () => {
    s.publish('1.1.0')
    const times = s.registry.failFirst(TARBALL, 1, (res) => {
      res.writeHead(429, { 'retry-after': '1' })
      res.end()
    })
    expect(await checkAndStageLatestRuntime(s.opts({ retries: 1 }))).toEqual({ kind: 'staged', version: '1.1.0' })
    expect(times).toHaveLength(2)
    expect(times[1] - times[0]).toBeGreaterThanOrEqual(900)
  })

  it('retries a connection reset mid-body and stages whole', async () => {
    s.publish('1.1.0')
    const body = runtimeTarball('1.1.0')
    s.registry.failFirst(TARBALL, 1, (res) => {
      res.writeHead(200, { 'content-length': body.length })
      res.write(body.subarray(0, body.length >> 1), () => res.socket?.resetAndDestroy())
    })
    expect(await checkAndStageLatestRuntime(s.opts({ retries: 2 }))).toEqual({ kind: 'staged', version: '1.1.0' })
    expect(s.registry.count(TARBALL)).toBe(2)
    expect(s.tree('1.1.0')).toContain('dist/cli.js')
    expect(s.partials()).toEqual([])
  })

  it('rejects a body shorter than its Content-Length with ENETWORK and stages nothing', async () => {
    const before = await s.stageBaseline()
    s.publish('1.1.0')
    const body = runtimeTarball('1.1.0')
    s.registry.routes.set(TARBALL, (_req, res) => {
      res.writeHead(200, { 'content-length': body.length + 100 })
      res.write(body, () => res.socket?.end())
    })
    const err = await rejection(checkAndStageLatestRuntime(s.opts()))
    expect(err.code).toBe('ENETWORK')
    expect(err.url).toBe(`${s.registry.url}kanban/-/kanban-1.1.0.tgz`)
    s.expectUnchanged(before, '1.0.5')
  })

  it('rejects one corrupted byte with EINTEGRITY after one fresh download', async () => {
    const before = await s.stageBaseline()
    const good = runtimeTarball('1.1.0')
    s.publish('1.1.0', good)
    const bad = Buffer.from(good)
    bad[bad.length >> 1] ^= 0x01 // mid-stream: the inflater fails, the hash explains why
    s.registry.routes.set(TARBALL, (_req, res) => {
      res.writeHead(200, { 'content-length': bad.length })
      res.end(bad)
    })
    const err = await rejection(checkAndStageLatestRuntime(s.opts({ retries: 3 })))
    expect(err.code).toBe('EINTEGRITY')
    expect(err.expected).toBe(sri(good))
    expect(err.actual).toBe(sri(bad))
    expect(s.registry.count(TARBALL)).toBe(2)
    s.expectUnchanged(before, '1.0.5')
  })

  it('a corrupted byte that still inflates is caught by the sha512 check', async () => {
    const before = await s.stageBaseline()
    const good = runtimeTarball('1.1.0')
    // A flipped bit in the gzip header's mtime: a valid stream whose hash differs.
    const bad = Buffer.from(good)
    bad[4] ^= 0x01
    s.publish('1.1.0', bad, { integrity: sri(good) })
    const err = await rejection(checkAndStageLatestRuntime(s.opts({ retries: 3 })))
    expect(err.code).toBe('EINTEGRITY')
    expect(err.actual).toBe(sri(bad))
    expect(s.registry.count(TARBALL)).toBe(2)
    s.expectUnchanged(before, '1.0.5')
  })
})

describe('cancellation', () => {
  it('aborting mid-download rejects with EABORTED and removes the partial', async () => {
    const before = await stallOverBaseline(30)
    const controller = new AbortController()
    const call = checkAndStageLatestRuntime(s.opts({ signal: controller.signal }))
    await vi.waitFor(() => expect(fs.existsSync(path.join(s.stagingDir, '1.1.0.partial'))).toBe(true))
    controller.abort()
    const err = await rejection(call)
    expect(err.code).toBe('EABORTED')
    s.expectUnchanged(before, '1.0.5')
  })

  it('an already-aborted signal rejects without a request', async () => {
    s.publish('1.1.0')
    const err = await rejection(checkAndStageLatestRuntime(s.opts({ signal: AbortSignal.abort() })))
    expect(err.code).toBe('EABORTED')
    expect(s.registry.requests).toHaveLength(0)
  })
})

describe('proxies', () => {
  let proxy: Proxy
  beforeEach(async () => {
    proxy = await Proxy.start()
  })
  afterEach(async () => {
    delete process.env.HTTP_PROXY
    delete process.env.NO_PROXY
    await proxy.close()
  })

  it('sends the document and the tarball through the `proxy` option', async () => {
    s.publish('1.1.0')
    expect(await checkAndStageLatestRuntime(s.opts({ proxy: proxy.url }))).toEqual({ kind: 'staged', version: '1.1.0' })
    expect(proxy.seen).toEqual([`GET ${s.registry.url}kanban`, `GET ${s.registry.url}kanban/-/kanban-1.1.0.tgz`])
  })

  it('tunnels HTTPS through the proxy with CONNECT', (ctx) =>
    withSecureRegistry(ctx, async (secure, caPem) => {
      const outcome = await checkAndStageLatestRuntime(s.opts({ registry: secure.url, ca: caPem, proxy: proxy.url }))
      expect(outcome).toEqual({ kind: 'staged', version: '1.1.0' })
      expect(proxy.seen.length).toBeGreaterThan(0)
      expect(proxy.seen.every((l) => l === `CONNECT 127.0.0.1:${secure.port}`)).toBe(true)
      expect(secure.requests.map((r) => r.url)).toEqual(['/kanban', '/kanban/-/kanban-1.1.0.tgz'])
    }))

  it("accepts Electron's resolveProxy() form", async () => {
    s.publish('1.1.0')
    await checkAndStageLatestRuntime(s.opts({ proxy: `PROXY 127.0.0.1:${proxy.port}; DIRECT` }))
    expect(proxy.seen).toHaveLength(2)
  })

  it('uses HTTP_PROXY from the environment, and NO_PROXY exempts hosts', async () => {
    s.publish('1.1.0')
    process.env.HTTP_PROXY = proxy.url
    expect((await checkAndStageLatestRuntime(s.opts())).kind).toBe('staged')
    expect(proxy.seen).toHaveLength(2)
    process.env.NO_PROXY = '127.0.0.1'
    expect((await checkAndStageLatestRuntime(s.opts())).kind).toBe('already-staged')
    expect(proxy.seen).toHaveLength(2)
  })
})

describe('registries', () => {
  it('sends the auth token to the registry host and never to a foreign tarball host', async () => {
    const foreign = await Registry.start()
    try {
      const body = runtimeTarball('1.1.0')
      foreign.publish('kanban', [{ version: '1.1.0', tarball: body }], { latest: '1.1.0' })
      s.registry.publish('kanban', [{ version: '1.1.0', tarball: body }], { latest: '1.1.0' }, foreign.url.replace(/\/$/, ''))
      const outcome = await checkAndStageLatestRuntime(s.opts({ authToken: 'sekrit' }))
      expect(outcome).toEqual({ kind: 'staged', version: '1.1.0' })
      const docReq = s.registry.requests.find((r) => r.url === '/kanban')!
      expect(docReq.headers.authorization).toBe('Bearer sekrit')
      const tarReq = foreign.requests.find((r) => r.url.endsWith('.tgz'))!
      expect(tarReq).toBeDefined()
      expect(tarReq.headers.authorization).toBeUndefined()
      expect(s.registry.tarballRequests()).toBe(0)
    } finally {
      await foreign.close()
    }
  })

  it('sends the auth token with a tarball on the registry host', async () => {
    s.publish('1.1.0')
    await checkAndStageLatestRuntime(s.opts({ authToken: 'sekrit' }))
    const tarReq = s.registry.requests.find((r) => r.url === TARBALL)!
    expect(tarReq.headers.authorization).toBe('Bearer sekrit')
  })

  it('trusts an extra CA given with `ca` for an HTTPS registry, and refuses the same server without it', (ctx) =>
    withSecureRegistry(ctx, async (secure, caPem) => {
      const without = await rejection(checkAndStageLatestRuntime(s.opts({ registry: secure.url })))
      expect(without.code).toBe('ENETWORK')
      expect(secure.requests).toHaveLength(0) // the handshake failed: no request was sent
      const outcome = await checkAndStageLatestRuntime(s.opts({ registry: secure.url, ca: caPem }))
      expect(outcome).toEqual({ kind: 'staged', version: '1.1.0' })
      expect(secure.requests.map((r) => r.url)).toEqual(['/kanban', '/kanban/-/kanban-1.1.0.tgz'])
    }))

  it('refuses a redirect from an https registry to plain http, for the document and the tarball, and stages nothing', (ctx) =>
    withSecureRegistry(ctx, async (secure, caPem) => {
      // The same release in cleartext, where the redirects point.
      s.publish('1.1.0')
      const downgrade = (to: string) => (_req: unknown, res: import('node:http').ServerResponse) => {
        res.writeHead(302, { location: to, 'content-length': 0 })
        res.end()
      }
      const opts = s.opts({ registry: secure.url, ca: caPem, retries: 2 })
      secure.routes.set('/kanban', downgrade(`${s.registry.url}kanban`))
      const doc = await rejection(checkAndStageLatestRuntime(opts))
      expect(doc).toMatchObject({ code: 'EINSECURE_REDIRECT', url: `${secure.url}kanban`, location: `${s.registry.url}kanban` })
      expect(doc.hint).toMatch(/https/)
      expect(secure.count('/kanban')).toBe(1) // refused, never retried
      secure.routes.delete('/kanban')
      secure.routes.set(TARBALL, downgrade(`${s.registry.url}${TARBALL.slice(1)}`))
      const tarball = await rejection(checkAndStageLatestRuntime(opts))
      expect(tarball).toMatchObject({ code: 'EINSECURE_REDIRECT', url: `${secure.url}${TARBALL.slice(1)}` })
      expect(s.registry.requests).toEqual([])
      expect(readPointer(s.userData)).toBeNull()
      expect(s.partials()).toEqual([])
    }))

  it('follows a redirect from http to https', (ctx) =>
    withSecureRegistry(ctx, async (secure, caPem) => {
      s.registry.routes.set('/kanban', (_req, res) => {
        res.writeHead(301, { location: `${secure.url}kanban`, 'content-length': 0 })
        res.end()
      })
      const outcome = await checkAndStageLatestRuntime(s.opts({ ca: caPem }))
      expect(outcome).toEqual({ kind: 'staged', version: '1.1.0' })
      expect(secure.requests.map((r) => r.url)).toEqual(['/kanban', '/kanban/-/kanban-1.1.0.tgz'])
    }))

  it('rejects a ca option without certificates as EINVALID_OPTION', async () => {
    s.publish('1.1.0')
    const err = await rejection(checkAndStageLatestRuntime(s.opts({ ca: 'not a certificate' })))
    expect(err).toMatchObject({ code: 'EINVALID_OPTION', option: 'ca' })
    expect(readPointer(s.userData)).toBeNull()
  })
})
