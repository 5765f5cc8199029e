// The standard library's source for targets rustup cannot give std for here (Windows, macOS): the
// library/ folder of Debian sid's rust-src, built or checked with rustup's nightly and
// -Zbuild-std. Shared by npm run test:windows and npm run check:darwin.
//
// rust-src and the nightly go together: a nightly builds only the library of its own release.
// Moving on (sid drops this rust-src, the machine's nightly changes) means changing both pins.
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

/** The exit status that says "a pinned piece is not to be had", distinct from a failure's 1. */
export const UNAVAILABLE = 3

export const RUST_SRC = { suite: 'sid', version: '1.97.1+dfsg1-1' }
/** The rustc release (of rustup's `nightly`) that builds that library unchanged. */
export const RUSTC_RELEASE = '1.97.'

/** A pinned piece the registries no longer serve, or the machine no longer has. */
export class Unavailable extends Error {}

export function run(cmd, args, opts = {}) {
  execFileSync(cmd, args, { stdio: 'inherit', ...opts })
}

/** Runs `cmd` and returns its output, stdout and stderr together, and its status. */
export function capture(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts })
  if (r.error) throw r.error
  return { status: r.status, out: `${r.stdout}${r.stderr}` }
}

/** Checks that rustup's `nightly` is of the release the pinned rust-src needs. */
export function nightly() {
  const r = capture('rustc', ['+nightly', '--version'])
  if (r.status !== 0 || !r.out.startsWith(`rustc ${RUSTC_RELEASE}`)) {
    throw new Unavailable(
      `the rustup toolchain \`nightly\` is ${r.status === 0 ? r.out.trim() : 'not installed'}; the pinned rust-src ` +
        `${RUST_SRC.version} needs a rustc ${RUSTC_RELEASE}x nightly. Install one, or pin the rust-src of the nightly ` +
        'there is, in scripts/rust-src.mjs',
    )
  }
  return r.out.trim()
}

/** The Debian mirror the host's own apt uses: the one this machine reaches. */
function debianMirror() {
  for (const f of ['/etc/apt/sources.list.d/debian.sources', '/etc/apt/sources.list']) {
    if (!fs.existsSync(f)) continue
    const m = fs.readFileSync(f, 'utf8').match(/^\s*(?:URIs:|deb(?:\s+\[[^\]]*\])?)\s+(\S+\/debian)\/?\s*$/m)
    if (m) return m[1]
  }
  return 'http://deb.debian.org/debian'
}

/**
 * The path of `library/` of the pinned rust-src: from .cache/rust-src/<version>, or fetched with
 * apt (which checks the .deb against sid's signed index) and unpacked there. Throws Unavailable
 * when sid no longer has that version.
 */
export function rustSrcLibrary() {
  const { suite, version } = RUST_SRC
  const cache = path.join(root, '.cache')
  const dir = path.join(cache, 'rust-src', version)
  const library = path.join(dir, 'usr/lib/rustlib/src/rust/library')
  if (fs.existsSync(path.join(dir, '.complete'))) return library
  if (!fs.existsSync('/usr/share/keyrings/debian-archive-keyring.gpg')) {
    throw new Error("Debian's archive keyring is missing: apt-get install debian-archive-keyring")
  }
  // A private apt: its own lists, cache and sources naming only sid, and Debian's keyring to check
  // the signed index with. The host's apt state and sources are never touched.
  const apt = path.join(cache, 'rust-src', 'apt')
  fs.rmSync(apt, { recursive: true, force: true })
  for (const d of ['lists/partial', 'archives/partial', 'parts.d', 'dl']) fs.mkdirSync(path.join(apt, d), { recursive: true })
  fs.writeFileSync(path.join(apt, 'status'), '')
  fs.writeFileSync(
    path.join(apt, 'sources.list'),
    `deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${debianMirror()} ${suite} main\n`,
  )
  const conf = path.join(apt, 'apt.conf')
  fs.writeFileSync(
    conf,
    [
      `Dir::State::Lists "${apt}/lists";`,
      `Dir::State::status "${apt}/status";`,
      `Dir::Cache "${apt}";`,
      `Dir::Cache::archives "${apt}/archives";`,
      `Dir::Etc::SourceList "${apt}/sources.list";`,
      `Dir::Etc::SourceParts "${apt}/parts.d";`,
      `Dir::Etc::Preferences "${apt}/preferences";`,
      `Dir::Etc::PreferencesParts "${apt}/parts.d";`,
      // Only the Packages index: no translations, no AppStream metadata the host may configure.
      'Acquire::Languages "none";',
      'Acquire::IndexTargets::deb::DEP-11::DefaultEnabled "false";',
      'Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled "false";',
      'Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled "false";',
      // As root, apt's unprivileged download user could not write into this folder.
      ...(process.getuid() === 0 ? ['APT::Sandbox::User "root";'] : []),
      '',
    ].join('\n'),
  )
  const env = { ...process.env, APT_CONFIG: conf }
  run('apt-get', ['update', '-q'], { env })
  const dl = path.join(apt, 'dl')
  // apt checks the .deb against the hash in sid's Packages index, which InRelease signs.
  const got = capture('apt-get', ['download', `rust-src=${version}`], { cwd: dl, env })
  process.stdout.write(got.out)
  if (got.status !== 0) {
    if (/was not found|Unable to locate package/.test(got.out)) {
      const now = capture('apt-cache', ['policy', 'rust-src'], { env }).out.match(/Candidate:\s*(\S+)/)?.[1]
      throw new Unavailable(
        `Debian ${suite} no longer serves rust-src ${version}${now ? ` (it has ${now})` : ''}. Pin a rust-src and a ` +
          'nightly of one release in scripts/rust-src.mjs',
      )
    }
    throw new Error(`apt-get download rust-src=${version} failed`)
  }
  fs.rmSync(dir, { recursive: true, force: true })
  const deb = fs.readdirSync(dl).find((f) => f.endsWith('.deb'))
  run('dpkg-deb', ['-x', path.join(dl, deb), dir])
  fs.writeFileSync(path.join(dir, '.complete'), '')
  fs.rmSync(apt, { recursive: true, force: true })
  return library
}
