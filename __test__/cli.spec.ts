// The command line, driven as a person or a script would (stdout is not a TTY here), and the
// onProgress callback it is built on.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { binding } from './helpers/binding'
import { runtimeTarball } from './helpers/fixtures'
import { Scenario } from './helpers/scenario'

const BIN = path.join(__dirname, '../bin/kanban-runtime-stager.js')

let s: Scenario
beforeEach(async () => {
  s = await Scenario.start()
})
afterEach(async () => {
  await s.stop()
})

function cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('exit', (code) => resolve({ code, stdout, stderr }))
  })
}

const stageArgs = () => [
  'stage',
  '--user-data',
  s.userData,
  '--native-deps',
  s.native,
  '--registry',
  s.registry.url,
  '--current-version',
  '1.0.0',
]

describe('cli', () => {
  it('stage prints each phase on a line and the outcome, exit 0', async () => {
    s.publish('1.1.0')
    const r = await cli(...stageArgs())
    expect(r.code).toBe(0)
    const lines = r.stdout.trim().split('\n')
    expect(lines[0]).toBe('checking kanban@latest ...')
    expect(lines).toContain('resolving')
    expect(lines.some((l) => /^downloading \d+\.\d MiB$/.test(l))).toBe(true)
    expect(lines).toContain('finishing')
    expect(lines[lines.length - 1]).toMatch(
      new RegExp(`^staged 1\\.1\\.0 in \\d+ ms: ${path.join(s.versionsDir, '1.1.0', 'dist', 'cli.js').replace(/[/\\.]/g, '\\$&')}$`),
    )
    expect(binding.readPointer(s.userData)?.version).toBe('1.1.0')
  })

  it('stage --json prints one JSON line and no progress', async () => {
    s.publish('1.1.0')
    const r = await cli(...stageArgs(), '--json')
    expect(r.code).toBe(0)
    const lines = r.stdout.trim().split('\n')
    expect(lines).toHaveLength(1)
    expect(JSON.parse(lines[0])).toMatchObject({ kind: 'staged', version: '1.1.0' })
    const again = await cli(...stageArgs(), '--json')
    expect(JSON.parse(again.stdout)).toMatchObject({ kind: 'already-staged' })
  })

  it('status shows the pointer, versions with sizes, bad versions and the lock', async () => {
    s.publish('1.1.0')
    await cli(...stageArgs())
    const r = await cli('status', '--user-data', s.userData)
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('pointer:  1.1.0')
    expect(r.stdout).toMatch(/\* 1\.1\.0\s+\d+\.\d MiB {2}whole/)
    expect(r.stdout).toContain('bad:      none')
    expect(r.stdout).toContain('lock:     free')
    const json = JSON.parse((await cli('status', '--user-data', s.userData, '--json')).stdout)
    expect(json).toMatchObject({ pointer: { version: '1.1.0' }, badVersions: [], partials: [], locked: false })
    expect(json.versions).toEqual([expect.objectContaining({ version: '1.1.0', whole: true })])
    expect(json.versions[0].bytes).toBeGreaterThan(0)
  })

  it('mark-bad marks the version and reports where the pointer went', async () => {
    s.publish('1.1.0')
    await cli(...stageArgs())
    const r = await cli('mark-bad', '1.1.0', '--user-data', s.userData)
    expect(r.code).toBe(0)
    expect(r.stdout.trim()).toBe('marked 1.1.0 bad; pointer now: none (bundled runtime)')
    expect(binding.isBadVersion(s.userData, '1.1.0')).toBe(true)
    const status = await cli('status', '--user-data', s.userData)
    expect(status.stdout).toContain('bad:      1.1.0')
  })

  it('a failure exits 1 with the error code and a hint', async () => {
    const r = await cli(...stageArgs())
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/^error EHTTP: /m)
    expect(r.stderr).toMatch(/^hint: /m)
  })

  it('bad usage exits 2 with the command help', async () => {
    const missing = await cli('stage')
    expect(missing.code).toBe(2)
    expect(missing.stderr).toContain('--user-data DIR is required')
    expect(missing.stderr).toContain('Usage: kanban-runtime-stager stage')
    const unknown = await cli('frobnicate')
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toContain("unknown command 'frobnicate'")
    const badFlag = await cli('status', '--nope')
    expect(badFlag.code).toBe(2)
    expect((await cli()).code).toBe(2)
  })

  describe('never prints terminal control characters from the registry, a tarball or the disk', () => {
    // ESC and CSI (C1 0x9b) start escape sequences; any C0/C1 control is suspect.
    const RAW_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/
    const expectClean = (r: { stdout: string; stderr: string }) => {
      expect(r.stdout).not.toMatch(RAW_CONTROL)
      expect(r.stderr).not.toMatch(RAW_CONTROL)
    }

    it('a dist-tag naming a version with an escape sequence', async () => {
      for (const version of ['1.0.0\u001b[31m', '1.0.0\u009b31m']) {
        s.registry.publish('kanban', [{ version, tarball: runtimeTarball('1.1.0') }], { latest: version })
        for (const json of [[], ['--json']]) {
          const r = await cli(...stageArgs(), ...json)
          expect(r.code).toBe(1)
          expect(r.stderr).toMatch(/^error EINVALID_VERSION: /m)
          expect(r.stderr).toContain(version.startsWith('1.0.0\u001b') ? '1.0.0\\x1b[31m' : '1.0.0\\u009b31m')
          expectClean(r)
        }
      }
    })

    it('a tarball entry whose name holds an escape sequence', async () => {
      const tarball = runtimeTarball('1.1.0', {
        extra: [{ path: 'package/../\u001b[2J\u009bevil', body: 'x' }],
      })
      s.publish('1.1.0', tarball)
      const r = await cli(...stageArgs())
      expect(r.code).toBe(1)
      expect(r.stderr).toMatch(/^error EUNSAFE_ENTRY: /m)
      expect(r.stderr).toContain('\\x1b[2J\\u009bevil')
      expectClean(r)
    })

    it('status and mark-bad with control characters in folder names and versions', async () => {
      s.publish('1.1.0')
      await cli(...stageArgs())
      fs.mkdirSync(path.join(s.versionsDir, '2.0.0\u001b[31m\u009b.partial'))
      fs.writeFileSync(path.join(s.store, 'bad-versions.json'), JSON.stringify(['1.0.0\u001b[31m', '1.0.1\u009b']))
      for (const json of [[], ['--json']]) {
        const r = await cli('status', '--user-data', s.userData, ...json)
        expect(r.code).toBe(0)
        expectClean(r)
      }
      const json = await cli('status', '--user-data', s.userData, '--json')
      // The JSON still parses back to the exact strings.
      expect(JSON.parse(json.stdout).partials).toEqual(['2.0.0\u001b[31m\u009b.partial'])
      const marked = await cli('mark-bad', '1.1.0\u001b[31m', '--user-data', s.userData)
      expect(marked.code).toBe(1)
      expect(marked.stderr).toMatch(/^error EINVALID_OPTION: /m)
      expectClean(marked)
    })
  })

  it('--help prints each command help, exit 0', async () => {
    const top = await cli('--help')
    expect(top.code).toBe(0)
    for (const c of ['stage', 'status', 'mark-bad']) {
      expect(top.stdout).toContain(c)
      const r = await cli(c, '--help')
      expect(r.code).toBe(0)
      expect(r.stdout).toContain(`Usage: kanban-runtime-stager ${c}`)
    }
  })
})

describe('onProgress', () => {
  it('reports the phases in order and the bytes downloaded', async () => {
    s.publish('1.1.0')
    const events: any[] = []
    const outcome = await binding.checkAndStageLatestRuntime(s.opts({ onProgress: (p: any) => events.push(p) }))
    expect(outcome.kind).toBe('staged')
    await new Promise((r) => setTimeout(r, 50)) // callbacks are queued to the JS thread
    const phases = events.map((e) => e.phase).filter((p, i, a) => a[i - 1] !== p)
    expect(phases).toEqual(['resolving', 'downloading', 'finishing'])
    const size = s.registry.requests.length && (await import('./helpers/fixtures')).runtimeTarball('1.1.0').length
    const lastDownload = events.filter((e) => e.phase === 'downloading').pop()
    expect(lastDownload).toEqual({ phase: 'downloading', downloadedBytes: size, totalBytes: size })
  })

  function runScript(script: string): Promise<{ code: number | null; signal: string | null; stdout: string }> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
      let stdout = ''
      child.stdout.on('data', (d) => (stdout += d))
      // A hang shows as a kill by this timer.
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
      child.on('exit', (code, signal) => {
        clearTimeout(timer)
        resolve({ code, signal, stdout })
      })
    })
  }
  const load = `const b = require(${JSON.stringify(path.join(__dirname, '../index.js'))});`

  it('an onProgress callback never keeps the process alive after the call', async () => {
    s.publish('1.1.0')
    const opts = JSON.stringify(s.opts())
    const r = await runScript(
      `${load} b.checkAndStageLatestRuntime({ ...${opts}, onProgress: () => {} }).then((o) => console.log(o.kind))`,
    )
    expect(r).toMatchObject({ code: 0, signal: null })
    expect(r.stdout.trim()).toBe('staged')
  })

  it('an onProgress callback that throws is dropped: the call stages and the process survives', async () => {
    s.publish('1.1.0')
    const opts = JSON.stringify(s.opts())
    const r = await runScript(
      `${load}
      let calls = 0
      process.on('uncaughtException', (e) => { console.log('uncaught ' + e.message); process.exit(3) })
      b.checkAndStageLatestRuntime({ ...${opts}, onProgress: () => { calls++; throw new Error('progress') } })
        .then((o) => setTimeout(() => console.log(o.kind + ' ' + (calls > 0)), 100))`,
    )
    expect(r).toMatchObject({ code: 0, signal: null })
    expect(r.stdout.trim()).toBe('staged true')
  })

  it('an onProgress callback that throws a non-Error or returns a value is dropped too', async () => {
    s.publish('1.1.0')
    let calls = 0
    const onUncaught = () => {
      throw new Error('an onProgress throw escaped')
    }
    process.on('uncaughtException', onUncaught)
    try {
      const outcome = await binding.checkAndStageLatestRuntime(
        s.opts({
          onProgress: () => {
            calls++
            if (calls % 2) throw Symbol('odd')
            return 42
          },
        }),
      )
      expect(outcome).toEqual({ kind: 'staged', version: '1.1.0' })
      await new Promise((r) => setTimeout(r, 50))
      expect(calls).toBeGreaterThan(1)
    } finally {
      process.off('uncaughtException', onUncaught)
    }
  })

  it('exiting in the middle of a call with onProgress does not crash', async () => {
    s.publish('1.1.0')
    const body = (await import('./helpers/fixtures')).runtimeTarball('1.1.0')
    s.registry.routes.set('/kanban/-/kanban-1.1.0.tgz', (_req, res) => {
      res.writeHead(200, { 'content-length': body.length })
      res.write(body.subarray(0, 100)) // and stalls: the call is mid-download at exit
    })
    const opts = JSON.stringify(s.opts())
    const r = await runScript(
      `${load} b.checkAndStageLatestRuntime({ ...${opts}, onProgress: (p) => { if (p.phase === 'downloading') { console.log('exiting'); process.exit(0) } } })`,
    )
    expect(r).toMatchObject({ code: 0, signal: null })
    expect(r.stdout.trim()).toBe('exiting')
  })
})
