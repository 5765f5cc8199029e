// Supply-chain protection through the binding: the release-age cool-down, the registry's
// signatures and the compatibility guard, against a loopback registry and keys made here.
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { sri } from '../scripts/testkit/registry.mjs'
import { tgz } from '../scripts/testkit/tar.mjs'
import { binding, rejection } from './helpers/binding'
import { cliBody, runtimeTarball, snapshot } from './helpers/fixtures'
import { Scenario } from './helpers/scenario'

const { checkAndStageLatestRuntime } = binding
const MINUTE = 60_000
const KEY_TYPE = 'ecdsa-sha2-nistp256'

const s = Scenario.perTest()

function keyPair() {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' })
}

/** A key as the registry's `/-/npm/v1/keys` lists it. */
function registryKey(publicKey: KeyObject, keyid: string, expires: string | null = null) {
  const key = publicKey.export({ type: 'spki', format: 'der' }).toString('base64')
  return { keyid, keytype: KEY_TYPE, scheme: KEY_TYPE, key, expires }
}

interface Version {
  version: string
  tarball?: Buffer
  /** Minutes since publication; negative is in the future; absent leaves `time` out. */
  ageMinutes?: number
  deprecated?: string
  /** Extra manifest fields (`engines`, `dependencies`, ...). */
  manifest?: Record<string, unknown>
  /** Signs `kanban@<version>:<integrity>` with this key under `keyid`. */
  signWith?: { privateKey: KeyObject; keyid: string; integrity?: string }
}

/** Publishes hand-made entries with `time`, deprecations, manifests and signatures. */
function serve(versions: Version[], latest: string) {
  const tarballs = versions.map((v) => ({ version: v.version, tarball: v.tarball ?? runtimeTarball(v.version) }))
  s.registry.publish('kanban', tarballs, { latest })
  const doc: any = { name: 'kanban', 'dist-tags': { latest }, versions: {}, time: {} }
  versions.forEach((v, i) => {
    const integrity = sri(tarballs[i].tarball)
    const dist: any = {
      tarball: `${s.registry.url.replace(/\/$/, '')}${s.registry.tarballPath('kanban', v.version)}`,
      integrity,
    }
    if (v.signWith) {
      const message = `kanban@${v.version}:${v.signWith.integrity ?? integrity}`
      const sig = sign('sha256', Buffer.from(message), v.signWith.privateKey).toString('base64')
      dist.signatures = [{ keyid: v.signWith.keyid, sig }]
    }
    doc.versions[v.version] = { name: 'kanban', version: v.version, bin: { kanban: 'dist/cli.js' }, dist, ...v.manifest }
    if (v.deprecated) doc.versions[v.version].deprecated = v.deprecated
    if (v.ageMinutes !== undefined) doc.time[v.version] = new Date(Date.now() - v.ageMinutes * MINUTE).toISOString()
  })
  s.registry.setDoc('kanban', doc)
}

/** A runtime tarball whose own package.json carries `fields`. */
function tarballWith(version: string, fields: Record<string, unknown>): Buffer {
  return tgz([
    { path: 'package/package.json', body: JSON.stringify({ name: 'kanban', version, ...fields }) },
    { path: 'package/dist/cli.js', body: cliBody(version) },
  ])
}

function docRequests() {
  return s.registry.requests.filter((r) => r.url === '/kanban')
}

const fullDocAccept = (r: { headers: Record<string, unknown> }) => r.headers.accept === 'application/json'

describe('registry signatures', () => {
  it('stages a version whose signature verifies with a given key, fetching nothing more', async () => {
    const k = keyPair()
    serve([{ version: '2.0.0', signWith: { privateKey: k.privateKey, keyid: 'SHA256:test' } }], '2.0.0')
    const out = await checkAndStageLatestRuntime(
      s.opts({ registryKeys: [registryKey(k.publicKey, 'SHA256:test')], requireSignatures: true }),
    )
    expect(out).toEqual({ kind: 'staged', version: '2.0.0' })
    expect(docRequests()).toHaveLength(1)
    expect(docRequests().some(fullDocAccept)).toBe(false)
  })

  it('refuses a signature made with another key, and a signature over another integrity', async () => {
    const before = await s.stageBaseline()
    const k = keyPair()
    const thief = keyPair()
    const keys = [registryKey(k.publicKey, 'SHA256:test')]
    serve([{ version: '2.0.0', signWith: { privateKey: thief.privateKey, keyid: 'SHA256:test' } }], '2.0.0')
    const wrongKey = await checkAndStageLatestRuntime(s.opts({ registryKeys: keys }))
    expect(wrongKey).toMatchObject({
      kind: 'up-to-date',
      refused: { code: 'ESIGNATURE', reason: 'invalid', version: '2.0.0', keyid: 'SHA256:test' },
    })

    // The registry signed the real tarball; a document whose integrity names another one fails.
    const real = runtimeTarball('2.0.0')
    serve(
      [
        {
          version: '2.0.0',
          tarball: runtimeTarball('2.0.0', { extra: [{ path: 'package/evil.js', body: 'x' }] }),
          signWith: { privateKey: k.privateKey, keyid: 'SHA256:test', integrity: sri(real) },
        },
      ],
      '2.0.0',
    )
    const tampered = await checkAndStageLatestRuntime(s.opts({ registryKeys: keys }))
    expect(tampered).toMatchObject({ kind: 'up-to-date', refused: { code: 'ESIGNATURE', reason: 'invalid' } })
    expect(s.registry.tarballRequests()).toBe(1) // the baseline's only
    s.expectUnchanged(before, '1.0.5')
  })

  it('refuses a signature whose key is not known, with the embedded public registry keys too', async () => {
    const k = keyPair()
    serve([{ version: '2.0.0', signWith: { privateKey: k.privateKey, keyid: 'SHA256:mirror' } }], '2.0.0')
    const e = await checkAndStageLatestRuntime(s.opts())
    expect(e).toMatchObject({ kind: 'up-to-date', refused: { code: 'ESIGNATURE', reason: 'unknown-key', keyid: 'SHA256:mirror' } })
    expect(fs.existsSync(s.store)).toBe(false)
  })

  it('honours a key expiry against the publish time, from the full document', async () => {
    const before = await s.stageBaseline()
    const k = keyPair()
    const expired = [registryKey(k.publicKey, 'SHA256:old', new Date(Date.now() - 60 * MINUTE).toISOString())]
    serve([{ version: '2.0.0', ageMinutes: 10, signWith: { privateKey: k.privateKey, keyid: 'SHA256:old' } }], '2.0.0')
    const requestsBefore = docRequests().length
    const e = await checkAndStageLatestRuntime(s.opts({ registryKeys: expired }))
    expect(e).toMatchObject({ kind: 'up-to-date', refused: { code: 'ESIGNATURE', reason: 'expired-key', keyid: 'SHA256:old' } })
    const fetched = docRequests().slice(requestsBefore)
    expect(fetched.map(fullDocAccept)).toEqual([false, true])
    s.expectUnchanged(before, '1.0.5')

    // Published before the key expired: verified.
    serve([{ version: '2.0.0', ageMinutes: 120, signWith: { privateKey: k.privateKey, keyid: 'SHA256:old' } }], '2.0.0')
    const out = await checkAndStageLatestRuntime(s.opts({ registryKeys: expired }))
    expect(out).toEqual({ kind: 'staged', version: '2.0.0' })
  })

  it('stages an unsigned version unless signatures are required', async () => {
    const before = await s.stageBaseline()
    serve([{ version: '2.0.0' }], '2.0.0')
    const e = await checkAndStageLatestRuntime(s.opts({ requireSignatures: true }))
    expect(e).toMatchObject({ kind: 'up-to-date', refused: { code: 'ESIGNATURE', reason: 'missing', version: '2.0.0' } })
    s.expectUnchanged(before, '1.0.5')
    const out = await checkAndStageLatestRuntime(s.opts({ requireSignatures: false }))
    expect(out).toEqual({ kind: 'staged', version: '2.0.0' })
  })

  it('skips a version whose signature fails, as the cool-down skips a young one, even when it is incompatible too', async () => {
    const k = keyPair()
    const thief = keyPair()
    const keys = [registryKey(k.publicKey, 'SHA256:test')]
    serve(
      [
        { version: '1.5.0', signWith: { privateKey: k.privateKey, keyid: 'SHA256:test' } },
        // The compatibility guard must not be what answers for a version no one can trust.
        {
          version: '2.0.0',
          manifest: { engines: { node: '>=99' } },
          signWith: { privateKey: thief.privateKey, keyid: 'SHA256:test' },
        },
      ],
      '2.0.0',
    )
    const logs: { level: string; fields?: Record<string, unknown> }[] = []
    const out = await checkAndStageLatestRuntime(
      s.opts({ registryKeys: keys, hostNodeVersion: '22.12.0', onLog: (e: (typeof logs)[0]) => logs.push(e) }),
    )
    expect(out).toEqual({
      kind: 'staged',
      version: '1.5.0',
      refused: { version: '2.0.0', code: 'ESIGNATURE', reason: 'invalid', keyid: 'SHA256:test', message: expect.any(String) },
    })
    expect(s.registry.tarballRequests()).toBe(1)
    await new Promise((r) => setTimeout(r, 50))
    expect(logs.some((e) => e.level === 'warn' && e.fields?.version === '2.0.0' && e.fields?.code === 'ESIGNATURE')).toBe(true)
  })

  it('stops looking further back after 16 refused versions, each warned, with no request for any', async () => {
    const versions = Array.from({ length: 20 }, (_, i) => `1.${i + 1}.0`)
    s.registry.publish(
      'kanban',
      versions.map((version) => ({ version, tarball: runtimeTarball(version) })),
      { latest: '1.20.0' },
    )
    const logs: { level: string; message: string; fields?: Record<string, unknown> }[] = []
    const out = await checkAndStageLatestRuntime(
      s.opts({ requireSignatures: true, onLog: (e: (typeof logs)[0]) => logs.push(e) }),
    )
    expect(out).toMatchObject({ kind: 'up-to-date', refused: { code: 'ESIGNATURE', reason: 'missing', version: '1.20.0' } })
    await new Promise((r) => setTimeout(r, 50))
    const warned = logs.filter((e) => e.level === 'warn' && e.fields?.code === 'ESIGNATURE')
    expect(warned.map((e) => e.fields?.version)).toEqual(versions.slice(4).reverse())
    expect(warned.at(-1)?.message).toContain('16 versions refused')
    expect(s.registry.requests.length).toBe(1) // the document
  })

  it('checks registryKeys and requireSignatures as options', async () => {
    for (const registryKeys of [
      'key',
      [{ keyid: 'k' }],
      [{ keyid: 'k', key: 'AAAA' }],
      [{ ...registryKey(keyPair().publicKey, 'k'), expires: 'tomorrow' }],
      [{ ...registryKey(keyPair().publicKey, 'k'), keytype: 'ssh-ed25519' }],
    ]) {
      const e = await rejection(checkAndStageLatestRuntime(s.opts({ registryKeys })))
      expect(e).toMatchObject({ code: 'EINVALID_OPTION', option: 'registryKeys' })
    }
    const e = await rejection(checkAndStageLatestRuntime(s.opts({ requireSignatures: 'yes' })))
    expect(e).toMatchObject({ code: 'EINVALID_OPTION', option: 'requireSignatures' })
    expect(s.registry.requests).toHaveLength(0)
  })
})

describe('release-age cool-down', () => {
  const DAY = 24 * 60

  it('fetches the abbreviated document when off, the full one when on', async () => {
    serve([{ version: '2.0.0', ageMinutes: 2 * DAY }], '2.0.0')
    expect(await checkAndStageLatestRuntime(s.opts({ minReleaseAgeMinutes: 0 }))).toEqual({
      kind: 'staged',
      version: '2.0.0',
    })
    expect(docRequests().map(fullDocAccept)).toEqual([false])
    // Old enough: the tag's own version.
    expect(await checkAndStageLatestRuntime(s.opts({ minReleaseAgeMinutes: DAY }))).toEqual({
      kind: 'already-staged',
    })
    expect(docRequests().map(fullDocAccept)).toEqual([false, true])
  })

  it('stages the newest release old enough, skipping young, undated, future and deprecated ones', async () => {
    serve(
      [
        { version: '1.4.0', ageMinutes: 9 * DAY },
        { version: '1.5.0', ageMinutes: 8 * DAY },
        { version: '1.6.0', ageMinutes: 7 * DAY, deprecated: 'broken, use 1.5.0' },
        { version: '1.7.0-rc.1', ageMinutes: 6 * DAY },
        { version: '1.8.0' },
        { version: '1.9.0', ageMinutes: -DAY },
        { version: '2.0.0', ageMinutes: 10 },
        { version: '3.0.0', ageMinutes: 30 * DAY },
      ],
      '2.0.0',
    )
    const logs: string[] = []
    const out = await checkAndStageLatestRuntime(
      s.opts({ minReleaseAgeMinutes: 3 * DAY, onLog: (e: { message: string }) => logs.push(e.message) }),
    )
    expect(out).toEqual({ kind: 'staged', version: '1.5.0' })
    expect(s.registry.tarballRequests()).toBe(1)
    expect(s.registry.count(s.registry.tarballPath('kanban', '1.5.0'))).toBe(1)
    await new Promise((r) => setTimeout(r, 50))
    expect(logs).toContain('cool-down: 2.0.0 is younger than 4320 minutes (or deprecated); considering 1.5.0')
  })

  it('answers up-to-date when no release newer than the running one is old enough, writing nothing', async () => {
    serve(
      [
        { version: '1.0.0', ageMinutes: 30 * DAY },
        { version: '2.0.0', ageMinutes: 60 },
      ],
      '2.0.0',
    )
    expect(await checkAndStageLatestRuntime(s.opts({ minReleaseAgeMinutes: DAY }))).toEqual({ kind: 'up-to-date' })
    serve([{ version: '2.0.0' }], '2.0.0')
    expect(await checkAndStageLatestRuntime(s.opts({ minReleaseAgeMinutes: DAY }))).toEqual({ kind: 'up-to-date' })
    expect(s.registry.tarballRequests()).toBe(0)
    expect(fs.existsSync(s.store)).toBe(false)
  })

  it('says so when every release newer than the running one is deprecated', async () => {
    serve(
      [
        { version: '1.0.0', ageMinutes: 30 * DAY },
        { version: '1.5.0', ageMinutes: 10 * DAY, deprecated: 'broken' },
        { version: '2.0.0', ageMinutes: 10 * DAY, deprecated: 'broken too' },
      ],
      '2.0.0',
    )
    const logs: { level: string; message: string; fields?: Record<string, unknown> }[] = []
    const out = await checkAndStageLatestRuntime(
      s.opts({ minReleaseAgeMinutes: DAY, onLog: (e: (typeof logs)[0]) => logs.push(e) }),
    )
    expect(out).toEqual({ kind: 'up-to-date' })
    await new Promise((r) => setTimeout(r, 50))
    const warned = logs.filter((e) => e.level === 'warn')
    expect(warned).toHaveLength(1)
    expect(warned[0].message).toContain('deprecated')
    expect(warned[0].fields).toMatchObject({ current: '1.0.0', versions: '2.0.0, 1.5.0' })
  })

  it('refuses a cool-down that is not a whole number of minutes up to 366 days', async () => {
    for (const minReleaseAgeMinutes of [-1, 1.5, 366 * DAY + 1, '60']) {
      const e = await rejection(checkAndStageLatestRuntime(s.opts({ minReleaseAgeMinutes })))
      expect(e).toMatchObject({ code: 'EINVALID_OPTION', option: 'minReleaseAgeMinutes' })
    }
  })
})

describe('compatibility guard', () => {
  it('refuses from the document, without a download, what the host Node or node-pty cannot run', async () => {
    const before = await s.stageBaseline()
    serve([{ version: '2.0.0', manifest: { engines: { node: '>=24' } } }], '2.0.0')
    const node = await rejection(checkAndStageLatestRuntime(s.opts({ hostNodeVersion: '22.12.0' })))
    expect(node).toMatchObject({
      code: 'EINCOMPATIBLE',
      guard: 'engines.node',
      range: '>=24',
      provided: '22.12.0',
      version: '2.0.0',
    })
    // The bundled node-pty is 1.1.0.
    serve([{ version: '2.0.0', manifest: { dependencies: { 'node-pty': '^1.2.0-beta.11' } } }], '2.0.0')
    const pty = await rejection(checkAndStageLatestRuntime(s.opts()))
    expect(pty).toMatchObject({ code: 'EINCOMPATIBLE', guard: 'node-pty', range: '^1.2.0-beta.11', provided: '1.1.0' })
    expect(s.registry.tarballRequests()).toBe(1) // the baseline's only
    s.expectUnchanged(before, '1.0.5')
  })

  it('defaults hostNodeVersion to the Node running the addon', async () => {
    const major = Number(process.versions.node.split('.')[0])
    serve([{ version: '2.0.0', manifest: { engines: { node: `>=${major + 1}` } } }], '2.0.0')
    const e = await rejection(checkAndStageLatestRuntime(s.opts()))
    expect(e).toMatchObject({ code: 'EINCOMPATIBLE', guard: 'engines.node', provided: process.versions.node })
    serve([{ version: '2.0.0', manifest: { engines: { node: `^${major}.0.0 || >=${major + 1}` } } }], '2.0.0')
    expect(await checkAndStageLatestRuntime(s.opts())).toEqual({ kind: 'staged', version: '2.0.0' })
  })

  it('stages what the ranges include', async () => {
    serve(
      [
        {
          version: '2.0.0',
          manifest: {
            engines: { node: '>=20 <23' },
            optionalDependencies: { 'node-pty': '1.x' },
            peerDependencies: { 'node-pty': '>=1.1.0-beta.1' },
          },
          tarball: tarballWith('2.0.0', { engines: { node: '^22' }, dependencies: { 'node-pty': '~1.1.0' } }),
        },
      ],
      '2.0.0',
    )
    expect(await checkAndStageLatestRuntime(s.opts({ hostNodeVersion: 'v22.12.0' }))).toEqual({
      kind: 'staged',
      version: '2.0.0',
    })
  })

  it("refuses from the tarball's own package.json, before promotion, and remembers it", async () => {
    const before = await s.stageBaseline()
    serve([{ version: '2.0.0', tarball: tarballWith('2.0.0', { engines: { node: '>=99' } }) }], '2.0.0')
    const first = await rejection(checkAndStageLatestRuntime(s.opts({ hostNodeVersion: '22.12.0' })))
    expect(first).toMatchObject({ code: 'EINCOMPATIBLE', guard: 'engines.node', range: '>=99', version: '2.0.0' })
    expect(s.registry.tarballRequests()).toBe(2)
    const remembered = JSON.parse(fs.readFileSync(path.join(s.store, 'incompatible-versions.json'), 'utf8'))
    const refusedTarball = tarballWith('2.0.0', { engines: { node: '>=99' } })
    expect(remembered).toEqual({ '2.0.0': { guard: 'engines.node', range: '>=99', integrity: sri(refusedTarball) } })
    // Only the memory was added: no version folder, no partial, the same pointer.
    const { 'incompatible-versions.json': _added, ...rest } = snapshot(s.store)
    expect(rest).toEqual(before)
    expect(s.partials()).toEqual([])
    expect(binding.readPointer(s.userData)?.version).toBe('1.0.5')

    const again = await rejection(checkAndStageLatestRuntime(s.opts({ hostNodeVersion: '22.12.0' })))
    expect(again).toMatchObject({ code: 'EINCOMPATIBLE', guard: 'engines.node', range: '>=99' })
    expect(s.registry.tarballRequests()).toBe(2)

    // An app update that brings a Node the range admits stages it.
    expect(await checkAndStageLatestRuntime(s.opts({ hostNodeVersion: '99.1.0' }))).toEqual({
      kind: 'staged',
      version: '2.0.0',
    })
  })

  it('remembers a refusal for the tarball that was refused, not for every release of that version', async () => {
    await s.stageBaseline()
    serve([{ version: '2.0.0', tarball: tarballWith('2.0.0', { engines: { node: '>=99' } }) }], '2.0.0')
    const first = await rejection(checkAndStageLatestRuntime(s.opts({ hostNodeVersion: '22.12.0' })))
    expect(first).toMatchObject({ code: 'EINCOMPATIBLE', range: '>=99' })
    const requests = s.registry.tarballRequests()

    // Another 2.0.0 (another registry's, or a republish): another tarball, judged on its own.
    serve([{ version: '2.0.0', tarball: tarballWith('2.0.0', { engines: { node: '>=20' }, description: 'other' }) }], '2.0.0')
    expect(await checkAndStageLatestRuntime(s.opts({ hostNodeVersion: '22.12.0' }))).toEqual({
      kind: 'staged',
      version: '2.0.0',
    })
    expect(s.registry.tarballRequests()).toBe(requests + 1)
  })

  it('does not honour a remembered refusal that names no tarball', async () => {
    await s.stageBaseline()
    serve([{ version: '2.0.0' }], '2.0.0')
    // As an earlier release wrote it: keyed by version alone.
    fs.writeFileSync(
      path.join(s.store, 'incompatible-versions.json'),
      JSON.stringify({ '2.0.0': { guard: 'engines.node', range: '>=99' } }),
    )
    expect(await checkAndStageLatestRuntime(s.opts({ hostNodeVersion: '22.12.0' }))).toEqual({
      kind: 'staged',
      version: '2.0.0',
    })
  })

  it("refuses a node-pty range found only in the tarball's package.json", async () => {
    serve(
      [{ version: '2.0.0', tarball: tarballWith('2.0.0', { optionalDependencies: { 'node-pty': '^2.0.0' } }) }],
      '2.0.0',
    )
    const e = await rejection(checkAndStageLatestRuntime(s.opts()))
    expect(e).toMatchObject({ code: 'EINCOMPATIBLE', guard: 'node-pty', range: '^2.0.0', provided: '1.1.0' })
    expect(fs.readdirSync(s.versionsDir)).toEqual([])
    expect(binding.readPointer(s.userData)).toBeNull()
  })

  it('refuses a hostNodeVersion that is not a version', async () => {
    for (const hostNodeVersion of ['22', 'latest', 22]) {
      const e = await rejection(checkAndStageLatestRuntime(s.opts({ hostNodeVersion })))
      expect(e).toMatchObject({ code: 'EINVALID_OPTION', option: 'hostNodeVersion' })
    }
  })
})
