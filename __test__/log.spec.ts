// onLog: what the stager decided and why, delivered like onProgress (a throwing callback loses its
// entry, never the call; a pending entry never keeps the process alive).
import { expect, it } from 'vitest'
import { binding, rejection } from './helpers/binding'
import { LOAD_ADDON, runCli, runScript, stageArgs } from './helpers/cli'
import { Scenario } from './helpers/scenario'

const s = Scenario.perTest()

it('reports the tag, each decision, retries with their reason and delay, and the pointing', async () => {
  s.publish('1.1.0')
  const tarball = s.registry.tarballPath('kanban', '1.1.0')
  s.registry.failFirst(tarball, 1, (res) => {
    res.writeHead(503, { 'retry-after': '0' })
    res.end()
  })
  const entries: any[] = []
  const outcome = await binding.checkAndStageLatestRuntime(s.opts({ retries: 2, onLog: (e: any) => entries.push(e) }))
  expect(outcome).toEqual({ kind: 'staged', version: '1.1.0' })
  await new Promise((r) => setImmediate(r))
  expect(entries[0]).toEqual({
    level: 'info',
    message: 'dist-tag latest of kanban names 1.1.0',
    fields: { tag: 'latest', version: '1.1.0', registry: s.registry.url },
  })
  const retry = entries.find((e) => e.message.startsWith('retrying'))
  expect(retry).toMatchObject({ level: 'warn', fields: { reason: 'EHTTP', attempt: 1, url: `${s.registry.url.replace(/\/$/, '')}${tarball}` } })
  expect(typeof retry.fields.delayMs).toBe('number')
  expect(entries.map((e) => e.message)).toContain('pointed at 1.1.0')
  for (const e of entries) expect(['debug', 'info', 'warn']).toContain(e.level)
})

it('every entry of a call reaches onLog before its promise settles: --verbose prints it before the error, every time', async () => {
  // A tag that names no semver version: the call rejects a moment after its first log entry,
  // the tightest race between the entries' queue and the settlement; the command line prints
  // the error and exits as soon as the promise rejects. The document is cached after the first
  // run, which makes the race tighter still.
  s.publish('1.0.0-not semver')
  for (let i = 0; i < 20; i++) {
    const r = await runCli([...stageArgs(s), '--verbose'])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/^info {2}dist-tag latest of kanban names 1\.0\.0-not semver {2}/m)
    expect(r.stderr.indexOf('dist-tag latest')).toBeLessThan(r.stderr.indexOf('error EINVALID_VERSION'))
  }
})

it('a throwing onLog loses its entries, never the call', async () => {
  s.publish('1.1.0')
  let calls = 0
  const outcome = await binding.checkAndStageLatestRuntime(
    s.opts({
      onLog: () => {
        calls += 1
        throw new Error('log sink broke')
      },
    }),
  )
  expect(outcome).toEqual({ kind: 'staged', version: '1.1.0' })
  await new Promise((r) => setImmediate(r))
  expect(calls).toBeGreaterThan(1)
})

it('onLog must be a function', async () => {
  const err = await rejection(binding.checkAndStageLatestRuntime(s.opts({ onLog: 'yes' })))
  expect(err).toMatchObject({ code: 'EINVALID_OPTION', option: 'onLog' })
})

it('an onLog callback never keeps the process alive', async () => {
  s.publish('1.1.0')
  const opts = JSON.stringify(s.opts())
  const r = await runScript(`${LOAD_ADDON} b.checkAndStageLatestRuntime({ ...${opts}, onLog: () => {} }).then((o) => console.log(o.kind))`)
  expect(r.code).toBe(0)
  expect(r.stdout.trim()).toBe('staged')
})
