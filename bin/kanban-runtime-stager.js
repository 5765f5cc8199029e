#!/usr/bin/env node
// The command line of kanban-runtime-stager: stage the latest runtime, inspect, prune and check a
// store, mark a version bad. The result goes to stdout; progress, logs and errors to stderr.
// Exit codes: 0 done, 1 the operation failed (or doctor found a problem), 2 bad usage.
'use strict'

const fs = require('node:fs')
const path = require('node:path')
const { parseArgs } = require('node:util')

const NAME = 'kanban-runtime-stager'

const HELP = {
  main: `Usage: ${NAME} <command> [options]

Commands:
  stage       check the registry and stage the newest runtime into a userData folder
  status      show the pointer, the staged versions (why each is kept), sizes and bad versions
  prune       remove what staging would prune, and report the space freed
  doctor      check a store and say what to do about each problem (exit 1 if any)
  mark-bad    mark a version bad (rolls the pointer back when it names that version)
  confirm     record that a staged runtime came up healthy (as the app's confirmLaunch does)
  verify-bundle
              check a Sigstore bundle offline, with the verifier provenance uses
  help        show a command's help: help <command>

Options for every command:
  --json                 print the result as one JSON line on stdout, failures too
  --verbose              print what the stager decides and why on stderr
                         (also with DEBUG=kanban-runtime-stager)
  -h, --help             this help, or a command's
  -v, --version          the package version

Exit codes: 0 done, 1 the operation failed (its error code is printed), 2 bad usage.
Colour is used on a terminal; NO_COLOR turns it off.`,
  // The bounds are the addon's own (optionLimits), read when the help is shown.
  get stage() {
    const { timeoutMs, minReleaseAgeMinutes } = loadBinding().optionLimits()
    return `Usage: ${NAME} stage --user-data DIR [options]

Options:
  --user-data DIR        the app's userData folder (the store is DIR/runtime-store)   required
  --native-deps DIR      folder holding node-pty/ to copy beside the runtime
                         default: the node-pty this package was installed with
  --current-version V    the runtime version running now                default: 0.0.0
  --registry URL         registry base URL       default: npm_config_registry, else npmjs
  --package NAME         package to stage                               default: kanban
  --tag TAG              dist-tag to follow                             default: latest
  --timeout-ms N         budget for the whole run, at most ${timeoutMs.max} (${timeoutMs.max / 3_600_000} h)
                                                                        default: 600000
  --proxy URL            proxy for every request     default: HTTPS_PROXY / HTTP_PROXY
  --min-release-age MIN  stage only releases at least MIN minutes old (at most ${minReleaseAgeMinutes.max}, ${minReleaseAgeMinutes.max / 1440} days)
                                                                        default: 0 (off)
  --registry-keys FILE   the registry's signing keys, a JSON file as /-/npm/v1/keys serves
                         ({"keys": [...]}) or its array      default: npmjs keys, embedded
  --require-signatures   refuse a version without a valid registry signature
  --host-node-version V  Node version the runtime will run on  default: this Node's version
  --provenance-repository OWNER/NAME
                         stage only a version whose npm provenance proves a GitHub Actions
                         run of OWNER/NAME built it                     default: not checked
  --provenance-workflow PATH
                         and that run's workflow file, e.g. .github/workflows/publish.yml
                         (needs --provenance-repository)
  --provenance-ref GLOB  and the git ref the run built, e.g. 'refs/tags/v*' (* is any run of
                         characters; needs --provenance-repository)
                         default: a branch or a tag (refs/heads/*, refs/tags/*); runs triggered
                         by pull_request or pull_request_target are always refused
  --sigstore-trust-root FILE
                         a Sigstore trusted_root.json to check provenance against
                         default: Sigstore's public-good trust root
  --max-bytes-per-second N
                         cap the download rate                          default: no cap
  --rollout-hours N      phased rollout: a release reaches this store bucket x N hours after
                         the cool-down (at most 8760, a year)           default: 0 (off)
  --rollout-bucket X     this store's place in the rollout, from 0 up to (not including) 1
                                                  default: the store's own random bucket
  --honor-deprecation    withdraw the pointed version when the registry deprecates it
  --bundled-version V    the app's bundled runtime: a withdrawal never points at a version
                         that is not newer                               default: unknown
  --json                 print the outcome (or the error) as one JSON line, no progress
  --verbose              print what the stager decides and why on stderr

On a terminal a progress bar shows the phase and the bytes downloaded; otherwise each phase is
printed on a line of its own. Both go to stderr; the outcome goes to stdout.`
  },
  status: `Usage: ${NAME} status --user-data DIR [--current-version V] [--json]

Shows the pointer, every staged version with its size, wholeness and why it is kept (pointed,
fallback, confirmed, running: the --current-version the app runs), its launch health (confirmed
healthy, or the launches begun and never confirmed), the store's total size, bad versions (and
for the newest, why and when their launch failed), leftovers of interrupted runs, and whether a
staging run holds the store, entries of the wrong type at a name the store owns, and what was
moved aside from one; the store's rollout bucket, the newest release the last check held back
for it (and when it is eligible), and the last version withdrawn because its publisher deprecated
it.`,
  prune: `Usage: ${NAME} prune --user-data DIR [--current-version V] [--json]

Removes what a staging run would: leftovers of interrupted runs and every staged version but the
pointed one, its fallback and the one the app runs (--current-version). Reports the space freed.
Prunes nothing while a staging run holds the store.`,
  doctor: `Usage: ${NAME} doctor --user-data DIR [--json]

Checks the store: the pointer parses and names a whole version that is not bad, every staged
version is whole, the lock is free, nothing stray is left, nothing of the wrong type sits at a
name the store owns. Says what to do about each problem; exits 1 when there is one. A pointed
version with launches never confirmed, and what was moved aside from a store name, are
reported as notes, not as problems. The rollout bucket, a release held back and a withdrawn
version are neither (see status).`,
  confirm: `Usage: ${NAME} confirm <cliEntry|version> --user-data DIR [--json]

Records that the runtime at <cliEntry> (or staged <version>) came up healthy, as the app's
confirmLaunch does: its unconfirmed launches are cleared and it becomes the rollback target of
choice, which pruning keeps. Exits 1 when that version is not staged whole, or is marked bad.`,
  'mark-bad': `Usage: ${NAME} mark-bad <version> --user-data DIR [--json]

Marks <version> bad. If the pointer names it, the pointer rolls back to the previous known-good
version, or is removed so the app runs its bundled runtime. Prints what the pointer now names.`,
  'verify-bundle': `Usage: ${NAME} verify-bundle --bundle FILE
         (--certificate-identity ID --certificate-oidc-issuer URL | --key PEM_FILE)
         [--trusted-root FILE] [--json] FILE_OR_DIGEST

Checks a Sigstore bundle (v0.1 to v0.3) offline with the verifier that checks npm provenance:
the certificate's chain, SCT and identity (or the managed key), the transparency log entry (SET,
inclusion proof, checkpoint; Rekor v1 or v2), RFC 3161 timestamps, and the signature over the
artifact. FILE_OR_DIGEST is the artifact, or sha256:<64 hex digits>; for a DSSE envelope, a
subject of its in-toto statement.

  --bundle FILE                  the bundle (*.sigstore.json)                      required
  --certificate-identity ID      the certificate's SAN (URI or email), exactly
  --certificate-oidc-issuer URL  the certificate's OIDC issuer, exactly
  --key PEM_FILE                 a managed key's PEM public key, instead of an identity
  --trusted-root FILE            a trusted_root.json   default: Sigstore's public-good root

Exit codes: 0 verified, 1 refused (the error code and the check that failed are printed), 2 bad
usage. Nothing here reaches a network.`,
}

class UsageError extends Error {}

function unexpectedArgument(arg) {
  return new UsageError(`unexpected argument '${safe(arg)}'`)
}

function unknownCommand(command) {
  return new UsageError(`unknown command '${safe(command)}'`)
}

// C0 controls, DEL and C1 controls: ESC (0x1b) and CSI (0x9b) start terminal escape sequences.
// Unicode bidirectional controls (the Arabic letter mark, LRM and RLM, the embeddings and
// overrides U+202A-U+202E, the isolates U+2066-U+2069) reorder what follows them on screen, so a
// version or path holding one can read as something it is not.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g
// What JSON.stringify leaves raw of the above: all but the C0 controls.
const JSON_RAW_CONTROL = /[\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g

/**
 * Text from the registry, a tarball or the disk (versions, paths, error messages), made safe to
 * print: a control character is shown as `\x1b` / `\u009b` / `\u202e` instead of reaching the
 * terminal.
 */
function safe(text) {
  return String(text).replace(CONTROL, (c) => {
    const n = c.charCodeAt(0)
    return n < 0x80 ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u${n.toString(16).padStart(4, '0')}`
  })
}

/** Names from the store or the registry, made safe and joined with commas. */
function safeList(names) {
  return names.map(safe).join(', ')
}

/**
 * One JSON line. JSON.stringify escapes C0 controls but prints DEL, C1 and bidirectional controls
 * raw: those are escaped here, and parse back to the same strings.
 */
function jsonLine(value) {
  return JSON.stringify(value).replace(JSON_RAW_CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

function readJson(file) {
  return JSON.parse(fs.readFileSync(file, 'utf8'))
}

/** What a caught value says: an Error's message, else the value itself. */
function messageOf(e) {
  return e instanceof Error ? e.message : String(e)
}

/** `f(value)`, or undefined when the option was not given. */
function ifGiven(value, f) {
  return value === undefined ? undefined : f(value)
}

function loadBinding() {
  return require('../index.js')
}

function packageVersion() {
  return require('../package.json').version
}

/** ANSI colours, only where `stream` is a terminal and NO_COLOR is unset (https://no-color.org). */
function painter(stream) {
  const on = Boolean(stream?.isTTY) && !process.env.NO_COLOR
  const paint = (code) => (text) => (on ? `\x1b[${code}m${text}\x1b[0m` : text)
  return { green: paint(32), yellow: paint(33), red: paint(31), bold: paint(1), dim: paint(2) }
}

function defaultNativeDeps() {
  try {
    // nativeDepsSource is the folder that *contains* node-pty/.
    return path.dirname(path.dirname(require.resolve('node-pty/package.json')))
  } catch {
    return undefined
  }
}

function mib(n) {
  return `${(n / (1024 * 1024)).toFixed(1)} MiB`
}

/** Progress on stderr: one bar redrawn in place on a terminal, else a line per phase. */
function progressReporter(err, tty) {
  let last = null
  return {
    onProgress(p) {
      if (tty) {
        const width = 30
        const frac = p.totalBytes ? Math.min(1, p.downloadedBytes / p.totalBytes) : 0
        const bar = p.phase === 'downloading' ? `[${'#'.repeat(Math.round(frac * width)).padEnd(width)}] ` : ''
        const bytes = p.downloadedBytes ? `${mib(p.downloadedBytes)}${p.totalBytes ? ` / ${mib(p.totalBytes)}` : ''}` : ''
        tty.write(`\r\x1b[K${safe(p.phase).padEnd(16)} ${bar}${bytes}`)
      } else if (p.phase !== last) {
        err(`${safe(p.phase)}${p.phase === 'downloading' && p.totalBytes ? ` ${mib(p.totalBytes)}` : ''}`)
      }
      last = p.phase
    },
    done() {
      if (tty && last) tty.write('\r\x1b[K')
    },
  }
}

/** Log entries on stderr, for --verbose and DEBUG=kanban-runtime-stager. */
function logPrinter(err) {
  return (entry) => {
    const fields = Object.entries(entry.fields ?? {})
      .map(([k, v]) => `${k}=${safe(v)}`)
      .join(' ')
    err(`${entry.level.padEnd(5)} ${safe(entry.message)}${fields ? `  ${fields}` : ''}`)
  }
}

function verbose(values) {
  const debug = (process.env.DEBUG ?? '').split(/[\s,]+/)
  return Boolean(values.verbose) || debug.includes(NAME) || debug.includes('*')
}

const COMMON = {
  help: { type: 'boolean', short: 'h' },
  json: { type: 'boolean' },
  verbose: { type: 'boolean' },
}

/**
 * @typedef {{ values: Record<string, any>, positionals: string[] }} Parsed
 * @typedef {{ log: (text: string) => void, error: (text: string) => void, tty?: NodeJS.WriteStream | null,
 *   paint: Paint, errPaint: Paint }} Out where the command line prints; main fills in the painters
 * @typedef {ReturnType<typeof painter>} Paint
 */

/**
 * Parses a command's arguments; `positionals` is how many it takes (extra ones are bad usage).
 * @returns {Parsed}
 */
function parse(argv, options, positionals = 0) {
  const parsed = /** @type {Parsed} */ (parseArgs({ args: argv, options: { ...COMMON, ...options }, allowPositionals: true, strict: true }))
  if (!parsed.values.help && parsed.positionals.length > positionals) {
    throw unexpectedArgument(parsed.positionals[positionals])
  }
  return parsed
}

/** A command: parses its arguments and answers --help itself, else hands the parse to `run`. */
function defineCommand(name, options, run, positionals = 0) {
  return (argv, out) => {
    const parsed = parse(argv, options, positionals)
    return parsed.values.help ? out.log(HELP[name]) : run(parsed, out)
  }
}

function requireUserData(values) {
  if (!values['user-data']) throw new UsageError('--user-data DIR is required')
  return path.resolve(values['user-data'])
}

/**
 * `--NAME N`: a whole number in decimal digits in `range` (the addon's own, from optionLimits, so
 * that a flag it would refuse is bad usage here and never reaches it as a failed operation), or
 * undefined when not given. Anything else (`1e12`, `0x10`, `-1`, a fraction, a number past the
 * maximum) is bad usage.
 */
function integerOption(values, name, { min, max }, what) {
  return ifGiven(values[name], (text) => {
    const n = /^[0-9]+$/.test(text) ? Number(text) : NaN
    if (!(Number.isSafeInteger(n) && n >= min && n <= max)) {
      throw new UsageError(`--${name} must be ${what} from ${min} to ${max}, not '${safe(text)}'`)
    }
    return n
  })
}

/** `--registry-keys FILE`: the registry's `/-/npm/v1/keys` response saved as is, or its `keys` array. */
function readKeys(file) {
  let parsed
  try {
    parsed = readJson(path.resolve(file))
  } catch (e) {
    throw new UsageError(`--registry-keys: cannot read ${safe(file)} as JSON: ${safe(messageOf(e))}`)
  }
  const keys = Array.isArray(parsed) ? parsed : parsed?.keys
  if (!Array.isArray(keys)) throw new UsageError('--registry-keys: expected {"keys": [...]} or an array of keys')
  return keys
}

const USER_DATA = { 'user-data': { type: 'string' } }
const STORE_OPTIONS = { ...USER_DATA, 'current-version': { type: 'string' } }
const STAGE_OPTIONS = {
  ...STORE_OPTIONS,
  'native-deps': { type: 'string' },
  registry: { type: 'string' },
  package: { type: 'string' },
  tag: { type: 'string' },
  'timeout-ms': { type: 'string' },
  proxy: { type: 'string' },
  'min-release-age': { type: 'string' },
  'registry-keys': { type: 'string' },
  'require-signatures': { type: 'boolean' },
  'host-node-version': { type: 'string' },
  'provenance-repository': { type: 'string' },
  'provenance-workflow': { type: 'string' },
  'provenance-ref': { type: 'string' },
  'sigstore-trust-root': { type: 'string' },
  'max-bytes-per-second': { type: 'string' },
  'rollout-hours': { type: 'string' },
  'rollout-bucket': { type: 'string' },
  'honor-deprecation': { type: 'boolean' },
  'bundled-version': { type: 'string' },
}

async function stage({ values }, out) {
  const options = stageOptions(values)
  const { checkAndStageLatestRuntime, readPointer } = loadBinding()
  const started = Date.now()
  const outcome = await runStaging(checkAndStageLatestRuntime, options, values, out)
  const ms = Date.now() - started
  if (values.json) return out.log(jsonLine({ ...outcome, ms }))
  // A version the trust policy refused was passed over, not fatal: the outcome says what was
  // staged instead, and the warning why the newer one was not.
  if (outcome.refused) {
    out.error(`${out.errPaint.yellow(`warning ${safe(outcome.refused.code)}`)}: ${safe(outcome.refused.message)}`)
  }
  // A withdrawal happened before the outcome's staging, if any: it is said first.
  if (outcome.withdrawn) out.log(withdrawnLine(outcome.withdrawn, out.paint))
  const line = outcomeLine(outcome, ms, () => safe(readPointer(options.userData)?.cliEntry), out.paint)
  if (line !== undefined) out.log(line)
  if (outcome.pending) out.log(pendingLine(outcome.pending))
}

/** A release the rollout holds back for this store, in words. */
function pendingLine(p) {
  return `pending:  ${safe(p.version)}, eligible for this store at ${safe(p.eligibleAt)}`
}

/** A version withdrawn because its publisher deprecated it, in words. */
function withdrawnLine(w, c) {
  const now = w.pointer ? safe(w.pointer) : 'the bundled runtime'
  return `${c.yellow(`withdrawn ${safe(w.version)}`)}: deprecated by its publisher (${safe(w.reason)}); the pointer now names ${now}`
}

/** `--rollout-bucket X`: a decimal from 0 up to (not including) 1, or undefined when not given. */
function bucketOption(values) {
  return ifGiven(values['rollout-bucket'], (text) => {
    const n = /^(0|0?\.[0-9]+)$/.test(text) ? Number(text) : NaN
    if (!(n >= 0 && n < 1)) throw new UsageError(`--rollout-bucket must be a decimal from 0 up to (not including) 1, not '${safe(text)}'`)
    return n
  })
}

/** The options checkAndStageLatestRuntime takes, from the command line; the first bad one throws. */
function stageOptions(values) {
  const { provenance, sigstoreTrustRoot } = provenanceOptions(values)
  const userData = requireUserData(values)
  const nativeDepsSource = nativeDeps(values)
  const limits = loadBinding().optionLimits()
  const timeoutMs = integerOption(values, 'timeout-ms', limits.timeoutMs, 'a whole number of milliseconds')
  const minReleaseAgeMinutes = integerOption(values, 'min-release-age', limits.minReleaseAgeMinutes, 'a whole number of minutes')
  const registryKeys = ifGiven(values['registry-keys'], readKeys)
  const maxBytesPerSecond = integerOption(values, 'max-bytes-per-second', limits.cap, 'a whole number')
  const rolloutHours = integerOption(values, 'rollout-hours', limits.rolloutHours, 'a whole number of hours')
  const rolloutBucket = bucketOption(values)
  return {
    userData,
    currentVersion: values['current-version'] ?? '0.0.0',
    nativeDepsSource,
    registry: values.registry,
    packageName: values.package,
    distTag: values.tag,
    timeoutMs,
    proxy: values.proxy,
    minReleaseAgeMinutes,
    registryKeys,
    requireSignatures: values['require-signatures'],
    hostNodeVersion: values['host-node-version'],
    provenance,
    sigstoreTrustRoot,
    maxBytesPerSecond,
    rolloutHours,
    rolloutBucket,
    honorDeprecation: values['honor-deprecation'],
    bundledVersion: values['bundled-version'],
  }
}

/** `provenance` and `sigstoreTrustRoot` (the trust root file's text), each undefined when not asked for. */
function provenanceOptions(values) {
  const repository = values['provenance-repository']
  for (const flag of ['provenance-workflow', 'provenance-ref', 'sigstore-trust-root']) {
    if (values[flag] !== undefined && repository === undefined) throw new UsageError(`--${flag} needs --provenance-repository`)
  }
  return {
    provenance: ifGiven(repository, () => ({
      repository,
      workflowPath: values['provenance-workflow'],
      ref: values['provenance-ref'],
    })),
    sigstoreTrustRoot: ifGiven(values['sigstore-trust-root'], (file) => fs.readFileSync(file, 'utf8')),
  }
}

/** The folder that holds node-pty/: --native-deps, else the node-pty this package was installed with. */
function nativeDeps(values) {
  const dir = values['native-deps'] ? path.resolve(values['native-deps']) : defaultNativeDeps()
  if (!dir) throw new UsageError('node-pty is not installed here; pass --native-deps DIR')
  return dir
}

/** Runs the staging with progress and logs on stderr (none with --json); resolves to its outcome. */
function runStaging(checkAndStageLatestRuntime, options, values, out) {
  if (!values.json) out.error(`checking ${safe(values.package ?? 'kanban')}@${safe(values.tag ?? 'latest')} ...`)
  const progress = values.json ? null : progressReporter(out.error, out.tty)
  const controller = new AbortController()
  // Ctrl-C aborts cleanly: the partial folder is removed and the store left as it was.
  const onSigint = () => controller.abort()
  process.once('SIGINT', onSigint)
  return checkAndStageLatestRuntime({
    ...options,
    signal: controller.signal,
    onProgress: progress?.onProgress,
    onLog: verbose(values) ? logPrinter(out.error) : undefined,
  }).finally(() => {
    process.removeListener('SIGINT', onSigint)
    progress?.done()
  })
}

/** The outcome in words, undefined for a kind not known here; `cliEntry` reads the new pointer's entry. */
function outcomeLine(outcome, ms, cliEntry, c) {
  switch (outcome.kind) {
    case 'up-to-date':
      return `${c.green('up-to-date')} (${ms} ms)`
    case 'bad-version':
      return `${c.yellow('bad-version')}: ${safe(outcome.version)} is marked bad; nothing staged (${ms} ms)`
    case 'already-staged':
      return `${c.green('already-staged')}: ${cliEntry()} (${ms} ms)`
    case 'staged':
      return `${c.green(c.bold(`staged ${safe(outcome.version)}`))} in ${ms} ms: ${cliEntry()}`
  }
}

/**
 * Prints what the addon's readStoreStatus found.
 * @param {Parsed} parsed
 * @param {Out} out
 */
async function status({ values }, out) {
  const userData = requireUserData(values)
  const report = await loadBinding().readStoreStatus(userData, { currentVersion: values['current-version'] })
  if (values.json) return out.log(jsonLine(report))
  const { store: root, pointer, runnable, versions, badVersions: bad, launchFailures, partials, locked, totalBytes } = report
  const c = out.paint
  out.log(`store:    ${safe(root)} (${mib(totalBytes)})`)
  out.log(`pointer:  ${pointer ? `${safe(pointer.version)}${pointer.previous ? ` (fallback ${safe(pointer.previous)})` : ''}` : 'none (the app runs its bundled runtime)'}`)
  out.log(`runs:     ${runnable ? safe(runnable) : 'bundled runtime'}`)
  out.log('versions:')
  if (versions.length === 0) out.log('  none')
  for (const v of versions) out.log(versionLine(v, c))
  out.log(`bad:      ${bad.length ? safeList(bad) : 'none'}`)
  for (const f of launchFailures) out.log(`  ${safe(f.version)}: ${failureWords(f)}`)
  out.log(`lock:     ${locked ? 'held: a staging run is in progress' : 'free'}`)
  if (partials.length) out.log(`partials: ${safeList(partials)} (removed by the next stage run or prune)`)
  const { misplaced, movedAside } = report
  if (misplaced.length) {
    const list = misplaced.map((m) => `${safe(m.name)} (${FOUND_WORDS[m.found] ?? 'not a regular file'} where a ${m.expected} belongs)`)
    out.log(`${c.red('misplaced')}: ${list.join(', ')} (moved aside by the next stage run)`)
  }
  if (movedAside.length) out.log(`moved aside: ${safeList(movedAside)} (kept: delete once looked at)`)
  if (report.trash.length) {
    const list = report.trash.map((t) => `${safe(t.name)} (${mib(t.bytes)})`)
    out.log(`trash:    ${list.join(', ')} (still held by another process; deleted by a later sweep)`)
  }
  const { rolloutBucket, pending, withdrawn } = report
  out.log(
    `rollout:  ${
      rolloutBucket === null
        ? 'no bucket yet (drawn by the first check with a rollout)'
        : `bucket ${rolloutBucket.toFixed(4)} (a release reaches this store ${(rolloutBucket * 100).toFixed(1)} % into a rollout)`
    }`,
  )
  if (pending) out.log(pendingLine(pending))
  if (withdrawn) out.log(withdrawnLine(withdrawn, c))
}

/**
 * A staged version's row in status: pointed mark, version, size, wholeness, bad mark, why it is kept.
 * @param {import('../index.js').VersionOnDisk} v
 * @param {Paint} c
 */
function versionLine(v, c) {
  const note = v.keptBecause.length ? v.keptBecause.join(', ') : 'not kept: the next staging run or prune removes it'
  return `  ${v.pointed ? '*' : ' '} ${safe(v.version).padEnd(16)} ${mib(v.bytes).padStart(10)}  ${v.whole ? 'whole' : c.red('DAMAGED')}${v.bad ? ` ${c.yellow('bad')}` : ''}  ${note}${health(v, c)}`
}

/**
 * Why and when a version failed to launch, in words.
 * @param {import('../index.js').LaunchFailureNote} f
 */
function failureWords(f) {
  const why =
    f.reason === 'unconfirmed-launches'
      ? 'rolled back: its launches were never confirmed healthy'
      : `the app reported its launch failed${f.detail != null ? ` (${safe(f.detail)})` : ''}`
  // A hand-edited record may hold any number; a date out of range would throw.
  const at = new Date(f.at)
  return Number.isNaN(at.getTime()) ? why : `${why}, ${at.toISOString()}`
}

/**
 * A version's launch health in words: confirmed, launches never confirmed, or nothing yet.
 * @param {import('../index.js').VersionOnDisk} v
 * @param {Paint} c
 */
function health(v, c) {
  if (v.confirmed) return `; ${c.green('healthy')} (a launch was confirmed)`
  if (v.attempts > 0) return `; ${c.yellow(`${v.attempts} launch${v.attempts === 1 ? '' : 'es'} never confirmed`)}`
  return ''
}

async function prune({ values }, out) {
  const userData = requireUserData(values)
  const result = await loadBinding().pruneStore(userData, values['current-version'])
  if (values.json) return out.log(jsonLine(result))
  if (result.busy) return out.log(out.paint.yellow('a staging run holds the store: nothing pruned (it prunes when it finishes)'))
  if (result.removed.length === 0) return out.log('nothing to prune')
  out.log(`removed ${safeList(result.removed)}; freed ${mib(result.freedBytes)}`)
}

/** What lstat found at a store name, in words (`MisplacedEntry.found`). */
const FOUND_WORDS = {
  file: 'a regular file',
  folder: 'a folder',
  link: 'a symbolic link',
  fifo: 'a FIFO',
  socket: 'a socket',
  device: 'a device',
}

/**
 * Prints what the addon's diagnoseStore found; exit code 1 when it found a problem.
 * @param {Parsed} parsed
 * @param {Out} out
 */
async function doctor({ values }, out) {
  const userData = requireUserData(values)
  const { healthy, problems, notes } = await loadBinding().diagnoseStore(userData)
  if (values.json) {
    out.log(jsonLine({ ok: healthy, problems: problems.map(({ problem, fix }) => ({ problem, fix })), notes: notes.map((n) => n.note) }))
  } else {
    if (healthy) out.log(out.paint.green('the store is healthy'))
    for (const p of problems) out.log(`${out.paint.red('problem')}: ${safe(p.problem)}\n  fix: ${safe(p.fix)}`)
    for (const n of notes) out.log(`${out.paint.yellow('note')}: ${safe(n.note)}`)
  }
  return healthy ? 0 : 1
}

async function confirm({ values, positionals }, out) {
  const userData = requireUserData(values)
  if (positionals.length !== 1) throw new UsageError('confirm takes exactly one <cliEntry|version>')
  const b = loadBinding()
  const [target] = positionals
  // A version is named by its staged CLI, the same path the app confirms.
  const cliEntry = path.isAbsolute(target) ? target : b.cliEntryFor(userData, target)
  const version = b.confirmLaunch(userData, cliEntry)
  if (values.json) {
    out.log(jsonLine({ confirmed: version }))
  } else if (version) {
    out.log(`confirmed ${safe(version)} healthy`)
  } else {
    out.error(out.errPaint.red(`not confirmed: ${safe(target)} is not a whole staged version that is not bad`))
  }
  return version ? 0 : 1
}

async function markBad({ values, positionals }, out) {
  const userData = requireUserData(values)
  if (positionals.length !== 1) throw new UsageError('mark-bad takes exactly one <version>')
  const now = loadBinding().markBadVersion(userData, positionals[0])
  if (values.json) return out.log(jsonLine({ marked: positionals[0], pointer: now }))
  out.log(`marked ${safe(positionals[0])} bad; pointer now: ${now ? safe(now) : 'none (bundled runtime)'}`)
}

const VERIFY_OPTIONS = {
  bundle: { type: 'string' },
  'certificate-identity': { type: 'string' },
  'certificate-oidc-issuer': { type: 'string' },
  key: { type: 'string' },
  'trusted-root': { type: 'string' },
}

/** A file's text for verify-bundle; one that cannot be read fails the check (exit 1), coded. */
function readInput(file, what) {
  try {
    return fs.readFileSync(file, 'utf8')
  } catch (e) {
    throw Object.assign(new Error(`cannot read the ${what} ${file}: ${messageOf(e)}`), { code: 'EIO', path: file })
  }
}

/** The artifact's SHA-256 in hex: the digest given as sha256:<hex>, else the file's. */
async function artifactSha256(input) {
  const digest = /^sha256:([0-9a-fA-F]{64})$/.exec(input)
  if (digest && !fs.existsSync(input)) return digest[1].toLowerCase()
  const hash = require('node:crypto').createHash('sha256')
  try {
    for await (const chunk of fs.createReadStream(input)) hash.update(chunk)
  } catch (e) {
    throw Object.assign(new Error(`cannot read the artifact ${input}: ${messageOf(e)}`), { code: 'EIO', path: input })
  }
  return hash.digest('hex')
}

async function verifyBundleCommand({ values, positionals }, out) {
  if (!values.bundle) throw new UsageError('--bundle FILE is required')
  if (positionals.length !== 1) throw new UsageError('verify-bundle takes exactly one FILE_OR_DIGEST')
  const identity = values['certificate-identity']
  const issuer = values['certificate-oidc-issuer']
  const byKey = values.key !== undefined
  if (byKey ? identity !== undefined || issuer !== undefined : identity === undefined || issuer === undefined) {
    throw new UsageError('give --key, or both --certificate-identity and --certificate-oidc-issuer')
  }
  const options = {
    bundle: readInput(values.bundle, 'bundle'),
    artifactSha256: await artifactSha256(positionals[0]),
    certificateIdentity: identity,
    certificateOidcIssuer: issuer,
    key: byKey ? readInput(values.key, 'key') : undefined,
    trustedRoot: ifGiven(values['trusted-root'], (f) => readInput(f, 'trusted root')),
  }
  loadBinding().verifyBundle(options)
  if (values.json) return out.log(jsonLine({ verified: true }))
  out.log(out.paint.green('verified'))
}

const COMMANDS = {
  stage: defineCommand('stage', STAGE_OPTIONS, stage),
  status: defineCommand('status', STORE_OPTIONS, status),
  prune: defineCommand('prune', STORE_OPTIONS, prune),
  doctor: defineCommand('doctor', USER_DATA, doctor),
  'mark-bad': defineCommand('mark-bad', USER_DATA, markBad, 1),
  confirm: defineCommand('confirm', USER_DATA, confirm, 1),
  'verify-bundle': defineCommand('verify-bundle', VERIFY_OPTIONS, verifyBundleCommand, 1),
}

/** The error's code, EUNKNOWN where it has none. */
function errorCode(err) {
  return typeof err?.code === 'string' ? err.code : 'EUNKNOWN'
}

/** The hint printed under an error at a terminal: the addon gives every error of its own one. */
function hintFor(err) {
  return typeof err?.hint === 'string' && err.hint ? err.hint : undefined
}

/** An error as one JSON object: its code, message and structured fields. */
function errorJson(err) {
  const { stack: _stack, ...fields } = Object.getOwnPropertyDescriptors(err ?? {})
  const error = { code: errorCode(err), message: String(err?.message ?? err) }
  for (const [k, d] of Object.entries(fields)) if (d.enumerable && !(k in error)) error[k] = d.value
  return { error }
}

/**
 * Runs the command line on `argv`; resolves to the exit code.
 * @param {string[]} argv
 * @param {Omit<Out, 'paint' | 'errPaint'> & Partial<Out>} where
 */
async function main(argv, where = console) {
  /** @type {Out} */
  const out = { ...where, log: where.log, error: where.error, paint: where.paint ?? painter(null), errPaint: where.errPaint ?? painter(null) }
  const [command, ...rest] = argv
  const json = rest.includes('--json')
  try {
    return await dispatch(command, rest, out)
  } catch (err) {
    return reportError(err, command, json, out)
  }
}

/** Runs `command` with the arguments after it; resolves to the exit code. */
async function dispatch(command, rest, out) {
  if (command === '--version' || command === '-v') {
    out.log(packageVersion())
    return 0
  }
  if (command === undefined || command === '--help' || command === '-h') {
    ;(command === undefined ? out.error : out.log)(HELP.main)
    return command === undefined ? 2 : 0
  }
  if (command === 'help') return help(rest, out)
  const run = COMMANDS[command]
  if (!run) throw unknownCommand(command)
  return (await run(rest, out)) ?? 0
}

/** `help [command]`: the exit code. */
function help(rest, out) {
  if (rest.length > 1) throw unexpectedArgument(rest[1])
  if (rest[0] !== undefined && !HELP[rest[0]]) throw unknownCommand(rest[0])
  out.log(HELP[rest[0] ?? 'main'])
  return 0
}

/** Prints an error: bad usage with the command's help (exit code 2), else a failed operation (1). */
function reportError(err, command, json, out) {
  if (err instanceof UsageError || err?.code?.startsWith?.('ERR_PARSE_ARGS')) {
    out.error(`${out.errPaint.red('error')}: ${safe(err.message)}\n\n${HELP[command] ?? HELP.main}`)
    return 2
  }
  if (json) {
    out.log(jsonLine(errorJson(err)))
    return 1
  }
  out.error(`${out.errPaint.red(`error ${safe(errorCode(err))}`)}: ${safe(err?.message ?? err)}`)
  const hint = hintFor(err)
  if (hint) out.error(`hint: ${safe(hint)}`)
  return 1
}

if (require.main === module) {
  const out = {
    log: console.log,
    error: console.error,
    tty: process.stderr.isTTY ? process.stderr : null,
    paint: painter(process.stdout),
    errPaint: painter(process.stderr),
  }
  main(process.argv.slice(2), out).then((code) => {
    process.exitCode = code
  })
}

module.exports = { main }
