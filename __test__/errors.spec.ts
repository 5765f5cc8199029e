// Errors an app can branch on: isStageError recognises this package's errors, also once they
// crossed Electron IPC as plain objects, and nothing else. Errors and logs never show the
// credentials a URL carries.
import net from 'node:net'
import { describe, expect, it } from 'vitest'
import { sri } from '../scripts/testkit/registry.mjs'
import { binding, rejection } from './helpers/binding'
import { runCli } from './helpers/cli'
import { runtimeTarball } from './helpers/fixtures'
import { Scenario } from './helpers/scenario'

it('isStageError accepts a real rejection and its IPC copy, and nothing else', async () => {
  const s = await Scenario.start()
  try {
    const err = await rejection(binding.checkAndStageLatestRuntime(s.opts({ packageName: 'missing' })))
    expect(err.code).toBe('EHTTP')
    expect(binding.isStageError(err)).toBe(true)
    // What structured clone over IPC leaves of it: own enumerable fields and the message.
    const copy = JSON.parse(JSON.stringify({ ...err, message: err.message }))
    expect(binding.isStageError(copy)).toBe(true)
    if (binding.isStageError(copy)) expect(copy.status).toBe(404)
  } finally {
    await s.stop()
  }
  for (const other of [
    new Error('plain'),
    Object.assign(new Error('node'), { code: 'ENOENT' }),
    { code: 'EHTTP' },
    { code: 42, message: 'x' },
    'EHTTP',
    null,
    undefined,
    42,
  ]) {
    expect(binding.isStageError(other)).toBe(false)
  }
})

describe('credentials in URLs', () => {
  /** `url` with `user:secret@` in it. */
  const withSecret = (url: string) => url.replace('//', '//user:secret@')
  /** The scenario's registry URL with `user:secret@` in it. */
  const withUser = (s: Scenario) => withSecret(s.registry.url)
  const shown = (s: Scenario) => s.registry.url.replace('http://', 'http://***@')

  /** Everything a rejection shows: its message and its own fields. */
  const everything = (err: any) => JSON.stringify({ ...err, message: err.message })

  /** A loopback port nobody listens on. */
  async function closedPort(): Promise<number> {
    const server = net.createServer()
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const { port } = server.address() as net.AddressInfo
    await new Promise((r) => server.close(r))
    return port
  }

  it('a registry with user:password never shows the password in errors or onLog, and still sends it', async () => {
    const s = await Scenario.start()
    try {
      const logs: unknown[] = []
      const opts = (extra: Record<string, unknown>) => s.opts({ registry: withUser(s), onLog: (e: unknown) => logs.push(e), ...extra })
      // Staged: the log names the registry.
      s.publish('1.1.0')
      expect(await binding.checkAndStageLatestRuntime(opts({}))).toEqual({ kind: 'staged', version: '1.1.0' })
      const basic = `Basic ${Buffer.from('user:secret').toString('base64')}`
      expect(s.registry.requests.find((r) => r.url === '/kanban')?.headers.authorization).toBe(basic)
      expect(logs.some((e) => JSON.stringify(e).includes(shown(s)))).toBe(true)
      // 404.
      const missing = await rejection(binding.checkAndStageLatestRuntime(opts({ packageName: 'missing' })))
      expect(missing).toMatchObject({ code: 'EHTTP', status: 404, url: `${shown(s)}missing` })
      expect(missing.message).toContain(`${shown(s)}missing`)
      // 500 after a retry, which is logged.
      s.registry.failFirst('/kanban', 10, (res) => {
        res.writeHead(500, { 'content-length': 0 })
        res.end()
      })
      const failing = await rejection(binding.checkAndStageLatestRuntime(opts({ retries: 1 })))
      expect(failing).toMatchObject({ code: 'EHTTP', status: 500, url: `${shown(s)}kanban` })
      expect(logs.some((e) => JSON.stringify(e).includes('retrying'))).toBe(true)
      // Refused: nobody listens.
      const port = await closedPort()
      const refused = await rejection(
        binding.checkAndStageLatestRuntime(opts({ registry: withSecret(`http://127.0.0.1:${port}/`) })),
      )
      expect(refused).toMatchObject({ code: 'ENETWORK', url: `http://***@127.0.0.1:${port}/kanban` })
      // An option the URL makes invalid.
      const invalid = await rejection(binding.checkAndStageLatestRuntime(opts({ registry: withSecret('http://127.0.0.1:99999/') })))
      expect(invalid).toMatchObject({ code: 'EINVALID_OPTION', option: 'registry' })
      for (const err of [missing, failing, refused, invalid]) expect(everything(err)).not.toContain('secret')
      expect(JSON.stringify(logs)).not.toContain('secret')
    } finally {
      await s.stop()
    }
  })

  it('token-like query parameters of a tarball URL are masked in errors and onLog', async () => {
    const s = await Scenario.start()
    try {
      const tarball = runtimeTarball('1.1.0')
      const query = 'X-Amz-Credential=AKIDSECRET&X-Amz-Signature=sigsecret&token=toksecret&v=2'
      const url = `${s.registry.url}kanban/-/kanban-1.1.0.tgz`
      s.registry.setDoc('kanban', {
        name: 'kanban',
        'dist-tags': { latest: '1.1.0' },
        versions: {
          '1.1.0': { name: 'kanban', version: '1.1.0', bin: { kanban: 'dist/cli.js' }, dist: { tarball: `${url}?${query}`, integrity: sri(tarball) } },
        },
      })
      const logs: unknown[] = []
      const err = await rejection(binding.checkAndStageLatestRuntime(s.opts({ retries: 1, onLog: (e: unknown) => logs.push(e) })))
      expect(err).toMatchObject({ code: 'EHTTP', status: 404, url: `${url}?X-Amz-Credential=***&X-Amz-Signature=***&token=***&v=2` })
      expect(everything(err)).not.toMatch(/secret/i)
      expect(JSON.stringify(logs)).not.toMatch(/secret/i)
      // The request itself carried them.
      expect(s.registry.requests.some((r) => r.url.includes('sigsecret'))).toBe(true)
    } finally {
      await s.stop()
    }
  })

  it('the command line never prints the password of --registry', async () => {
    const s = await Scenario.start()
    try {
      s.publish('1.1.0')
      const args = ['stage', '--user-data', s.userData, '--native-deps', s.native, '--current-version', '1.0.0']
      const staged = await runCli([...args, '--registry', withUser(s), '--verbose'])
      expect(staged.code).toBe(0)
      expect(staged.stderr).toContain(shown(s))
      const missing = await runCli([...args, '--registry', withUser(s), '--package', 'missing', '--verbose'])
      expect(missing.code).toBe(1)
      expect(missing.stderr).toContain(`${shown(s)}missing`)
      const json = await runCli([...args, '--registry', withUser(s), '--package', 'missing', '--json'])
      expect(JSON.parse(json.stdout).error).toMatchObject({ code: 'EHTTP', url: `${shown(s)}missing` })
      for (const r of [staged, missing, json]) expect(r.stdout + r.stderr).not.toContain('secret')
    } finally {
      await s.stop()
    }
  })
})
