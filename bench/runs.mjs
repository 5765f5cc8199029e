// What every staging run of the benchmark shares: the native modules an app bundles, the options
// of a run, and the fresh child process (bench/child.mjs) each run stages in.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'child.mjs')

/**
 * The native modules an app bundles, copied under `work/native`: node-pty's package.json, lib/ and
 * its binaries (prebuilds/ for this platform, or build/Release/ where it was compiled). The dev
 * dependency is the node-pty the runtime asks for (^1.2.0-beta.11), so the compatibility guard
 * passes as it does in the app. Returns the folder that contains `node-pty/`.
 */
export function bundledNativeDeps(work) {
  const src = path.dirname(createRequire(import.meta.url).resolve('node-pty/package.json'))
  const dest = path.join(work, 'native', 'node-pty')
  const binaries = [`prebuilds/${process.platform}-${process.arch}`, 'build/Release']
  for (const part of ['package.json', 'lib', ...binaries.filter((b) => fs.existsSync(path.join(src, b)))]) {
    fs.cpSync(path.join(src, part), path.join(dest, part), { recursive: true })
  }
  return path.dirname(dest)
}

/**
 * The options of a run that stages kanban 0.1.70 over the running 0.1.69 into `userData`. The
 * host is the app's Electron Node: kanban 0.1.70 needs >=22 whatever Node runs the bench.
 */
export function runOptions(userData, native, registry) {
  return { userData, currentVersion: '0.1.69', nativeDepsSource: native, registry, cache: path.join(userData, '.pacote-cache'), hostNodeVersion: '22.12.0' }
}

/**
 * Stages with `impl` ('addon' or 'pacote') and `opts` in a fresh child, killed after `limitMs`
 * when given. Resolves to its exit code, what it printed, and its report (the last line, parsed;
 * null when there is none).
 */
export function runChild(impl, opts, limitMs) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CHILD, impl, JSON.stringify(opts)], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    const timer = limitMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), limitMs)
    child.stdout.on('data', (d) => (out += d))
    child.on('exit', (code) => {
      clearTimeout(timer)
      let report = null
      try {
        report = JSON.parse(out.trim().split('\n').pop())
      } catch {}
      resolve({ code, out, report })
    })
  })
}
