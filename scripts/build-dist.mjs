// npm run build:dist [-- --target <triple>]: builds the addon exactly as the release workflow does,
// for this machine's target unless one is given, then checks what the binary needs at load time.
// - *-linux-gnu: cargo-zigbuild against glibc 2.17, so the binary loads on every glibc Linux
//   desktop still in use (Ubuntu 20.04, Debian 11, RHEL 8 and older), not only on the build host.
// - *-linux-musl: cargo-zigbuild too, linking musl statically.
// - macOS and Windows: the plain build (MACOSX_DEPLOYMENT_TARGET and the static MSVC runtime come
//   from the environment and .cargo/config.toml).
// zig comes from the `ziglang` Python package or PATH; cargo-zigbuild from PATH (napi installs it
// with cargo when it is missing).
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
/** The oldest glibc the linux-gnu binaries support. */
export const GLIBC_FLOOR = '2.17'

function hostTarget() {
  const arch = { x64: 'x86_64', arm64: 'aarch64' }[process.arch]
  if (!arch) throw new Error(`no release target for ${process.arch}`)
  if (process.platform === 'win32') return `${arch}-pc-windows-msvc`
  if (process.platform === 'darwin') return `${arch}-apple-darwin`
  if (process.platform === 'linux') {
    const musl = !process.report.getReport().header.glibcVersionRuntime
    return `${arch}-unknown-linux-${musl ? 'musl' : 'gnu'}`
  }
  throw new Error(`no release target for ${process.platform}`)
}

/** The `napi build` arguments the release uses for `target`. */
export function releaseArgs(target) {
  const args = ['build', '--platform', '--release']
  if (target.endsWith('-linux-gnu')) return [...args, '--target', `${target}.${GLIBC_FLOOR}`, '-x']
  if (target.endsWith('-linux-musl')) return [...args, '--target', target, '-x']
  return [...args, '--target', target]
}

/** The highest GLIBC_x.y symbol version a binary requires (its .dynstr names each one it uses). */
export function newestGlibc(file) {
  const names = fs.readFileSync(file).toString('latin1').match(/GLIBC_\d+\.\d+(\.\d+)?/g) ?? []
  const key = (v) => v.slice(6).split('.').map(Number)
  const cmp = (a, b) => {
    const [x, y] = [key(a), key(b)]
    for (let i = 0; i < 3; i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0)
    return 0
  }
  return names.sort(cmp).pop()?.slice(6) ?? null
}

function newerThan(a, b) {
  const [x, y] = [a.split('.').map(Number), b.split('.').map(Number)]
  for (let i = 0; i < 3; i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) > (y[i] ?? 0)
  return false
}

/** zig from the ziglang Python package, when zig is not on PATH: cargo-zigbuild looks there too. */
function withZig(env) {
  try {
    execFileSync('zig', ['version'], { stdio: 'ignore' })
  } catch {
    try {
      execFileSync('python3', ['-m', 'ziglang', 'version'], { stdio: 'ignore' })
    } catch {
      throw new Error('zig is needed for the linux builds: `pip install ziglang` (or put zig on PATH)')
    }
  }
  return env
}

function main() {
  const i = process.argv.indexOf('--target')
  const target = i > 0 ? process.argv[i + 1] : hostTarget()
  const args = releaseArgs(target)
  const env = target.includes('-linux-') ? withZig({ ...process.env }) : process.env
  console.log(`build:dist: napi ${args.join(' ')}`)
  execFileSync(process.execPath, [path.join(root, 'node_modules/@napi-rs/cli/dist/cli.js'), ...args], { cwd: root, stdio: 'inherit', env })
  if (target.endsWith('-linux-gnu')) {
    const suffix = target.startsWith('x86_64') ? 'linux-x64-gnu' : 'linux-arm64-gnu'
    const binary = path.join(root, `runtime-stager.${suffix}.node`)
    const needs = newestGlibc(binary)
    if (!needs || newerThan(needs, GLIBC_FLOOR)) {
      console.error(`build:dist: ${path.basename(binary)} needs GLIBC_${needs}, newer than the ${GLIBC_FLOOR} floor`)
      process.exit(1)
    }
    console.log(`build:dist: ${path.basename(binary)} needs glibc ${needs} at most (floor ${GLIBC_FLOOR})`)
  }
}

if (path.resolve(process.argv[1] ?? '') === fileURLToPath(import.meta.url)) main()
