// Temporary userData folders, bundled native modules and runtime tarballs for the tests.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { tgz, type TarEntry } from '../../scripts/testkit/tar.mjs'

const made: string[] = []

export function tempDir(prefix = 'krs-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  made.push(dir)
  return dir
}

export function cleanupTempDirs(): void {
  for (const d of made.splice(0)) fs.rmSync(d, { recursive: true, force: true })
}

/** A folder shaped like the app's bundled native modules: `<dir>/node-pty/...`. */
export function nativeDeps(): string {
  const dir = tempDir('krs-native-')
  fs.mkdirSync(path.join(dir, 'node-pty/build/Release'), { recursive: true })
  fs.writeFileSync(path.join(dir, 'node-pty/package.json'), '{"name":"node-pty","version":"1.1.0"}')
  fs.writeFileSync(path.join(dir, 'node-pty/build/Release/pty.node'), 'native-binary-for-tests')
  return dir
}

export function cliBody(version: string): string {
  return `#!/usr/bin/env node\nconsole.log('kanban ${version}')\n`
}

/** A runtime tarball as npm publishes it: top folder, package.json, dist/cli.js. */
export function runtimeTarball(version: string, opts: { top?: string; extra?: TarEntry[] } = {}): Buffer {
  const top = opts.top ?? 'package'
  return tgz([
    { path: `${top}/package.json`, body: JSON.stringify({ name: 'kanban', version, bin: { kanban: 'dist/cli.js' } }) },
    { path: `${top}/dist/cli.js`, body: cliBody(version), mode: 0o644 },
    { path: `${top}/README.md`, body: `# kanban ${version}\n` },
    ...(opts.extra ?? []),
  ])
}

/** Every file below `dir`, relative, sorted: the layout a test asserts. */
export function listTree(dir: string): string[] {
  const out: string[] = []
  const walk = (d: string, rel: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name
      if (e.isDirectory()) walk(path.join(d, e.name), r)
      else out.push(r)
    }
  }
  if (fs.existsSync(dir)) walk(dir, '')
  return out.sort()
}

/** A snapshot of every file under `dir` with its contents, to prove nothing changed. */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const f of listTree(dir)) out[f] = fs.readFileSync(path.join(dir, f)).toString('base64')
  return out
}

/**
 * A store as the TypeScript stager left it under `userData`: a whole version folder with its
 * node-pty, the compact pointer (no `previous`, no completion record) and, if given, a bad list.
 * Returns the pointed cliEntry.
 */
export function typeScriptStore(userData: string, version: string, bad: string[] = []): string {
  const store = path.join(userData, 'runtime-store')
  const dir = path.join(store, 'versions', version)
  fs.mkdirSync(path.join(dir, 'dist'), { recursive: true })
  fs.mkdirSync(path.join(dir, 'node_modules', 'node-pty'), { recursive: true })
  fs.writeFileSync(path.join(dir, 'node_modules', 'node-pty', 'package.json'), '{"name":"node-pty"}')
  fs.writeFileSync(path.join(dir, 'dist', 'cli.js'), "console.log('kanban')\n")
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'kanban', version }))
  const cliEntry = path.join(dir, 'dist', 'cli.js')
  fs.writeFileSync(path.join(store, 'current.json'), `${JSON.stringify({ version, cliEntry })}\n`)
  if (bad.length) fs.writeFileSync(path.join(store, 'bad-versions.json'), `${JSON.stringify(bad)}\n`)
  return cliEntry
}
