// The peers of the benchmark: other tools a user would fetch and unpack the same tarball with,
// each a whole process in a fresh folder with a fresh cache, against the same loopback registry.
// Bun's installer (the `bun` dev dependency pins Bun and brings its binary for this platform as an
// optional dependency) and npm. Whole-process CPU time and peak RSS come from GNU time where it is
// installed; elsewhere they are reported as unknown.
import { execFileSync, spawn } from 'node:child_process'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { performance } from 'node:perf_hooks'

const require = createRequire(import.meta.url)
const GNU_TIME = '/usr/bin/time'

/** Whether GNU time is there to report a child's CPU time and peak RSS. */
export const hasGnuTime = (() => {
  if (process.platform !== 'linux' || !fs.existsSync(GNU_TIME)) return false
  try {
    return execFileSync(GNU_TIME, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).includes('GNU')
  } catch {
    return false
  }
})()

/**
 * Bun's binary for this platform: `{ bin }`, or `{ skip }` saying why Bun cannot run here (no
 * package for this platform, or its binary does not start).
 */
export function findBun() {
  const os = { win32: 'windows', darwin: 'darwin', linux: 'linux' }[process.platform]
  const arch = { x64: 'x64', arm64: 'aarch64' }[process.arch]
  const exe = process.platform === 'win32' ? 'bun.exe' : 'bun'
  const candidates = []
  for (const pkg of [`@oven/bun-${os}-${arch}`, 'bun']) {
    try {
      const dir = path.dirname(require.resolve(`${pkg}/package.json`))
      // The platform package ships bin/bun; the `bun` package's postinstall moves it to bin/bun.exe.
      candidates.push(path.join(dir, 'bin', exe), path.join(dir, 'bin', 'bun.exe'))
    } catch {}
  }
  for (const bin of candidates.filter((c) => fs.existsSync(c))) {
    try {
      const version = execFileSync(bin, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 }).trim()
      return { bin, version }
    } catch {}
  }
  return { skip: `no Bun binary runs on ${process.platform}-${process.arch}: the bun dev dependency brings none for this platform` }
}

/**
 * Runs `cmd args` in `cwd` as a whole process, under GNU time when there is one. Resolves to
 * its wall time as this process saw it, its CPU time (user + sys) and peak RSS when known, and
 * its stdout.
 */
export function measured(cmd, args, { cwd, env } = {}) {
  const timeFile = path.join(cwd, '.time')
  const [file, argv] = hasGnuTime ? [GNU_TIME, ['-f', '%U %S %M', '-o', timeFile, cmd, ...args]] : [cmd, args]
  return new Promise((resolve, reject) => {
    const t0 = performance.now()
    const child = spawn(file, argv, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], shell: process.platform === 'win32' && !path.isAbsolute(cmd) })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    child.on('error', reject)
    child.on('exit', (code) => {
      const wallMs = performance.now() - t0
      if (code !== 0) return reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}: ${err.slice(-2000)}`))
      let cpuMs = null
      let peakRssMB = null
      if (hasGnuTime) {
        const [user, sys, rssKB] = fs.readFileSync(timeFile, 'utf8').trim().split('\n').pop().split(' ').map(Number)
        cpuMs = (user + sys) * 1000
        peakRssMB = rssKB / 1024
      }
      resolve({ wallMs, cpuMs, peakRssMB, out })
    })
  })
}

/** A fresh project folder asking for exactly kanban@`version`. */
function project(dir, version) {
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'bench-peer', private: true, dependencies: { kanban: version } }))
}

/** `bun install` of kanban@`version` from `registry` in a fresh folder with a fresh cache. */
export async function bunInstall(bun, registry, dir, version) {
  project(dir, version)
  fs.writeFileSync(path.join(dir, 'bunfig.toml'), `[install]\nregistry = "${registry}"\n`)
  const r = await measured(bun.bin, ['install', '--no-progress'], { cwd: dir, env: { BUN_INSTALL_CACHE_DIR: path.join(dir, '.bun-cache') } })
  check(dir, 'bun')
  return r
}

/** `npm install` of kanban@`version` from `registry` in a fresh folder with a fresh cache. */
export async function npmInstall(registry, dir, version) {
  project(dir, version)
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
  const r = await measured(npm, ['install', '--no-audit', '--no-fund', '--ignore-scripts', `--registry=${registry}`, `--cache=${path.join(dir, '.npm-cache')}`], { cwd: dir })
  check(dir, 'npm')
  return r
}

/** Throws unless the peer unpacked the runtime's CLI. */
function check(dir, who) {
  if (!fs.existsSync(path.join(dir, 'node_modules', 'kanban', 'dist', 'cli.js'))) throw new Error(`${who} did not unpack kanban/dist/cli.js`)
}
