// The command line, driven as a person or a script would (stdout is not a TTY here), and the
// onProgress callback it is built on.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { binding } from './helpers/binding'
import { BIN, LOAD_ADDON, runCli, runScript, stageArgs } from './helpers/cli'
import { runtimeTarball, tempDir } from './helpers/fixtures'
import { attestations, REPOSITORY, trustRoot, WORKFLOW } from './helpers/provenance'
import { Scenario } from './helpers/scenario'

const s = Scenario.perTest()

const cli = (...args: string[]) => runCli(args)
const cliWith = (env: Record<string, string>, ...args: string[]) => runCli(args, env)

/** Publishes `version` and stages it with the command line. */
async function stageByCli(version: string) {
  s.publish(version)
  await cli(...stageArgs(s))
}

describe('cli', () => {
  it('stage prints each phase on a line of stderr and the outcome alone on stdout, exit 0', async () => {
    s.publish('1.1.0')
    const r = await cli(...stageArgs(s))
    expect(r.code).toBe(0)
    const lines = r.stderr.trim().split('\n')
    expect(lines[0]).toBe('checking kanban@latest ...')
    expect(lines).toContain('resolving')
    expect(lines.some((l) => /^downloading \d+\.\d MiB$/.test(l))).toBe(true)
    expect(lines).toContain('finishing')
    expect(r.stdout.trim().split('\n')).toHaveLength(1)
    expect(r.stdout.trim()).toMatch(
      new RegExp(`^staged 1\\.1\\.0 in \\d+ ms: ${path.join(s.versionsDir, '1.1.0', 'dist', 'cli.js').replace(/[/\\.]/g, '\\$&')}$`),
    )
    expect(binding.readPointer(s.userData)?.version).toBe('1.1.0')
  })

  it('stage --json prints one JSON line and no progress', async () => {
    s.publish('1.1.0')
    const r = await cli(...stageArgs(s), '--json')
    expect(r.code).toBe(0)
    const lines = r.stdout.trim().split('\n')
    expect(lines).toHaveLength(1)
    expect(JSON.parse(lines[0])).toMatchObject({ kind: 'staged', version: '1.1.0' })
    const again = await cli(...stageArgs(s), '--json')
    expect(JSON.parse(again.stdout)).toMatchObject({ kind: 'already-staged' })
  })

  it('status shows the pointer, versions with sizes, bad versions and the lock', async () => {
    await stageByCli('1.1.0')
    const r = await cli('status', '--user-data', s.userData)
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('pointer:  1.1.0')
    expect(r.stdout).toMatch(/\* 1\.1\.0\s+\d+\.\d MiB {2}whole {2}pointed/)
    expect(r.stdout).toMatch(/^store: {4}.* \(\d+\.\d MiB\)$/m)
    expect(r.stdout).toContain('bad:      none')
    expect(r.stdout).toContain('lock:     free')
    const json = JSON.parse((await cli('status', '--user-data', s.userData, '--json')).stdout)
    expect(json).toMatchObject({ pointer: { version: '1.1.0' }, badVersions: [], partials: [], locked: false })
    expect(json.versions).toEqual([expect.objectContaining({ version: '1.1.0', whole: true })])
    expect(json.versions[0].bytes).toBeGreaterThan(0)
  })

  it('mark-bad marks the version and reports where the pointer went', async () => {
    await stageByCli('1.1.0')
    const r = await cli('mark-bad', '1.1.0', '--user-data', s.userData)
    expect(r.code).toBe(0)
    expect(r.stdout.trim()).toBe('marked 1.1.0 bad; pointer now: none (bundled runtime)')
    expect(binding.isBadVersion(s.userData, '1.1.0')).toBe(true)
    const status = await cli('status', '--user-data', s.userData)
    expect(status.stdout).toContain('bad:      1.1.0')
  })

  it('a failure exits 1 with the error code and a hint', async () => {
    const r = await cli(...stageArgs(s))
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/^error EHTTP: /m)
    expect(r.stderr).toMatch(/^hint: /m)
  })

  it('stage passes the supply-chain flags through', async () => {
    s.publish('1.1.0')
    const required = await cli(...stageArgs(s), '--require-signatures', '--json')
    expect(required.code).toBe(0)
    expect(JSON.parse(required.stdout)).toMatchObject({ kind: 'up-to-date', refused: { code: 'ESIGNATURE', reason: 'missing' } })
    const human = await cli(...stageArgs(s), '--require-signatures')
    expect(human.stderr).toMatch(/^warning ESIGNATURE: .*1\.1\.0/m)
    expect(human.stdout).toMatch(/^up-to-date /m)
    s.registry.setDoc('kanban', {
      'dist-tags': { latest: '1.1.0' },
      versions: { '1.1.0': { engines: { node: '>=30' }, dist: { tarball: 'http://127.0.0.1:1/x.tgz', integrity: 'sha512-AAAA' } } },
    })
    const old = await cli(...stageArgs(s), '--host-node-version', '22.0.0', '--json')
    expect(JSON.parse(old.stdout).error).toMatchObject({ code: 'EINCOMPATIBLE', guard: 'engines.node', provided: '22.0.0' })
    const keys = path.join(s.userData, 'keys.json')
    fs.writeFileSync(keys, JSON.stringify({ keys: [{ keyid: 'k', key: 'AAAA' }] }))
    const badKeys = await cli(...stageArgs(s), '--registry-keys', keys, '--json')
    expect(JSON.parse(badKeys.stdout).error).toMatchObject({ code: 'EINVALID_OPTION', option: 'registryKeys' })
    const cool = await cli(...stageArgs(s), '--min-release-age', 'soon')
    expect(cool.code).toBe(2)
    expect(cool.stderr).toContain('--min-release-age must be a whole number of minutes')
  })

  describe('provenance flags', () => {
    const flags = ['--provenance-repository', REPOSITORY, '--provenance-workflow', WORKFLOW]
    const trustRootFile = () => {
      const file = path.join(tempDir(), 'trusted_root.json')
      fs.writeFileSync(file, trustRoot)
      return file
    }

    it('stage stages a version whose provenance verifies', async () => {
      const tarball = runtimeTarball('1.1.0')
      s.publish('1.1.0', tarball, { attestations: attestations('kanban', '1.1.0', tarball) })
      const r = await cli(...stageArgs(s), ...flags, '--sigstore-trust-root', trustRootFile(), '--json')
      expect([r.code, JSON.parse(r.stdout)]).toMatchObject([0, { kind: 'staged', version: '1.1.0' }])
    })

    it('a version without provenance is passed over: exit 0, a warning with EPROVENANCE, `refused` in --json', async () => {
      s.publish('1.1.0')
      const r = await cli(...stageArgs(s), ...flags)
      expect(r.code).toBe(0)
      expect(r.stderr).toMatch(/^warning EPROVENANCE: .*1\.1\.0/m)
      expect(r.stdout).toMatch(/^up-to-date /m)
      const json = await cli(...stageArgs(s), ...flags, '--json')
      expect(JSON.parse(json.stdout)).toMatchObject({
        kind: 'up-to-date',
        refused: { code: 'EPROVENANCE', check: 'attestation', version: '1.1.0' },
      })
      expect(s.registry.tarballRequests()).toBe(0)
    })

    it('verify-bundle: 0 verified, 1 refused with the check, 2 bad usage (--staging too)', async () => {
      const dir = tempDir()
      const tarball = runtimeTarball('1.1.0')
      const artifact = path.join(dir, 'kanban.tgz')
      fs.writeFileSync(artifact, tarball)
      const bundle = path.join(dir, 'bundle.sigstore.json')
      const response = JSON.parse(attestations('kanban', '1.1.0', tarball).toString())
      fs.writeFileSync(bundle, JSON.stringify(response.attestations[1].bundle))
      const identity = `https://github.com/${REPOSITORY}/${WORKFLOW}@refs/heads/main`
      const base = ['verify-bundle', '--bundle', bundle, '--certificate-identity', identity]
      const args = [...base, '--certificate-oidc-issuer', 'https://token.actions.githubusercontent.com', '--trusted-root', trustRootFile()]
      expect((await cli(...args, artifact)).code).toBe(0)
      const digest = `sha256:${'ab'.repeat(32)}`
      const refused = await cli(...args, '--json', digest)
      expect([refused.code, JSON.parse(refused.stdout).error]).toMatchObject([1, { code: 'EPROVENANCE', check: 'subject' }])
      const publicGood = await cli(...args.slice(0, -2), artifact)
      expect([publicGood.code, publicGood.stderr]).toMatchObject([1, expect.stringMatching(/^error EPROVENANCE: /m)])
      expect((await cli(...args, '--staging', artifact)).code).toBe(2)
      expect((await cli(...base, artifact)).code).toBe(2)
    })

    it('--provenance-workflow or --sigstore-trust-root without --provenance-repository is bad usage', async () => {
      s.publish('1.1.0')
      const workflowAlone = await cli(...stageArgs(s), '--provenance-workflow', WORKFLOW)
      expect(workflowAlone.code).toBe(2)
      expect(workflowAlone.stderr).toContain('--provenance-workflow needs --provenance-repository')
      const rootAlone = await cli(...stageArgs(s), '--sigstore-trust-root', trustRootFile())
      expect(rootAlone.code).toBe(2)
      expect(s.registry.requests).toEqual([])
    })
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
    // ESC and CSI (C1 0x9b) start escape sequences; any C0/C1 control is suspect, and so is a
    // Unicode bidirectional control, which reorders what follows it on screen.
    const RAW_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/
    // Every bidirectional control: ALM, LRM, RLM, the embeddings and overrides, the isolates.
    const BIDI = '\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069'
    const BIDI_ESCAPED = '\\u061c\\u200e\\u200f\\u202a\\u202b\\u202c\\u202d\\u202e\\u2066\\u2067\\u2068\\u2069'
    const expectClean = (r: { stdout: string; stderr: string }) => {
      expect(r.stdout).not.toMatch(RAW_CONTROL)
      expect(r.stderr).not.toMatch(RAW_CONTROL)
    }

    it('a dist-tag naming a version with an escape sequence', async () => {
      for (const version of ['1.0.0\u001b[31m', '1.0.0\u009b31m']) {
        s.publish(version, runtimeTarball('1.1.0'))
        const r = await cli(...stageArgs(s))
        expect(r.code).toBe(1)
        expect(r.stderr).toMatch(/^error EINVALID_VERSION: /m)
        expect(r.stderr).toContain(version.startsWith('1.0.0\u001b') ? '1.0.0\\x1b[31m' : '1.0.0\\u009b31m')
        expectClean(r)
        // As JSON, escaped on the wire and exact once parsed.
        const j = await cli(...stageArgs(s), '--json')
        expect(j.code).toBe(1)
        expect(JSON.parse(j.stdout).error).toMatchObject({ code: 'EINVALID_VERSION', version })
        expectClean(j)
      }
    })

    it('a tarball entry whose name holds an escape sequence', async () => {
      const tarball = runtimeTarball('1.1.0', {
        extra: [{ path: 'package/../\u001b[2J\u009bevil', body: 'x' }],
      })
      s.publish('1.1.0', tarball)
      const r = await cli(...stageArgs(s))
      expect(r.code).toBe(1)
      expect(r.stderr).toMatch(/^error EUNSAFE_ENTRY: /m)
      expect(r.stderr).toContain('\\x1b[2J\\u009bevil')
      expectClean(r)
    })

    it('bidirectional controls in a version from the registry: the error, --verbose and --json', async () => {
      const version = `1.0.0${BIDI}txt`
      s.publish(version, runtimeTarball('1.1.0'))
      for (const flags of [[], ['--verbose']]) {
        const r = await cli(...stageArgs(s), ...flags)
        expect(r.code).toBe(1)
        expect(r.stderr).toMatch(/^error EINVALID_VERSION: /m)
        expect(r.stderr).toContain(`1.0.0${BIDI_ESCAPED}txt`)
        expectClean(r)
      }
      // --verbose printed the stager's log of the dist-tag, escaped as well.
      expect((await cli(...stageArgs(s), '--verbose')).stderr).toMatch(/^info {2}dist-tag latest of kanban names 1\.0\.0\\u061c/m)
      const j = await cli(...stageArgs(s), '--json')
      expect(j.code).toBe(1)
      expect(JSON.parse(j.stdout).error).toMatchObject({ code: 'EINVALID_VERSION', version })
      expectClean(j)
    })

    it('bidirectional controls in folder names, the bad list and flags: status, doctor, mark-bad, usage errors', async () => {
      await stageByCli('1.1.0')
      const partial = `2.0.0${BIDI}.partial`
      fs.mkdirSync(path.join(s.versionsDir, partial))
      // Not a version: the addon leaves it out of the list, and nothing prints it raw.
      fs.writeFileSync(path.join(s.store, 'bad-versions.json'), JSON.stringify([`1.0.0${BIDI}`, '1.0.1']))
      for (const command of ['status', 'doctor']) {
        const r = await cli(command, '--user-data', s.userData)
        expect(r.stdout).toContain(`2.0.0${BIDI_ESCAPED}.partial`)
        expectClean(r)
        const j = await cli(command, '--user-data', s.userData, '--json')
        expectClean(j)
        JSON.parse(j.stdout)
      }
      expect(JSON.parse((await cli('status', '--user-data', s.userData, '--json')).stdout)).toMatchObject({
        partials: [partial],
        badVersions: ['1.0.1'],
      })
      const marked = await cli('mark-bad', `1.1.0${BIDI}`, '--user-data', s.userData)
      expect(marked.code).toBe(1)
      expect(marked.stderr).toMatch(/^error EINVALID_OPTION: /m)
      expectClean(marked)
      // A bad flag's name is the user's own text, and is escaped too.
      const flag = await cli('status', `--x${BIDI}`)
      expect(flag.code).toBe(2)
      expectClean(flag)
    })

    it('why a launch failed, in the app\'s words: status shows it escaped, --json exact', async () => {
      await stageByCli('1.1.0')
      const ran = binding.beginLaunch(s.userData, { bundledVersion: '1.0.0' }).cliEntry
      const words = `exit code 1\u001b[2J\u009b ${BIDI}\nnext line`
      binding.reportLaunchFailed(s.userData, ran, words)
      const r = await cli('status', '--user-data', s.userData)
      expect(r.code).toBe(0)
      expect(r.stdout).toMatch(/^ {2}1\.1\.0: the app reported its launch failed \(exit code 1\\x1b\[2J\\u009b /m)
      expect(r.stdout).toContain(BIDI_ESCAPED)
      expect(r.stdout).toMatch(/\\x0anext line\), \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/m)
      expectClean(r)
      const j = await cli('status', '--user-data', s.userData, '--json')
      expectClean(j)
      expect(JSON.parse(j.stdout).launchFailures).toEqual([{ version: '1.1.0', reason: 'launch-failed', detail: words, at: expect.any(Number) }])
    })

    it('status and mark-bad with control characters in folder names and versions', async () => {
      await stageByCli('1.1.0')
      // Windows refuses C0 controls (ESC among them) in a name; C1's CSI, which starts the same
      // escape sequences on a terminal, it allows.
      const folder = process.platform === 'win32' ? '2.0.0\u009b31m\u009b.partial' : '2.0.0\u001b[31m\u009b.partial'
      fs.mkdirSync(path.join(s.versionsDir, folder))
      fs.writeFileSync(path.join(s.store, 'bad-versions.json'), JSON.stringify(['1.0.0\u001b[31m', '1.0.1\u009b']))
      for (const json of [[], ['--json']]) {
        const r = await cli('status', '--user-data', s.userData, ...json)
        expect(r.code).toBe(0)
        expectClean(r)
      }
      const json = await cli('status', '--user-data', s.userData, '--json')
      // The JSON still parses back to the exact strings.
      expect(JSON.parse(json.stdout).partials).toEqual([folder])
      const marked = await cli('mark-bad', '1.1.0\u001b[31m', '--user-data', s.userData)
      expect(marked.code).toBe(1)
      expect(marked.stderr).toMatch(/^error EINVALID_OPTION: /m)
      expectClean(marked)
    })
  })

  it('a numeric flag out of the range the addon takes, or not in decimal digits, is bad usage: exit 2, nothing asked', async () => {
    s.publish('1.1.0')
    for (const [flag, value] of [
      ['--timeout-ms', '1e12'],
      ['--timeout-ms', '86400001'],
      ['--timeout-ms', '0'],
      ['--timeout-ms', '1.5'],
      ['--timeout-ms', '0x10'],
      ['--timeout-ms', ''],
      ['--timeout-ms', '99999999999999999999'],
      ['--min-release-age', '527041'],
      ['--min-release-age', '1e3'],
      ['--max-bytes-per-second', '0'],
      ['--max-bytes-per-second', '9007199254740992'],
    ]) {
      const r = await cli(...stageArgs(s), `${flag}=${value}`)
      expect([flag, value, r.code]).toEqual([flag, value, 2])
      expect(r.stderr).toContain(`${flag} must be a whole number`)
      expect(r.stderr).toContain('Usage: kanban-runtime-stager stage')
    }
    const negative = await cli(...stageArgs(s), '--timeout-ms=-5')
    expect(negative.code).toBe(2)
    expect(s.registry.requests).toEqual([])
    // The largest values the addon takes pass.
    const edge = await cli(
      ...stageArgs(s),
      '--timeout-ms',
      '86400000',
      '--min-release-age',
      '0',
      '--max-bytes-per-second',
      '9007199254740991',
      '--json',
    )
    expect([edge.code, JSON.parse(edge.stdout)]).toMatchObject([0, { kind: 'staged', version: '1.1.0' }])
  })

  // FIFOs and /dev/zero are POSIX files; the oversize files have a test of their own below.
  it.skipIf(process.platform === 'win32')(
    'doctor reads no store file raw: a FIFO, a link to /dev/zero and an oversize file are problems, reported promptly',
    async () => {
      await stageByCli('1.1.0')
      const pointer = path.join(s.store, 'current.json')
      fs.rmSync(pointer)
      execFileSync('mkfifo', [pointer])
      fs.symlinkSync('/dev/zero', path.join(s.store, 'launches.json'))
      fs.writeFileSync(path.join(s.store, 'bad-versions.json'), `[${'"1.0.0",'.repeat(150_000)}"1.0.1"]`)
      // A run still going after 10 s is killed: a hang shows as code null.
      const doctor = (...flags: string[]) => runCli(['doctor', '--user-data', s.userData, ...flags], {}, 10_000)
      const r = await doctor('--json')
      expect(r.code).toBe(1)
      expect(JSON.parse(r.stdout).problems.map((p: any) => p.problem)).toEqual([
        'current.json is a FIFO, not a regular file, so it is not read',
        expect.stringMatching(/^bad-versions\.json is larger than 1 MiB \(\d+ bytes\), so no version counts as bad$/),
        'launches.json is a symbolic link, not a regular file, so no launch is counted or confirmed',
      ])
      const human = await doctor()
      expect(human.code).toBe(1)
      expect(human.stdout).toMatch(/^problem: current\.json is a FIFO/m)
      // A pointer over 16 KiB, and a link to /dev/zero as the pointer.
      fs.rmSync(pointer)
      fs.writeFileSync(pointer, JSON.stringify({ version: '1.1.0', cliEntry: binding.cliEntryFor(s.userData, '1.1.0'), pad: 'x'.repeat(17 * 1024) }))
      const big = await doctor('--json')
      expect(big.code).toBe(1)
      expect(JSON.parse(big.stdout).problems[0].problem).toMatch(/^current\.json is larger than 16 KiB/)
      fs.rmSync(pointer)
      fs.symlinkSync('/dev/zero', pointer)
      const zero = await doctor('--json')
      expect(zero.code).toBe(1)
      expect(JSON.parse(zero.stdout).problems[0].problem).toBe('current.json is a symbolic link, not a regular file, so it is not read')
      // status reads them through the addon, which refuses them alike.
      const st = await runCli(['status', '--user-data', s.userData, '--json'], {}, 10_000)
      expect(st.code).toBe(0)
      expect(JSON.parse(st.stdout).pointer).toBeNull()
    },
  )

  it('status and doctor report an entry of the wrong type at a store name with its fix; after a stage run, what was moved aside is a note', async () => {
    await stageByCli('1.1.0')
    fs.rmSync(s.stagingDir, { recursive: true, force: true })
    fs.writeFileSync(s.stagingDir, 'not a folder')
    fs.mkdirSync(path.join(s.store, 'store.lock.d'))
    fs.rmSync(path.join(s.store, 'store.lock'))
    fs.renameSync(path.join(s.store, 'store.lock.d'), path.join(s.store, 'store.lock'))
    fs.rmSync(path.join(s.store, 'current.json'))
    fs.mkdirSync(path.join(s.store, 'current.json'))
    const r = await cli('doctor', '--user-data', s.userData, '--json')
    expect(r.code).toBe(1)
    const { problems, notes } = JSON.parse(r.stdout)
    const movesAside = (name: string) => expect.stringContaining(`run stage (or start the app: its cleanupPartials does it): it moves ${name} aside to ${name}.misplaced-<pid>-<n>`)
    expect(problems).toEqual([
      { problem: 'current.json is a folder, not a regular file, so it is not read', fix: movesAside('current.json') },
      {
        problem: 'store.lock is a folder where the store keeps a file, so nothing can change the store: no update, no launch recorded, no version marked bad',
        fix: movesAside('store.lock'),
      },
      { problem: 'staging is a regular file where the store keeps a folder, so no update can be staged', fix: movesAside('staging') },
    ])
    expect(notes).toEqual([])
    const st = await cli('status', '--user-data', s.userData)
    expect(st.stdout).toMatch(
      /^misplaced: current\.json \(a folder where a file belongs\), store\.lock \(a folder where a file belongs\), staging \(a regular file where a folder belongs\) \(moved aside by the next stage run\)$/m,
    )

    s.publish('1.2.0')
    const staged = await cli(...stageArgs(s), '--json')
    expect([staged.code, JSON.parse(staged.stdout)]).toMatchObject([0, { kind: 'staged', version: '1.2.0' }])
    const after = await cli('doctor', '--user-data', s.userData, '--json')
    expect(after.code).toBe(0)
    const report = JSON.parse(after.stdout)
    expect(report.problems).toEqual([])
    expect(report.notes).toEqual(
      ['current.json', 'staging', 'store.lock'].map((name) =>
        expect.stringMatching(new RegExp(`^${name.replace('.', '\\.')}\\.misplaced-\\d+-\\d+ was moved aside from a name the store owns, where it had the wrong type: look at it, then delete it$`)),
      ),
    )
    expect(fs.readFileSync(path.join(s.store, fs.readdirSync(s.store).find((n) => n.startsWith('staging.misplaced-'))!), 'utf8')).toBe('not a folder')
    expect((await cli('status', '--user-data', s.userData)).stdout).toMatch(/^moved aside: current\.json\.misplaced-\d+-\d+, staging\.misplaced-\d+-\d+, store\.lock\.misplaced-\d+-\d+ \(kept: delete once looked at\)$/m)
  })

  it('doctor reads no store file raw: a folder for current.json and oversize files are problems, reported promptly', async () => {
    await stageByCli('1.1.0')
    const pointer = path.join(s.store, 'current.json')
    fs.rmSync(pointer)
    fs.mkdirSync(pointer)
    fs.writeFileSync(path.join(s.store, 'bad-versions.json'), `[${'"1.0.0",'.repeat(150_000)}"1.0.1"]`)
    // A run still going after 10 s is killed: a hang shows as code null.
    const doctor = (...flags: string[]) => runCli(['doctor', '--user-data', s.userData, ...flags], {}, 10_000)
    const r = await doctor('--json')
    expect(r.code).toBe(1)
    expect(JSON.parse(r.stdout).problems.map((p: any) => p.problem)).toEqual([
      'current.json is a folder, not a regular file, so it is not read',
      expect.stringMatching(/^bad-versions\.json is larger than 1 MiB \(\d+ bytes\), so no version counts as bad$/),
    ])
    fs.rmSync(pointer, { recursive: true })
    fs.writeFileSync(pointer, JSON.stringify({ version: '1.1.0', cliEntry: binding.cliEntryFor(s.userData, '1.1.0'), pad: 'x'.repeat(17 * 1024) }))
    const big = await doctor('--json')
    expect(big.code).toBe(1)
    expect(JSON.parse(big.stdout).problems[0].problem).toMatch(/^current\.json is larger than 16 KiB/)
    const st = await runCli(['status', '--user-data', s.userData, '--json'], {}, 10_000)
    expect(st.code).toBe(0)
    expect(JSON.parse(st.stdout).pointer).toBeNull()
  })

  it("status and doctor print the addon's findings, and no file in the store is touched by the command line's own JavaScript", async () => {
    await stageByCli('1.1.0')
    fs.writeFileSync(path.join(s.store, 'current.json'), '{ not json')
    fs.writeFileSync(path.join(s.store, 'launches.json'), `{"pad":"${'x'.repeat(64 * 1024)}"}`)
    fs.mkdirSync(path.join(s.versionsDir, '1.2.0.partial'))
    // Every call of node:fs in the command line's process is recorded with its path: the addon's
    // own reads are native and never pass through it.
    const dir = tempDir()
    const hook = path.join(dir, 'record-fs.cjs')
    const log = path.join(dir, 'fs.log')
    fs.writeFileSync(
      hook,
      `const fs = require('node:fs'); const seen = []; const write = fs.writeFileSync
      for (const api of [fs, fs.promises]) for (const [name, f] of Object.entries(api)) {
        if (typeof f !== 'function' || /^[A-Z]/.test(name) || name === 'watch') continue
        api[name] = function (...args) { if (typeof args[0] === 'string' || args[0] instanceof URL) seen.push(name + ' ' + String(args[0])); return f.apply(this, args) }
      }
      process.on('exit', () => write(${JSON.stringify(log)}, JSON.stringify(seen)))`,
    )
    const recorded = (...args: string[]) => runCli(args, { NODE_OPTIONS: `--require ${hook}` })
    for (const command of ['status', 'doctor']) {
      for (const json of [[], ['--json']]) {
        const r = await recorded(command, '--user-data', s.userData, ...json)
        expect([command, ...json, r.code]).toEqual([command, ...json, command === 'doctor' ? 1 : 0])
        const touched = (JSON.parse(fs.readFileSync(log, 'utf8')) as string[]).filter((call) => call.includes(s.store))
        expect([command, ...json, touched]).toEqual([command, ...json, []])
      }
    }
    const d = await binding.diagnoseStore(s.userData)
    expect(d.problems.map((p) => p.kind)).toEqual(['pointer-invalid', 'partials', 'launch-record-refused'])
    const doctor = await cli('doctor', '--user-data', s.userData, '--json')
    expect(JSON.parse(doctor.stdout)).toEqual({ ok: false, problems: d.problems.map(({ problem, fix }) => ({ problem, fix })), notes: [] })
    const human = (await cli('doctor', '--user-data', s.userData)).stdout
    for (const p of d.problems) expect(human).toContain(`problem: ${p.problem}\n  fix: ${p.fix}\n`)
    const status = await cli('status', '--user-data', s.userData, '--json', '--current-version', '1.1.0')
    expect(JSON.parse(status.stdout)).toEqual(await binding.readStoreStatus(s.userData, { currentVersion: '1.1.0' }))
  })

  it('doctor reports a launch record the addon cannot read', async () => {
    await stageByCli('1.1.0')
    for (const text of ['not json', '[]', '{"attempts":{"1.1.0":"two"}}', '{"confirmed":"1.1.0"}']) {
      fs.writeFileSync(path.join(s.store, 'launches.json'), text)
      const r = await cli('doctor', '--user-data', s.userData, '--json')
      expect([text, r.code]).toEqual([text, 1])
      expect(JSON.parse(r.stdout).problems).toEqual([
        { problem: 'launches.json is unreadable, so no launch is counted or confirmed', fix: expect.stringContaining('delete it') },
      ])
    }
    fs.writeFileSync(path.join(s.store, 'launches.json'), '{"attempts":{"1.1.0":1},"confirmed":[]}')
    expect((await cli('doctor', '--user-data', s.userData)).code).toBe(0)
  })

  it('--help and help <command> print each command help, exit 0', async () => {
    const top = await cli('--help')
    expect(top.code).toBe(0)
    for (const c of ['stage', 'status', 'prune', 'doctor', 'mark-bad', 'confirm']) {
      expect(top.stdout).toContain(c)
      for (const args of [[c, '--help'], ['help', c], [c, '-h']]) {
        const r = await cli(...args)
        expect(r.code).toBe(0)
        expect(r.stdout).toContain(`Usage: kanban-runtime-stager ${c}`)
      }
    }
    expect((await cli('help')).stdout).toContain('Commands:')
    expect((await cli('help', 'frobnicate')).code).toBe(2)
  })

  it('--version and -v print the package version', async () => {
    const { version } = JSON.parse(fs.readFileSync(path.join(__dirname, '../package.json'), 'utf8'))
    for (const flag of ['--version', '-v']) {
      const r = await cli(flag)
      expect(r.code).toBe(0)
      expect(r.stdout.trim()).toBe(version)
    }
  })

  it('extra positional arguments are bad usage, exit 2', async () => {
    for (const args of [
      ['stage', 'extra', '--user-data', s.userData],
      ['status', 'extra', '--user-data', s.userData],
      ['prune', 'a', '--user-data', s.userData],
      ['doctor', 'a', '--user-data', s.userData],
      ['mark-bad', '1.0.0', '2.0.0', '--user-data', s.userData],
    ]) {
      const r = await cli(...args)
      expect(r.code).toBe(2)
      expect(r.stderr).toMatch(/unexpected argument '(extra|a|2\.0\.0)'/)
    }
  })

  it('--json prints a failure as one JSON line on stdout with its code and fields, exit 1', async () => {
    const r = await cli(...stageArgs(s), '--json')
    expect(r.code).toBe(1)
    const lines = r.stdout.trim().split('\n')
    expect(lines).toHaveLength(1)
    const { error } = JSON.parse(lines[0])
    expect(error).toMatchObject({ code: 'EHTTP', status: 404, url: `${s.registry.url}kanban` })
    expect(typeof error.message).toBe('string')
    expect(r.stderr).toBe('')
  })

  it('--verbose and DEBUG=kanban-runtime-stager print what the stager decided on stderr', async () => {
    s.publish('1.1.0')
    const quiet = await cli(...stageArgs(s))
    expect(quiet.stderr).not.toContain('staging 1.1.0')
    fs.rmSync(s.userData, { recursive: true })
    const r = await cli(...stageArgs(s), '--verbose')
    expect(r.code).toBe(0)
    expect(r.stderr).toMatch(/^info  dist-tag latest of kanban names 1\.1\.0 .*version=1\.1\.0/m)
    expect(r.stderr).toMatch(/^info  staging 1\.1\.0/m)
    expect(r.stderr).toMatch(/^info  pointed at 1\.1\.0/m)
    expect(r.stdout).not.toContain('info')
    const debug = await cliWith({ DEBUG: 'kanban-runtime-stager' }, ...stageArgs(s), '--current-version', '1.1.0')
    expect(debug.stderr).toMatch(/^info  up to date: 1\.1\.0 is not newer than the running 1\.1\.0/m)
  })

  it('status says why each version is kept; prune removes the rest and reports the space freed', async () => {
    for (const v of ['1.1.0', '1.2.0']) await stageByCli(v)
    // An older whole version the app no longer needs, and a leftover of an interrupted run.
    fs.cpSync(path.join(s.versionsDir, '1.1.0'), path.join(s.versionsDir, '1.0.5'), { recursive: true })
    fs.writeFileSync(path.join(s.versionsDir, '1.0.5', '.kanban-runtime-complete.json'), JSON.stringify({ version: '1.0.5', integrity: 'x', files: 1, bytes: 1 }))
    fs.mkdirSync(path.join(s.versionsDir, '1.3.0.partial'))
    const st = await cli('status', '--user-data', s.userData, '--current-version', '1.0.5')
    expect(st.stdout).toMatch(/\* 1\.2\.0 .*whole {2}pointed$/m)
    expect(st.stdout).toMatch(/ {3}1\.1\.0 .*whole {2}fallback$/m)
    expect(st.stdout).toMatch(/ {3}1\.0\.5 .*whole {2}running$/m)
    const st2 = JSON.parse((await cli('status', '--user-data', s.userData, '--json')).stdout)
    expect(st2.versions.map((v: any) => [v.version, v.keptBecause])).toEqual([
      ['1.0.5', []],
      ['1.1.0', ['fallback']],
      ['1.2.0', ['pointed']],
    ])
    const pruned = await cli('prune', '--user-data', s.userData, '--json')
    expect(pruned.code).toBe(0)
    const result = JSON.parse(pruned.stdout)
    expect(result.removed.sort()).toEqual(['1.0.5', '1.3.0.partial'])
    expect(result.freedBytes).toBeGreaterThan(0)
    expect(fs.readdirSync(s.versionsDir).sort()).toEqual(['1.1.0', '1.2.0'])
    const again = await cli('prune', '--user-data', s.userData)
    expect(again.stdout.trim()).toBe('nothing to prune')
  })

  it('status and doctor show launch health; confirm records a healthy launch by version or cliEntry', async () => {
    await stageByCli('1.1.0')
    // The app started 1.1.0 once and it never said it came up.
    expect(binding.beginLaunch(s.userData, { bundledVersion: '1.0.0' })).toMatchObject({ version: '1.1.0', attempt: 1 })
    const trial = await cli('status', '--user-data', s.userData)
    expect(trial.stdout).toMatch(/\* 1\.1\.0 .*whole {2}pointed; 1 launch never confirmed$/m)
    const trialJson = JSON.parse((await cli('status', '--user-data', s.userData, '--json')).stdout)
    expect(trialJson.versions[0]).toMatchObject({ version: '1.1.0', attempts: 1, confirmed: false, keptBecause: ['pointed'] })
    const note = await cli('doctor', '--user-data', s.userData, '--json')
    expect(note.code).toBe(0)
    const report = JSON.parse(note.stdout)
    expect(report).toMatchObject({ ok: true, problems: [] })
    expect(report.notes).toHaveLength(1)
    expect(report.notes[0]).toMatch(/^1\.1\.0 was launched 1 time and never confirmed healthy/)
    expect((await cli('doctor', '--user-data', s.userData)).stdout).toMatch(/^note: 1\.1\.0 was launched 1 time/m)

    const byVersion = await cli('confirm', '1.1.0', '--user-data', s.userData)
    expect(byVersion.code).toBe(0)
    expect(byVersion.stdout.trim()).toBe('confirmed 1.1.0 healthy')
    const healthy = JSON.parse((await cli('status', '--user-data', s.userData, '--json')).stdout)
    expect(healthy.versions[0]).toMatchObject({ attempts: 0, confirmed: true, keptBecause: ['pointed', 'confirmed'] })
    expect((await cli('status', '--user-data', s.userData)).stdout).toMatch(/pointed, confirmed; healthy \(a launch was confirmed\)$/m)
    expect(JSON.parse((await cli('doctor', '--user-data', s.userData, '--json')).stdout)).toEqual({ ok: true, problems: [], notes: [] })
    // A confirmed version is no trial: the next launch is not counted against it.
    expect(binding.beginLaunch(s.userData, { bundledVersion: '1.0.0' })).toMatchObject({ version: '1.1.0', attempt: 0 })

    const entry = binding.cliEntryFor(s.userData, '1.1.0')
    const byEntry = await cli('confirm', entry, '--user-data', s.userData, '--json')
    expect(byEntry.code).toBe(0)
    expect(JSON.parse(byEntry.stdout)).toEqual({ confirmed: '1.1.0' })
    const missing = await cli('confirm', '9.9.9', '--user-data', s.userData, '--json')
    expect(missing.code).toBe(1)
    expect(JSON.parse(missing.stdout)).toEqual({ confirmed: null })
    expect((await cli('confirm', '--user-data', s.userData)).code).toBe(2)
    const notSemver = await cli('confirm', 'latest', '--user-data', s.userData)
    expect(notSemver.code).toBe(1)
    expect(notSemver.stderr).toMatch(/^error EINVALID_OPTION: /m)
  })

  it('stage and status show the rollout bucket, a pending release and a withdrawal; doctor stays quiet about them', async () => {
    await stageByCli('1.1.0')
    const hourAgo = new Date(Date.now() - 3_600_000)
    const serve = (deprecated?: string) =>
      s.registry.publish(
        'kanban',
        [
          { version: '1.1.0', tarball: runtimeTarball('1.1.0'), time: '2020-01-01T00:00:00.000Z', deprecated },
          { version: '1.2.0', tarball: runtimeTarball('1.2.0'), time: hourAgo.toISOString() },
        ],
        { latest: '1.2.0' },
      )
    serve()
    const eligibleAt = new Date(hourAgo.getTime() + 24 * 3_600_000).toISOString()
    const held = await cli(...stageArgs(s), '--rollout-hours', '48', '--rollout-bucket', '0.5')
    expect(held.code).toBe(0)
    expect(held.stdout).toMatch(/^already-staged: /m)
    expect(held.stdout).toContain(`pending:  1.2.0, eligible for this store at ${eligibleAt}`)
    let status = await cli('status', '--user-data', s.userData)
    expect(status.stdout).toContain('rollout:  no bucket yet')
    expect(status.stdout).toContain(`pending:  1.2.0, eligible for this store at ${eligibleAt}`)

    // The store's own bucket, once a check with a rollout drew it.
    await cli(...stageArgs(s), '--rollout-hours', '48')
    const bucket = (await binding.readStoreStatus(s.userData)).rolloutBucket as number
    status = await cli('status', '--user-data', s.userData)
    expect(status.stdout).toContain(`rollout:  bucket ${bucket.toFixed(4)} (a release reaches this store ${(bucket * 100).toFixed(1)} % into a rollout)`)

    // The publisher deprecates 1.1.0, the only staged version: back to the bundled runtime.
    serve('breaks login')
    const withdrawn = await cli(...stageArgs(s), '--current-version', '1.1.0', '--honor-deprecation', '--rollout-hours', '48', '--rollout-bucket', '0.5')
    expect(withdrawn.code).toBe(0)
    expect(withdrawn.stdout.split('\n')[0]).toBe('withdrawn 1.1.0: deprecated by its publisher (breaks login); the pointer now names the bundled runtime')
    expect(withdrawn.stdout).toMatch(/^up-to-date /m)
    status = await cli('status', '--user-data', s.userData)
    expect(status.stdout).toContain('withdrawn 1.1.0: deprecated by its publisher (breaks login); the pointer now names the bundled runtime')
    const json = JSON.parse((await cli('status', '--user-data', s.userData, '--json')).stdout)
    expect(json).toMatchObject({
      rolloutBucket: bucket,
      pending: { version: '1.2.0', eligibleAt },
      withdrawn: { version: '1.1.0', reason: 'breaks login', pointer: null },
    })
    const doctor = await cli('doctor', '--user-data', s.userData)
    expect(doctor.code).toBe(0)
    expect(doctor.stdout.trim()).toBe('the store is healthy')
    const doctorJson = JSON.parse((await cli('doctor', '--user-data', s.userData, '--json')).stdout)
    expect(JSON.stringify(doctorJson)).not.toMatch(/rollout|pending|withdrawn|1\.2\.0/)

    for (const [flag, value] of [
      ['--rollout-hours', '8761'],
      ['--rollout-bucket', '1'],
      ['--rollout-bucket', '1e-3'],
      ['--rollout-bucket', '-0.5'],
    ]) {
      const r = await cli(...stageArgs(s), `${flag}=${value}`)
      expect([flag, value, r.code]).toEqual([flag, value, 2])
      expect(r.stderr).toContain(`${flag} must be`)
    }
  })

  it('doctor passes a healthy store and names each problem of a damaged one, exit 1', async () => {
    await stageByCli('1.1.0')
    const ok = await cli('doctor', '--user-data', s.userData)
    expect(ok.code).toBe(0)
    expect(ok.stdout.trim()).toBe('the store is healthy')
    fs.rmSync(path.join(s.versionsDir, '1.1.0', 'node_modules'), { recursive: true })
    fs.mkdirSync(path.join(s.versionsDir, '1.2.0.partial'))
    fs.writeFileSync(path.join(s.store, 'bad-versions.json'), 'not json')
    const bad = await cli('doctor', '--user-data', s.userData, '--json')
    expect(bad.code).toBe(1)
    const report = JSON.parse(bad.stdout)
    expect(report.ok).toBe(false)
    expect(report.problems.map((p: any) => p.problem)).toEqual([
      'the pointed version 1.1.0 is not whole',
      'versions/1.1.0 is damaged (not whole)',
      'leftovers of interrupted runs: 1.2.0.partial',
      'bad-versions.json is unreadable, so no version counts as bad',
    ])
    for (const p of report.problems) expect(p.fix.length).toBeGreaterThan(0)
    const human = await cli('doctor', '--user-data', s.userData)
    expect(human.code).toBe(1)
    expect(human.stdout).toMatch(/^problem: the pointed version 1\.1\.0 is not whole\n {2}fix: run stage/m)
  })

  // Windows' console host re-encodes a child's escape sequences, so the bytes are checked on POSIX;
  // node-pty's Linux prebuilds are for glibc, so not on musl either.
  const musl = process.platform === 'linux' && !(process.report.getReport() as any).header.glibcVersionRuntime
  it.skipIf(process.platform === 'win32' || musl)('colours the outcome on a terminal, and not with NO_COLOR', async () => {
    s.publish('1.1.0')
    const pty = await import('node-pty')
    const run = (env: Record<string, string>) =>
      new Promise<string>((resolve) => {
        let out = ''
        const term = pty.spawn(process.execPath, [BIN, ...stageArgs(s)], { env: { ...process.env, ...env } as any, cols: 200 })
        term.onData((d) => (out += d))
        term.onExit(() => resolve(out))
      })
    const coloured = await run({})
    expect(coloured).toContain('\x1b[32m')
    expect(coloured).toMatch(/already-staged|staged 1\.1\.0/)
    const plain = await run({ NO_COLOR: '1' })
    expect(plain).toContain('already-staged')
    expect(plain).not.toContain('\x1b[32m')
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

  it('an onProgress callback never keeps the process alive after the call', async () => {
    s.publish('1.1.0')
    const opts = JSON.stringify(s.opts())
    const r = await runScript(
      `${LOAD_ADDON} b.checkAndStageLatestRuntime({ ...${opts}, onProgress: () => {} }).then((o) => console.log(o.kind))`,
    )
    expect(r).toMatchObject({ code: 0, signal: null })
    expect(r.stdout.trim()).toBe('staged')
  })

  it('an onProgress callback that throws is dropped: the call stages and the process survives', async () => {
    s.publish('1.1.0')
    const opts = JSON.stringify(s.opts())
    const r = await runScript(
      `${LOAD_ADDON}
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
    // The body stalls after 100 bytes: the call is mid-download at exit.
    s.registry.hold('/kanban/-/kanban-1.1.0.tgz', body, { head: 100 })
    const opts = JSON.stringify(s.opts())
    const r = await runScript(
      `${LOAD_ADDON} b.checkAndStageLatestRuntime({ ...${opts}, onProgress: (p) => { if (p.phase === 'downloading') { console.log('exiting'); process.exit(0) } } })`,
    )
    expect(r).toMatchObject({ code: 0, signal: null })
    expect(r.stdout.trim()).toBe('exiting')
  })
})
