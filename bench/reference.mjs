// The reference: a faithful JavaScript port of the original TypeScript function on pacote and
// semver, with the same layout and guards (and the same defects), used only by the benchmark.
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { cp, mkdir, rename, rm } from 'node:fs/promises'
import path from 'node:path'
import pacote from 'pacote'
import semver from 'semver'

const storeDir = (userData) => path.join(userData, 'runtime-store')
const versionsDir = (userData) => path.join(storeDir(userData), 'versions')
export const versionDir = (userData, v) => path.join(versionsDir(userData), v)
const partialDir = (userData, v) => `${versionDir(userData, v)}.partial`
const pointerPath = (userData) => path.join(storeDir(userData), 'current.json')

function readPointer(userData) {
  try {
    return JSON.parse(readFileSync(pointerPath(userData), 'utf8'))
  } catch {
    return null
  }
}

function resolvePointerCliEntry(userData) {
  const p = readPointer(userData)
  return p && existsSync(p.cliEntry) ? p.cliEntry : null
}

function isBadVersion(userData, version) {
  try {
    return JSON.parse(readFileSync(path.join(storeDir(userData), 'bad-versions.json'), 'utf8')).includes(version)
  } catch {
    return false
  }
}

function cleanupPartials(userData) {
  if (!existsSync(versionsDir(userData))) return
  for (const name of readdirSync(versionsDir(userData))) {
    if (name.endsWith('.partial')) rmSync(path.join(versionsDir(userData), name), { recursive: true, force: true })
  }
}

function writePointer(userData, version) {
  const tmp = `${pointerPath(userData)}.tmp`
  writeFileSync(tmp, JSON.stringify({ version, cliEntry: path.join(versionDir(userData, version), 'dist', 'cli.js') }))
  renameSync(tmp, pointerPath(userData))
}

export async function checkAndStageLatestRuntime(opts) {
  const pacoteOpts = { registry: opts.registry, cache: opts.cache, preferOnline: true }
  const manifest = await pacote.manifest('kanban@latest', pacoteOpts)
  const latest = manifest.version
  if (!semver.valid(latest)) throw new Error(`registry returned non-semver version ${latest}`)
  if (semver.valid(opts.currentVersion) && semver.lte(latest, opts.currentVersion)) return { kind: 'up-to-date' }
  if (isBadVersion(opts.userData, latest)) return { kind: 'bad-version', version: latest }
  const stagedCli = resolvePointerCliEntry(opts.userData)
  if (stagedCli && readPointer(opts.userData)?.version === latest) return { kind: 'already-staged' }

  cleanupPartials(opts.userData)
  const stage = partialDir(opts.userData, latest)
  await rm(stage, { recursive: true, force: true })
  await mkdir(path.dirname(stage), { recursive: true })
  await pacote.extract(`kanban@${latest}`, stage, pacoteOpts)
  await cp(path.join(opts.nativeDepsSource, 'node-pty'), path.join(stage, 'node_modules', 'node-pty'), { recursive: true })
  if (!existsSync(path.join(stage, 'dist', 'cli.js'))) throw new Error('staged runtime is missing dist/cli.js')
  const finalDir = versionDir(opts.userData, latest)
  await rm(finalDir, { recursive: true, force: true })
  await rename(stage, finalDir)
  writePointer(opts.userData, latest)
  return { kind: 'staged', version: latest }
}
