// Provenance through the binding: attestations served by a loopback registry, signed with the
// test Fulcio CA and test log key (__test__/fixtures/provenance), trusted via sigstoreTrustRoot.
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { binding, rejection } from './helpers/binding'
import { runtimeTarball, snapshot } from './helpers/fixtures'
import {
  attestations,
  berLeaf,
  otherCaLeaf,
  pullRequestLeaf,
  pullRequestTargetLeaf,
  repeatedExtensionLeaf,
  REPOSITORY,
  tagLeaf,
  trustRoot,
  WORKFLOW,
} from './helpers/provenance'
import { Scenario } from './helpers/scenario'

const { checkAndStageLatestRuntime, readPointer } = binding

const s = Scenario.perTest()

const VERSION = '2.0.0'
const attestationsPath = () => s.registry.attestationsPath('kanban', VERSION)

/** The scenario's options, verifying provenance against the test trust root. */
function opts(extra: Record<string, unknown> = {}) {
  return s.opts({ provenance: { repository: REPOSITORY, workflowPath: WORKFLOW }, sigstoreTrustRoot: trustRoot, ...extra })
}

/** Publishes 2.0.0 as `latest`, with the attestations `attest` makes from its tarball (none without). */
function publish(attest?: (tarball: Buffer) => Buffer) {
  const tarball = runtimeTarball(VERSION)
  s.publish(VERSION, tarball, { attestations: attest?.(tarball) })
}

/** Stages 1.0.0 without provenance, so a refusal can be shown to leave a real store untouched. */
async function stageOneZero() {
  s.publish('1.0.0')
  await checkAndStageLatestRuntime(opts({ currentVersion: '0.1.0', provenance: undefined }))
}

describe('provenance', () => {
  it('stages a version whose attestation verifies', async () => {
    publish((tgz) => attestations('kanban', VERSION, tgz))
    const outcome = await checkAndStageLatestRuntime(opts())
    expect(outcome).toEqual({ kind: 'staged', version: VERSION })
    expect(readPointer(s.userData)?.version).toBe(VERSION)
    expect(s.registry.count(attestationsPath())).toBe(1)
  })

  it('any workflow of the repository is accepted without workflowPath', async () => {
    publish((tgz) => attestations('kanban', VERSION, tgz))
    const outcome = await checkAndStageLatestRuntime(opts({ provenance: { repository: REPOSITORY } }))
    expect(outcome.kind).toBe('staged')
  })

  const refusals: [string, Record<string, unknown>, ((tgz: Buffer) => Buffer) | undefined, string][] = [
    ['another repository', { provenance: { repository: 'evil/kanban' } }, (tgz) => attestations('kanban', VERSION, tgz), 'identity'],
    [
      'another workflow',
      { provenance: { repository: REPOSITORY, workflowPath: '.github/workflows/other.yml' } },
      (tgz) => attestations('kanban', VERSION, tgz),
      'identity',
    ],
    [
      'a workflow path that differs only in case',
      { provenance: { repository: REPOSITORY, workflowPath: '.github/workflows/PUBLISH.yml' } },
      (tgz) => attestations('kanban', VERSION, tgz),
      'identity',
    ],
    ['a run triggered by pull_request', {}, (tgz) => attestations('kanban', VERSION, tgz, { signer: pullRequestLeaf }), 'identity'],
    [
      'a run triggered by pull_request_target (on the base branch’s ref)',
      {},
      (tgz) => attestations('kanban', VERSION, tgz, { signer: pullRequestTargetLeaf }),
      'identity',
    ],
    [
      'a branch run when the policy asks for a tag',
      { provenance: { repository: REPOSITORY, workflowPath: WORKFLOW, ref: 'refs/tags/v*' } },
      (tgz) => attestations('kanban', VERSION, tgz),
      'identity',
    ],
    ['a digest that is not the tarball’s', {}, (tgz) => attestations('kanban', VERSION, tgz, { digestHex: 'ab'.repeat(64) }), 'subject'],
    ['a certificate from another CA', {}, (tgz) => attestations('kanban', VERSION, tgz, { signer: otherCaLeaf }), 'certificate'],
    [
      'a certificate that repeats an extension (the repository, evil/kanban second)',
      {},
      (tgz) => attestations('kanban', VERSION, tgz, { signer: repeatedExtensionLeaf }),
      'certificate',
    ],
    ['a certificate in BER, not DER', {}, (tgz) => attestations('kanban', VERSION, tgz, { signer: berLeaf }), 'certificate'],
    [
      'a certificate with bytes after its DER',
      {},
      (tgz) => attestations('kanban', VERSION, tgz, { rawBytes: (der) => Buffer.concat([der, Buffer.from([0])]).toString('base64') }),
      'certificate',
    ],
    ['a certificate that is not base64', {}, (tgz) => attestations('kanban', VERSION, tgz, { rawBytes: () => 'not base64!' }), 'certificate'],
    ['the public-good trust root (the test CA is not trusted there)', { sigstoreTrustRoot: undefined }, (tgz) => attestations('kanban', VERSION, tgz), 'transparencyLog'],
    ['no attestations in the document', {}, undefined, 'attestation'],
  ]
  for (const [name, extra, attest, check] of refusals) {
    it(`refuses ${name} (EPROVENANCE in outcome.refused), downloading and writing nothing`, async () => {
      await stageOneZero()
      publish(attest)
      const before = snapshot(s.userData)
      s.registry.requests.length = 0
      const outcome = await checkAndStageLatestRuntime(opts(extra))
      expect(outcome).toEqual({ kind: 'up-to-date', refused: expect.objectContaining({ code: 'EPROVENANCE', check, version: VERSION }) })
      expect(s.registry.tarballRequests()).toBe(0)
      expect(snapshot(s.userData)).toEqual(before)
      expect(readPointer(s.userData)?.version).toBe('1.0.0')
    })
  }

  it('a refused tag does not halt updates: the newest release that passes is staged, the refusal reported', async () => {
    const DAY = 24 * 60 * 60_000
    const ago = (days: number) => new Date(Date.now() - days * DAY).toISOString()
    const release = (version: string, days: number, attested: boolean) => {
      const tarball = runtimeTarball(version)
      return { version, tarball, time: ago(days), attestations: attested ? attestations('kanban', version, tarball) : undefined }
    }
    // A stolen token's publish: no attestation, tagged latest, older than the cool-down.
    s.registry.publish('kanban', [release('1.4.0', 20, true), release('1.5.0', 10, true), release('2.0.0', 5, false)], {
      latest: '2.0.0',
    })
    const logs: { level: string; message: string; fields?: Record<string, unknown> }[] = []
    const recommended = opts({ minReleaseAgeMinutes: 3 * 24 * 60, onLog: (e: (typeof logs)[0]) => logs.push(e) })
    const refused = { version: '2.0.0', code: 'EPROVENANCE', check: 'attestation', message: expect.stringContaining('2.0.0') }
    expect(await checkAndStageLatestRuntime(recommended)).toEqual({ kind: 'staged', version: '1.5.0', refused })
    expect(s.registry.tarballRequests()).toBe(1)
    expect(s.registry.count(s.registry.tarballPath('kanban', '1.5.0'))).toBe(1)
    expect(readPointer(s.userData)?.version).toBe('1.5.0')
    await new Promise((r) => setTimeout(r, 50))
    const warned = logs.filter((e) => e.level === 'warn' && e.fields?.version === '2.0.0')
    expect(warned).toHaveLength(1)
    expect(warned[0].fields).toMatchObject({ code: 'EPROVENANCE' })

    // The next check, still on the old runtime, and the check after the restart into 1.5.0.
    expect(await checkAndStageLatestRuntime(recommended)).toEqual({ kind: 'already-staged', refused })
    expect(await checkAndStageLatestRuntime({ ...recommended, currentVersion: '1.5.0' })).toEqual({
      kind: 'up-to-date',
      refused,
    })
    expect(s.registry.tarballRequests()).toBe(1)
  })

  it('refuses a version whose attestations URL answers 404', async () => {
    publish((tgz) => attestations('kanban', VERSION, tgz))
    s.registry.routes.delete(attestationsPath())
    const outcome = await checkAndStageLatestRuntime(opts())
    expect(outcome).toMatchObject({ kind: 'up-to-date', refused: { code: 'EPROVENANCE', check: 'attestation' } })
    expect(s.registry.count(attestationsPath())).toBe(1)
    expect(s.registry.tarballRequests()).toBe(0)
    expect(fs.existsSync(path.join(s.userData, 'runtime-store', 'versions', VERSION))).toBe(false)
  })

  it('the owner and repository compare without case, and a tag run matches a ref glob', async () => {
    publish((tgz) => attestations('kanban', VERSION, tgz, { signer: tagLeaf }))
    const provenance = { repository: 'Kanban-Org/KANBAN', workflowPath: WORKFLOW, ref: 'refs/tags/v*' }
    const outcome = await checkAndStageLatestRuntime(opts({ provenance }))
    expect(outcome).toEqual({ kind: 'staged', version: VERSION })
  })

  it('requests no attestation when provenance is not set', async () => {
    publish((tgz) => attestations('kanban', VERSION, tgz, { signer: otherCaLeaf }))
    const outcome = await checkAndStageLatestRuntime(opts({ provenance: undefined }))
    expect(outcome).toEqual({ kind: 'staged', version: VERSION })
    expect(s.registry.requests.filter((r) => r.url.includes('/attestations/'))).toEqual([])
  })

  it('requests no attestation when already up to date', async () => {
    publish((tgz) => attestations('kanban', VERSION, tgz))
    const outcome = await checkAndStageLatestRuntime(opts({ currentVersion: VERSION }))
    expect(outcome.kind).toBe('up-to-date')
    expect(s.registry.count(attestationsPath())).toBe(0)
  })

  it('checks the options', async () => {
    publish((tgz) => attestations('kanban', VERSION, tgz))
    const cases: [Record<string, unknown>, string][] = [
      [{ provenance: 'kanban-org/kanban' }, 'provenance'],
      [{ provenance: [] }, 'provenance'],
      [{ provenance: {} }, 'provenance.repository'],
      [{ provenance: { repository: 'https://github.com/kanban-org/kanban' } }, 'provenance.repository'],
      [{ provenance: { repository: 42 } }, 'provenance.repository'],
      [{ provenance: { repository: REPOSITORY, workflowPath: 'publish.yml@main' } }, 'provenance.workflowPath'],
      [{ provenance: { repository: REPOSITORY, ref: 'v*' } }, 'provenance.ref'],
      [{ provenance: { repository: REPOSITORY, ref: 7 } }, 'provenance.ref'],
      [{ sigstoreTrustRoot: '{"tlogs":[]}' }, 'sigstoreTrustRoot'],
      [{ sigstoreTrustRoot: 'not json' }, 'sigstoreTrustRoot'],
      [{ sigstoreTrustRoot: {} }, 'sigstoreTrustRoot'],
    ]
    for (const [extra, option] of cases) {
      const err = await rejection(checkAndStageLatestRuntime(opts(extra)))
      expect([err.code, err.option]).toEqual(['EINVALID_OPTION', option])
    }
    expect(s.registry.requests).toEqual([])
  })
})
