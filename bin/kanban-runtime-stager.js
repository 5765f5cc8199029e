#!/usr/bin/env node
// The command line of kanban-runtime-stager: stage the latest runtime, inspect a store, mark a
// version bad. Exit codes: 0 done, 1 the operation failed (the error's code is printed),
// 2 bad usage.
'use strict'

const path = require('node:path')
const { parseArgs } = require('node:util')

const HELP = {
  main: `Usage: kanban-runtime-stager <command> [options]

Commands:
  stage       check the registry and stage the newest runtime into a userData folder
  status      show the pointer, the staged versions with their sizes, and bad versions
  mark-bad    mark a version bad (rolls the pointer back when it names that version)

Run 'kanban-runtime-stager <command> --help' for a command's options.
Exit codes: 0 done, 1 the operation failed (its error code is printed), 2 bad usage.`,
  stage: `Usage: kanban-runtime-stager stage --user-data DIR [options]

Options:
  --user-data DIR        the app's userData folder (the store is DIR/kanban-runtime)   required
  --native-deps DIR      folder holding node-pty/ to copy beside the runtime
                         default: the node-pty this package was installed with
  --current-version V    the runtime version running now                default: 0.0.0
  --registry URL         registry base URL       default: npm_config_registry, else npmjs
  --package NAME         package to stage                               default: kanban
  --tag TAG              dist-tag to follow                             default: latest
  --timeout-ms N         budget for the whole run                       default: 600000
  --proxy URL            proxy for every request     default: HTTPS_PROXY / HTTP_PROXY
  --max-bytes-per-second N  cap the download rate                      default: no cap
  --json                 print the outcome as one JSON line (no progress)

On a terminal a progress bar shows the phase and the bytes downloaded; otherwise each phase is
printed on a line of its own.`,
  status: `Usage: kanban-runtime-stager status --user-data DIR [--json]

Shows the pointer, every staged version with its size and wholeness, bad versions, partials,
and whether a staging run holds the store lock.`,
  'mark-bad': `Usage: kanban-runtime-stager mark-bad <version> --user-data DIR [--json]

Marks <version> bad. If the pointer names it, the pointer rolls back to the previous known-good
version, or is removed so the app runs its bundled runtime. Prints what the pointer now names.`,
}

/** One-line hints for the error codes a person at a terminal can act on. */
const HINTS = {
  ETIMEDOUT: 'the registry did not answer in time; check the network or raise --timeout-ms',
  ENETWORK: 'the registry could not be reached; check the network, --registry and --proxy',
  EHTTP: 'the registry refused the request; check --registry, --package and credentials',
  EINTEGRITY: 'the tarball did not match the registry integrity; a mirror or proxy may be corrupting it',
  ENOSPC: 'the disk is full; free space under the userData folder and retry',
  ENATIVE_DEPS: 'pass --native-deps DIR pointing at a folder that contains node-pty/',
  EINVALID_VERSION: 'the dist-tag names something that is not a semver version',
  EUNSAFE_ENTRY: 'the tarball holds a link or a path outside its folder; it was refused',
  ETOO_LARGE: 'the tarball exceeds the unpack limits',
  EBADARCHIVE: 'the tarball is truncated or corrupt',
  EBADMANIFEST: 'the package document lacks the tag, version or dist fields needed',
  EMISSING_CLI: 'the package has no dist/cli.js, so it cannot be run',
  EINVALID_OPTION: 'check the option named in the message',
  EIO: 'a file operation failed; the message names the path',
  EABORTED: 'the run was aborted',
}

class UsageError extends Error {}

function loadBinding() {
  return require('../index.js')
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

/** Progress on a terminal: one bar redrawn in place on stderr. Elsewhere: a line per phase. */
function progressReporter(out, tty) {
  let last = null
  return {
    onProgress(p) {
      if (tty) {
        const width = 30
        const frac = p.totalBytes ? Math.min(1, p.downloadedBytes / p.totalBytes) : 0
        const bar = p.phase === 'downloading' ? `[${'#'.repeat(Math.round(frac * width)).padEnd(width)}] ` : ''
        const bytes = p.downloadedBytes ? `${mib(p.downloadedBytes)}${p.totalBytes ? ` / ${mib(p.totalBytes)}` : ''}` : ''
        tty.write(`\r\x1b[K${p.phase.padEnd(16)} ${bar}${bytes}`)
      } else if (p.phase !== last) {
        out.log(`${p.phase}${p.phase === 'downloading' && p.totalBytes ? ` ${mib(p.totalBytes)}` : ''}`)
      }
      last = p.phase
    },
    done() {
      if (tty && last) tty.write('\r\x1b[K')
    },
  }
}

function parse(argv, options) {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { help: { type: 'boolean', short: 'h' }, json: { type: 'boolean' }, ...options },
    allowPositionals: true,
    strict: true,
  })
  return { values, positionals }
}

function requireUserData(values) {
  if (!values['user-data']) throw new UsageError('--user-data DIR is required')
  return path.resolve(values['user-data'])
}

async function stage(argv, out) {
  const { values } = parse(argv, {
    'user-data': { type: 'string' },
    'native-deps': { type: 'string' },
    'current-version': { type: 'string' },
    registry: { type: 'string' },
    package: { type: 'string' },
    tag: { type: 'string' },
    'timeout-ms': { type: 'string' },
    proxy: { type: 'string' },
    'max-bytes-per-second': { type: 'string' },
  })
  if (values.help) return out.log(HELP.stage)
  const userData = requireUserData(values)
  const nativeDepsSource = values['native-deps'] ? path.resolve(values['native-deps']) : defaultNativeDeps()
  if (!nativeDepsSource) throw new UsageError('node-pty is not installed here; pass --native-deps DIR')
  const timeoutMs = values['timeout-ms'] === undefined ? undefined : Number(values['timeout-ms'])
  if (timeoutMs !== undefined && !(Number.isInteger(timeoutMs) && timeoutMs > 0)) {
    throw new UsageError('--timeout-ms must be a positive integer')
  }
  const rate = values['max-bytes-per-second']
  const maxBytesPerSecond = rate === undefined ? undefined : Number(rate)
  if (maxBytesPerSecond !== undefined && !(Number.isInteger(maxBytesPerSecond) && maxBytesPerSecond > 0)) {
    throw new UsageError('--max-bytes-per-second must be a positive integer')
  }
  const { checkAndStageLatestRuntime, readPointer } = loadBinding()
  const started = Date.now()
  if (!values.json) out.log(`checking ${values.package ?? 'kanban'}@${values.tag ?? 'latest'} ...`)
  const progress = values.json ? null : progressReporter(out, out.tty)
  const controller = new AbortController()
  // Ctrl-C aborts cleanly: the partial folder is removed and the store left as it was.
  const onSigint = () => controller.abort()
  process.once('SIGINT', onSigint)
  const outcome = await checkAndStageLatestRuntime({
    userData,
    currentVersion: values['current-version'] ?? '0.0.0',
    nativeDepsSource,
    registry: values.registry,
    packageName: values.package,
    distTag: values.tag,
    timeoutMs,
    proxy: values.proxy,
    maxBytesPerSecond,
    signal: controller.signal,
    onProgress: progress?.onProgress,
  }).finally(() => {
    process.removeListener('SIGINT', onSigint)
    progress?.done()
  })
  const ms = Date.now() - started
  if (values.json) return out.log(JSON.stringify({ ...outcome, ms }))
  switch (outcome.kind) {
    case 'up-to-date':
      out.log(`up-to-date (${ms} ms)`)
      break
    case 'bad-version':
      out.log(`bad-version: ${outcome.version} is marked bad; nothing staged (${ms} ms)`)
      break
    case 'already-staged':
      out.log(`already-staged: ${readPointer(userData)?.cliEntry} (${ms} ms)`)
      break
    case 'staged':
      out.log(`staged ${outcome.version} in ${ms} ms: ${readPointer(userData)?.cliEntry}`)
      break
  }
}

function status(argv, out) {
  const { values } = parse(argv, { 'user-data': { type: 'string' } })
  if (values.help) return out.log(HELP.status)
  const userData = requireUserData(values)
  const report = loadBinding().readStoreStatus(userData)
  const { store: root, pointer, runnable, versions, badVersions: bad, partials, locked } = report
  if (values.json) return out.log(JSON.stringify(report))
  out.log(`store:    ${root}`)
  out.log(`pointer:  ${pointer ? `${pointer.version}${pointer.previous ? ` (fallback ${pointer.previous})` : ''}` : 'none (the app runs its bundled runtime)'}`)
  out.log(`runs:     ${runnable ?? 'bundled runtime'}`)
  out.log('versions:')
  if (versions.length === 0) out.log('  none')
  for (const v of versions) {
    out.log(`  ${pointer?.version === v.version ? '*' : ' '} ${v.version.padEnd(16)} ${mib(v.bytes).padStart(10)}  ${v.whole ? 'whole' : 'DAMAGED'}`)
  }
  out.log(`bad:      ${bad.length ? bad.join(', ') : 'none'}`)
  out.log(`lock:     ${locked ? 'held: a staging run is in progress' : 'free'}`)
  if (partials.length) out.log(`partials: ${partials.join(', ')} (removed by the next stage run)`)
}

async function markBad(argv, out) {
  const { values, positionals } = parse(argv, { 'user-data': { type: 'string' } })
  if (values.help) return out.log(HELP['mark-bad'])
  const userData = requireUserData(values)
  if (positionals.length !== 1) throw new UsageError('mark-bad takes exactly one <version>')
  const now = await loadBinding().markBadVersion(userData, positionals[0])
  if (values.json) return out.log(JSON.stringify({ marked: positionals[0], pointer: now }))
  out.log(`marked ${positionals[0]} bad; pointer now: ${now ?? 'none (bundled runtime)'}`)
}

async function main(argv, out = console) {
  const [command, ...rest] = argv
  try {
    switch (command) {
      case 'stage':
        await stage(rest, out)
        return 0
      case 'status':
        status(rest, out)
        return 0
      case 'mark-bad':
        await markBad(rest, out)
        return 0
      case undefined:
      case '--help':
      case '-h':
      case 'help':
        out.log(HELP.main)
        return command === undefined ? 2 : 0
      default:
        throw new UsageError(`unknown command '${command}'`)
    }
  } catch (err) {
    if (err instanceof UsageError || err?.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || err?.code?.startsWith?.('ERR_PARSE_ARGS')) {
      out.error(`error: ${err.message}\n\n${HELP[command] ?? HELP.main}`)
      return 2
    }
    const code = err?.code ?? 'EUNKNOWN'
    out.error(`error ${code}: ${err?.message ?? err}`)
    if (HINTS[code]) out.error(`hint: ${HINTS[code]}`)
    return 1
  }
}

if (require.main === module) {
  const out = { log: console.log, error: console.error, tty: process.stderr.isTTY ? process.stderr : null }
  main(process.argv.slice(2), out).then((code) => {
    process.exitCode = code
  })
}

module.exports = { main }
