// npm run check:darwin: type-checks the crate for aarch64-apple-darwin and x86_64-apple-darwin on
// a Linux host, so that a Linux-only call in a cfg(unix) path (sync_file_range, /proc, O_DIRECT,
// a Linux-only libc item) fails here rather than on the first macOS build. rustup's nightly
// checks std itself from Debian's rust-src (-Zbuild-std, scripts/rust-src.mjs); ring's build
// script compiles its C with zig cc (scripts/darwin/zig-cc), zig coming from the ziglang wheel in
// .cache/zig-venv. Nothing is linked: that needs Apple's SDK (the Security and CoreFoundation
// frameworks, libiconv), which cannot be had here; the GitHub workflow's macOS jobs link and run.
//
// Exit status: 0 when both targets check, 1 when one fails, 3 (UNAVAILABLE) when the pinned
// rust-src or nightly cannot be had.
import fs from 'node:fs'
import path from 'node:path'
import { UNAVAILABLE, Unavailable, capture, nightly, root, run, rustSrcLibrary } from './rust-src.mjs'

const TARGETS = { 'aarch64-apple-darwin': 'aarch64-macos', 'x86_64-apple-darwin': 'x86_64-macos' }

/** The zig binary of the ziglang wheel, installed into .cache/zig-venv as .ci/run does. */
function zig() {
  const venv = path.join(root, '.cache', 'zig-venv')
  const python = path.join(venv, 'bin', 'python')
  if (!fs.existsSync(python)) run('python3', ['-m', 'venv', venv])
  const where = () => capture(python, ['-c', 'import ziglang, os; print(os.path.dirname(ziglang.__file__))'])
  let found = where()
  if (found.status !== 0) {
    run(path.join(venv, 'bin', 'pip'), ['install', '--quiet', '--disable-pip-version-check', 'ziglang'])
    found = where()
  }
  return path.join(found.out.trim(), 'zig')
}

function main() {
  if (process.platform !== 'linux' || !fs.existsSync('/etc/debian_version')) {
    console.log(`check:darwin skipped: it fetches rust-src with Debian's apt, and this is not Debian`)
    return 0
  }
  try {
    console.log(nightly())
    const library = rustSrcLibrary()
    const zigBin = zig()
    for (const [target, zigTarget] of Object.entries(TARGETS)) {
      const t = Date.now()
      const u = target.replaceAll('-', '_')
      const env = {
        ...process.env,
        __CARGO_TESTS_ONLY_SRC_ROOT: library,
        ZIG: zigBin,
        ZIG_CC_TARGET: zigTarget,
        [`CC_${u}`]: path.join(root, 'scripts/darwin/zig-cc'),
        [`AR_${u}`]: path.join(root, 'scripts/darwin/zig-ar'),
      }
      console.log(`== check:darwin: cargo check --target ${target}`)
      run(
        'cargo',
        ['+nightly', 'check', '-Zbuild-std=std,panic_abort', '--target', target, '--target-dir', path.join(root, '.cache', 'darwin', 'target')],
        { cwd: root, env },
      )
      console.log(`check:darwin: ${target} checks (${((Date.now() - t) / 1000).toFixed(0)} s)`)
    }
    return 0
  } catch (e) {
    if (e instanceof Unavailable) {
      console.error(`check:darwin: UNAVAILABLE: ${e.message}`)
      return UNAVAILABLE
    }
    if (e.status !== undefined) return 1
    throw e
  }
}

process.exitCode = main()
