// The install test: pack the root package and the linux-x64-gnu package, install both from the
// tarballs into a fresh project with no network, compile a strict TypeScript consumer against
// the installed types, and run it against a loopback registry to stage a runtime-sized package
// (the synthetic one, so the test needs no network).
// Proves what a user gets, not what the repository has.
import { execFile, execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { syntheticRuntimeTarball } from '../fixtures/runtime.mjs'
import { Registry } from '../testkit/registry.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, '../..')
const TARGET = 'linux-x64-gnu'
const binary = `runtime-stager.${TARGET}.node`

if (`${process.platform}-${process.arch}` !== 'linux-x64') {
  console.log(`install test skipped: it checks the ${TARGET} package and this is ${process.platform}-${process.arch}`)
  process.exit(0)
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'krs-install-'))
const run = (cmd, args, cwd, env = {}) =>
  execFileSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] })
const npm = (args, cwd) => run('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], cwd)

try {
  // The platform package gets its binary as the release job's `napi artifacts` would put it.
  const platformDir = path.join(root, 'npm', TARGET)
  fs.copyFileSync(path.join(root, binary), path.join(platformDir, binary))
  let platformTgz
  try {
    platformTgz = path.join(work, npm(['pack', '--pack-destination', work], platformDir).trim().split('\n').pop())
  } finally {
    fs.rmSync(path.join(platformDir, binary))
  }
  const rootTgz = path.join(work, npm(['pack', '--pack-destination', work], root).trim().split('\n').pop())
  // The root package ships only what a user needs: the loader, the auto-update wiring, their
  // types, the CLI, the docs.
  const shipped = run('tar', ['-tzf', rootTgz], work).trim().split('\n').sort()
  const expectedFiles = [
    'LICENSE',
    'README.md',
    'auto-update.d.ts',
    'auto-update.js',
    'bin/kanban-runtime-stager.js',
    'index.d.ts',
    'index.js',
    'package.json',
  ]
  if (JSON.stringify(shipped) !== JSON.stringify(expectedFiles.map((f) => `package/${f}`))) {
    throw new Error(`the root package ships ${shipped.join(', ')}`)
  }

  const app = path.join(work, 'app')
  fs.mkdirSync(app)
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'install-test-app', private: true }))
  // --offline: nothing may come from a registry; the other platforms' optional packages are
  // skipped, as on a user's machine where they do not match.
  npm(['install', '--offline', rootTgz, platformTgz], app)
  const installed = path.join(app, 'node_modules')
  if (!fs.existsSync(path.join(installed, `kanban-runtime-stager-${TARGET}`, binary))) {
    throw new Error(`the ${TARGET} binary was not installed`)
  }
  if (fs.existsSync(path.join(installed, 'kanban-runtime-stager', binary))) {
    throw new Error('the root package must not carry a binary; the loader must find the platform package')
  }

  fs.copyFileSync(path.join(here, 'consumer.ts'), path.join(app, 'consumer.ts'))
  fs.writeFileSync(
    path.join(app, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: { strict: true, target: 'ES2022', module: 'commonjs', moduleResolution: 'node', types: [], outDir: 'out' },
      files: ['consumer.ts'],
    }),
  )
  run(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], app)

  const registry = (await Registry.start()).withEtags()
  try {
    registry.publishFile('kanban', '0.1.70', syntheticRuntimeTarball())
    const native = path.join(work, 'native')
    fs.mkdirSync(path.join(native, 'node-pty'), { recursive: true })
    fs.writeFileSync(path.join(native, 'node-pty', 'package.json'), '{"name":"node-pty"}')
    const userData = path.join(work, 'userData')
    const env = { USER_DATA: userData, NATIVE_DEPS: native, REGISTRY: registry.url }
    const first = JSON.parse(await runAsync(app, env))
    const cli = path.join(userData, 'runtime-store', 'versions', '0.1.70', 'dist', 'cli.js')
    const expected = { outcome: 'staged 0.1.70', pointer: '0.1.70', cli }
    if (JSON.stringify(first) !== JSON.stringify(expected)) throw new Error(`unexpected result ${JSON.stringify(first)}`)
    const second = JSON.parse(await runAsync(app, env))
    if (second.outcome !== 'already-staged') throw new Error(`unexpected second result ${JSON.stringify(second)}`)
    const downloads = registry.tarballRequests()
    if (downloads !== 1) throw new Error(`expected one tarball download, saw ${downloads}`)
    console.log(`install test: installed from ${path.basename(rootTgz)} + ${path.basename(platformTgz)}, strict consumer compiled, staged 0.1.70 then already-staged`)
    console.log('1 passed, 0 failed')
  } finally {
    await registry.close()
  }
} finally {
  fs.rmSync(work, { recursive: true, force: true })
}

/** Runs the compiled consumer without blocking this process's registry. */
function runAsync(app, env) {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['out/consumer.js'], { cwd: app, env: { ...process.env, ...env } }, (err, stdout) =>
      err ? reject(new Error(`consumer failed: ${err.message}\n${stdout}`)) : resolve(stdout.trim()),
    )
  })
}
