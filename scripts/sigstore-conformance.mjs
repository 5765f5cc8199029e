#!/usr/bin/env node
// Runs the offline bundle-verification cases of a checkout of sigstore/sigstore-conformance
// (test/assets/bundle-verify/) through `kanban-runtime-stager verify-bundle`, as that suite's
// CLI protocol drives a client: each case once with the artifact's path and once with its
// sha256 digest. A case passes when both runs exit 0 (or, for a `_fail` case, both exit 1).
// Prints one line per case and `N passed, M failed`; exits 1 when any case failed.
//
// Usage: node scripts/sigstore-conformance.mjs PATH_TO_SIGSTORE_CONFORMANCE [FILTER]
// Not run in CI: that repository is not reachable from there.
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

// The suite's defaults when a case names no identity or issuer (test/client.py there).
const IDENTITY =
  'https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main'
const ISSUER = 'https://token.actions.githubusercontent.com'

const cli = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'kanban-runtime-stager.js')
const [checkout, filter] = process.argv.slice(2)
if (!checkout) {
  console.error('usage: node scripts/sigstore-conformance.mjs PATH_TO_SIGSTORE_CONFORMANCE [FILTER]')
  process.exit(2)
}
const assets = path.join(checkout, 'test', 'assets', 'bundle-verify')
if (!fs.existsSync(assets)) {
  console.error(`no test/assets/bundle-verify under ${checkout}`)
  process.exit(2)
}

const optional = (dir, name) => (fs.existsSync(path.join(dir, name)) ? path.join(dir, name) : undefined)
const text = (file) => fs.readFileSync(file, 'utf8').trim()

/** The arguments the suite would pass for a case, with the artifact as a path or a digest. */
function args(dir, asDigest) {
  const a = ['verify-bundle', '--bundle', path.join(dir, 'bundle.sigstore.json')]
  const key = optional(dir, 'key.pub')
  if (key) a.push('--key', key)
  else {
    const identity = optional(dir, 'identity')
    const issuer = optional(dir, 'issuer')
    a.push('--certificate-identity', identity ? text(identity) : IDENTITY)
    a.push('--certificate-oidc-issuer', issuer ? text(issuer) : ISSUER)
  }
  const root = optional(dir, 'trusted_root.json')
  if (root) a.push('--trusted-root', root)
  const artifact = optional(dir, 'artifact') ?? path.join(assets, 'a.txt')
  a.push(asDigest ? `sha256:${createHash('sha256').update(fs.readFileSync(artifact)).digest('hex')}` : artifact)
  return a
}

let passed = 0
let failed = 0
const cases = fs
  .readdirSync(assets, { withFileTypes: true })
  .filter((d) => d.isDirectory() && (!filter || d.name.includes(filter)))
  .map((d) => d.name)
  .sort()
for (const name of cases) {
  const dir = path.join(assets, name)
  const want = name.endsWith('_fail') ? 1 : 0
  const runs = [false, true].map((asDigest) => {
    const r = spawnSync(process.execPath, [cli, ...args(dir, asDigest)], { encoding: 'utf8' })
    return { code: r.status, why: (r.stderr || r.stdout).trim().split('\n')[0] }
  })
  const ok = runs.every((r) => r.code === want)
  if (ok) passed++
  else failed++
  const detail = ok ? '' : `  (want exit ${want}; ${runs.map((r) => `exit ${r.code}: ${r.why}`).join(' | ')})`
  console.log(`${ok ? 'pass' : 'FAIL'} ${name}${detail}`)
}
console.log(`${passed} passed, ${failed} failed`)
process.exit(failed ? 1 : 0)
