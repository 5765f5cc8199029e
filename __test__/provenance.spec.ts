// Provenance through the binding: attestations served by a loopback registry, signed with the
// test Fulcio CA and test log key (__test__/fixtures/provenance), trusted via sigstoreTrustRoot.
import fs from 'node:fs'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { binding, rejection } from './helpers/binding'
import { cleanupTempDirs, nativeDeps, runtimeTarball, snapshot, tempDir } from './helpers/fixtures'
import { attestations, otherCaLeaf, REPOSITORY, trustRoot, WORKFLOW } from './helpers/provenance'
import { Registry } from '../scripts/testkit/registry.mjs'

const { checkAndStageLatestRuntime, readPointer } = binding

let registry: Registry
let userData: string
let native: string

beforeEach(async () => {
  registry = await Registry.start()
  userData = tempDir()
  native = nativeDeps()
})

afterEach(async () => {
  await registry.close()
  cleanupTempDirs()
})

const VERSION = '2.0.0'
const attestationsPath = () => registry.attestationsPath('kanban', VERSION)

function opts(extra: Record<string, unknown> = {}) {
  return {
    userData,
    currentVersion: '1.0.0',
    nativeDepsSource: native,
    registry: registry.url,
    retries: 0,
    provenance: { repository: REPOSITORY, workflowPath: WORKFLOW },
    sigstoreTrustRoot: trustRoot,
    ...extra,
  }
}

/** Publishes 2.0.0 as `latest`, with the attestations `attest` makes from its tarball (none without). */
function publish(attest?: (tarball: Buffer) => Buffer) {
  const tarball = runtimeTarball(VERSION)
  registry.publish('kanban', [{ version: VERSION, tarball, attestations: attest?.(tarball) }], { latest: VERSION })
}

/** Stages 1.0.0 without provenance, so a refusal can be shown to leave a real store untouched. */
async function stageOneZero() {
  const tarball = runtimeTarball('1.0.0')
  registry.publish('kanban', [{ version: '1.0.0', tarball }], { latest: '1.0.0' })
  await checkAndStageLatestRuntime(opts({ currentVersion: '0.1.0', provenance: undefined }))
}

describe('provenance', () => {
  it('stages a version whose attestation verifies', async () => {
    publish((tgz) => attestations('kanban', VERSION, tgz))
    const outcome = await checkAndStageLatestRuntime(opts())
    expect(outcome).toEqual({ kind: 'staged', version: VERSION })
    expect(readPointer(userData)?.version).toBe(VERSION)
    expect(registry.count(attestationsPath())).toBe(1)
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
    ['a digest that is not the tarball’s', {}, (tgz) => attestations('kanban', VERSION, tgz, { digestHex: 'ab'.repeat(64) }), 'subject'],
    ['a certificate from another CA', {}, (tgz) => attestations('kanban', VERSION, tgz, { signer: otherCaLeaf }), 'certificate'],
    ['the public-good trust root (the test CA is not trusted there)', { sigstoreTrustRoot: undefined }, (tgz) => attestations('kanban', VERSION, tgz), 'transparencyLog'],
    ['no attestations in the document', {}, undefined, 'attestation'],
  ]
  for (const [name, extra, attest, check] of refusals) {
    it(`refuses ${name} with EPROVENANCE, downloading and writing nothing`, async () => {
      await stageOneZero()
      publish(attest)
      const before = snapshot(userData)
      registry.requests.length = 0
      const err = await rejection(checkAndStageLatestRuntime(opts(extra)))
      expect(err.code).toBe('EPROVENANCE')
      expect(err.check).toBe(check)
      expect(err.version).toBe(VERSION)
      expect(registry.tarballRequests()).toBe(0)
      expect(snapshot(userData)).toEqual(before)
      expect(readPointer(userData)?.version).toBe('1.0.0')
    })
  }

  it('refuses a version whose attestations URL answers 404', async () => {
    publish((tgz) => attestations('kanban', VERSION, tgz))
    registry.routes.delete(attestationsPath())
    const err = await rejection(checkAndStageLatestRuntime(opts()))
    expect(err.code).toBe('EPROVENANCE')
    expect(err.check).toBe('attestation')
    expect(registry.count(attestationsPath())).toBe(1)
    expect(registry.tarballRequests()).toBe(0)
    expect(fs.existsSync(path.join(userData, 'kanban-runtime', 'versions', VERSION))).toBe(false)
  })

  it('requests no attestation when provenance is not set', async () => {
    publish((tgz) => attestations('kanban', VERSION, tgz, { signer: otherCaLeaf }))
    const outcome = await checkAndStageLatestRuntime(opts({ provenance: undefined }))
    expect(outcome).toEqual({ kind: 'staged', version: VERSION })
    expect(registry.requests.filter((r) => r.url.includes('/attestations/'))).toEqual([])
  })

  it('requests no attestation when already up to date', async () => {
    publish((tgz) => attestations('kanban', VERSION, tgz))
    const outcome = await checkAndStageLatestRuntime(opts({ currentVersion: VERSION }))
    expect(outcome.kind).toBe('up-to-date')
    expect(registry.count(attestationsPath())).toBe(0)
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
      [{ sigstoreTrustRoot: '{"tlogs":[]}' }, 'sigstoreTrustRoot'],
      [{ sigstoreTrustRoot: 'not json' }, 'sigstoreTrustRoot'],
      [{ sigstoreTrustRoot: {} }, 'sigstoreTrustRoot'],
    ]
    for (const [extra, option] of cases) {
      const err = await rejection(checkAndStageLatestRuntime(opts(extra)))
      expect([err.code, err.option]).toEqual(['EINVALID_OPTION', option])
    }
    expect(registry.requests).toEqual([])
  })
})
