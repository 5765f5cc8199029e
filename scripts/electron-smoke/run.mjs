// Electron smoke test: packs main.js with the package and this machine's built binary into
// app.asar, unpacking the .node exactly as the README's "Packaging with Electron" section says,
// launches a real Electron on it against a loopback registry, and checks that it staged the
// runtime. Needs the built runtime-stager.<platform>.node in the repository root and
// `npm install --no-save electron @electron/asar`. Exits 0 when staged, 1 otherwise.
import { createPackageWithOptions } from '@electron/asar'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Registry } from '../testkit/registry.mjs'
import { tgz } from '../testkit/tar.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, '../..')
const require = createRequire(import.meta.url)
// The electron package's main export is the path of its binary.
const electron = require('electron')
const electronVersion = require('electron/package.json').version
// The pattern the README gives electron-builder's asarUnpack.
const UNPACK = '**/node_modules/kanban-runtime-stager*/**/*.node'
// A cold Electron start under xvfb plus the staging; far more than that means it hung.
const ELECTRON_TIMEOUT_MS = 120_000

function fail(message) {
  console.error(`electron-smoke: ${message}`)
  process.exit(1)
}

/** The .node the build left in the repository root, and its platform suffix (linux-x64-gnu). */
function builtBinary() {
  const found = fs.readdirSync(root).filter((f) => /^runtime-stager\..+\.node$/.test(f))
  if (found.length !== 1) fail(`expected one runtime-stager.*.node in ${root}, found ${found.length}`)
  return { file: found[0], platform: found[0].split('.')[1] }
}

/** The app folder as installed: main.js, the root package, and the one platform package. */
function installApp(appDir, binary) {
  fs.mkdirSync(appDir, { recursive: true })
  for (const f of ['main.js', 'package.json']) fs.copyFileSync(path.join(here, f), path.join(appDir, f))
  const pkg = path.join(appDir, 'node_modules', 'kanban-runtime-stager')
  fs.mkdirSync(pkg, { recursive: true })
  const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'))
  for (const f of ['package.json', ...manifest.files]) fs.cpSync(path.join(root, f), path.join(pkg, f), { recursive: true })
  const platformPkg = path.join(appDir, 'node_modules', `kanban-runtime-stager-${binary.platform}`)
  fs.mkdirSync(platformPkg)
  fs.copyFileSync(path.join(root, 'npm', binary.platform, 'package.json'), path.join(platformPkg, 'package.json'))
  fs.copyFileSync(path.join(root, binary.file), path.join(platformPkg, binary.file))
}

/** A small kanban tarball as npm publishes it: package/package.json and package/dist/cli.js. */
function kanbanTarball(version) {
  return tgz([
    { path: 'package/package.json', body: JSON.stringify({ name: 'kanban', version, bin: { kanban: 'dist/cli.js' } }) },
    { path: 'package/dist/cli.js', body: `#!/usr/bin/env node\nconsole.log('kanban ${version}')\n` },
  ])
}

/** Runs Electron on the app and resolves to its exit code and stdout. */
function runElectron(appAsar, env) {
  // --no-sandbox: the npm electron's chrome-sandbox is not setuid root, and this app loads no web content.
  let cmd = electron
  let args = [appAsar, '--no-sandbox']
  // Electron needs a display even without a window; xvfb-run gives it one on a headless Linux.
  if (process.platform === 'linux' && !process.env.DISPLAY) [cmd, args] = ['xvfb-run', ['-a', electron, ...args]]
  const childEnv = { ...process.env, ...env }
  // Set, it would make Electron a plain Node and skip the app.
  delete childEnv.ELECTRON_RUN_AS_NODE
  return new Promise((resolve, reject) => {
    // spawn, not spawnSync: the registry serves from this process's event loop. Its own process
    // group, so a timeout kills Electron and xvfb-run's X server with it.
    const group = process.platform !== 'win32'
    const child = spawn(cmd, args, { env: childEnv, stdio: ['ignore', 'pipe', 'inherit'], detached: group })
    let stdout = ''
    child.stdout.on('data', (d) => {
      stdout += d
      process.stdout.write(d)
    })
    const timer = setTimeout(() => (group ? process.kill(-child.pid, 'SIGKILL') : child.kill('SIGKILL')), ELECTRON_TIMEOUT_MS)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout })
    })
  })
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'krs-electron-'))
const registry = (await Registry.start()).withEtags()
try {
  const binary = builtBinary()
  const appDir = path.join(work, 'app')
  const resources = path.join(work, 'resources')
  installApp(appDir, binary)
  fs.mkdirSync(resources)
  const appAsar = path.join(resources, 'app.asar')
  await createPackageWithOptions(appDir, appAsar, { unpack: UNPACK })
  // Only the archive ships, so nothing may load from the folder it was packed from.
  fs.rmSync(appDir, { recursive: true })
  const unpacked = path.join(`${appAsar}.unpacked`, 'node_modules', `kanban-runtime-stager-${binary.platform}`, binary.file)
  if (!fs.existsSync(unpacked)) fail(`the README's asarUnpack pattern did not unpack ${binary.file}`)

  const tarball = path.join(work, 'kanban-1.0.0.tgz')
  fs.writeFileSync(tarball, kanbanTarball('1.0.0'))
  registry.publishFile('kanban', '1.0.0', tarball)
  // What the app bundles as resources/native: a node-pty folder to copy beside the runtime.
  const native = path.join(resources, 'native')
  fs.mkdirSync(path.join(native, 'node-pty', 'build', 'Release'), { recursive: true })
  fs.writeFileSync(path.join(native, 'node-pty', 'package.json'), '{"name":"node-pty","version":"1.1.0"}')
  fs.writeFileSync(path.join(native, 'node-pty', 'build', 'Release', 'pty.node'), 'not a real binary')
  const userData = path.join(work, 'user-data')

  const run = await runElectron(appAsar, { SMOKE_REGISTRY: registry.url, SMOKE_USER_DATA: userData, SMOKE_NATIVE_DEPS: native })
  const line = run.stdout.split('\n').find((l) => l.startsWith('SMOKE_RESULT '))
  if (!line) fail(`Electron printed no result (exit code ${run.code}, signal ${run.signal})`)
  const result = JSON.parse(line.slice('SMOKE_RESULT '.length))
  if (run.code !== 0 || result.outcome?.kind !== 'staged' || result.outcome.version !== '1.0.0') {
    fail(`expected {kind:'staged',version:'1.0.0'} and exit code 0, got ${JSON.stringify(result)} and ${run.code}`)
  }
  const pointerFile = path.join(userData, 'runtime-store', 'current.json')
  if (!fs.existsSync(pointerFile)) fail(`no pointer file at ${pointerFile}`)
  const pointer = JSON.parse(fs.readFileSync(pointerFile, 'utf8'))
  if (pointer.version !== '1.0.0' || !fs.existsSync(pointer.cliEntry)) fail(`the pointer names no staged CLI: ${JSON.stringify(pointer)}`)
  console.log(`electron-smoke: Electron ${electronVersion} staged 1.0.0 from app.asar: ${pointer.cliEntry}`)
} finally {
  await registry.close()
}
fs.rmSync(work, { recursive: true, force: true })
