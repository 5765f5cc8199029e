// The Electron main process's runtime auto-update wiring, in the box: what to launch at start-up
// (a trial launch, rolled back by itself after launches that never came up), the rollback after a
// failed start, the confirmation of a healthy one, and the background check schedule.
'use strict'

const { readFileSync } = require('node:fs')
const path = require('node:path')
const {
  beginLaunch,
  checkAndStageLatestRuntime,
  cleanupPartials,
  cleanVersion,
  confirmLaunch,
  endLaunch,
  optionLimits,
  readStoreStatus,
  reportLaunchFailed,
  resolveLaunch,
  versionFromCliEntry,
} = require('./index.js')

const FIRST_CHECK_DELAY_MS = 30_000
const CHECK_INTERVAL_MS = 30 * 60_000
// How long a runtime started from a staged cliEntry must run without a reported failure before the
// wiring confirms it by itself, for apps that do not confirm at readiness themselves.
const CONFIRM_AFTER_MS = 30_000
// Node keeps a timer's delay in 32 bits and fires a longer one after 1 ms: longer waits are
// chained from timers within this.
const MAX_TIMER_MS = 2 ** 31 - 1
// The longest wait any setting may ask for: a year is past any schedule an app needs, and a
// value beyond it is a unit mistake worth refusing at once.
const MAX_DELAY_MS = 365 * 24 * 60 * 60 * 1000
// Each interval is drawn from +-10% of the setting, so a fleet started together does not ask
// the registry in lock-step.
const INTERVAL_SPREAD = 0.1

function createRuntimeAutoUpdate(deps, settings = {}) {
  if (!deps.isPackaged) return null

  const logger = settings.logger ?? console
  // Every call into the app's code is guarded: a logger or listener that throws must never turn
  // a launch decision into an exception, nor a timer into an uncaught one in the main process.
  const say = (level, ...args) => {
    try {
      logger[level](...args)
    } catch {}
  }
  const warn = (label, err) => {
    // The message is read inside the guard too: an error's `message` may be a getter that throws.
    try {
      logger.warn(`[runtime-auto-update] ${label} failed:`, err instanceof Error ? err.message : err)
    } catch {}
  }
  const unpacked = path.join(deps.resourcesPath, 'app.asar.unpacked')
  const bundledVersion = readBundledVersion(path.join(unpacked, 'cli')) ?? deps.shellVersion
  // node-pty, rebuilt for this Electron, beside the bundled runtime.
  const nativeDepsSource = path.join(unpacked, 'node_modules')
  // Refused here, once, rather than at every start or check, which would leave the app on its
  // bundled runtime or its schedule broken for good with nothing but a warning.
  const firstDelay = wholeMs(settings, 'firstCheckDelayMs', FIRST_CHECK_DELAY_MS, 0)
  // At least 1 ms: an interval of 0 would spin.
  const interval = wholeMs(settings, 'checkIntervalMs', CHECK_INTERVAL_MS, 1)
  const max = settings.maxUnconfirmedLaunches
  // The addon's own range, checked here so that a wrong setting fails at creation rather than
  // at every launch, where beginLaunch's refusal would only be logged.
  const range = optionLimits().maxUnconfirmedLaunches
  if (max !== undefined && !(Number.isInteger(max) && max >= range.min && max <= range.max)) {
    throw invalidOption('maxUnconfirmedLaunches', `must be a whole number from ${range.min} to ${range.max}`)
  }
  const launchOpts = { bundledVersion, maxUnconfirmedLaunches: max }
  // 0 or null: the app confirms by itself (confirmCliEntryOverride).
  const confirmAfter = settings.confirmAfterMs === null ? 0 : wholeMs(settings, 'confirmAfterMs', CONFIRM_AFTER_MS, 0)

  // Leftovers of interrupted runs go before any new staging can meet them; what it had to move
  // aside (an entry of the wrong type at a store name) is worth a line in the app's log.
  try {
    cleanupPartials(deps.userData, {
      onLog: ({ level, message }) => level === 'warn' && say('warn', `[runtime-auto-update] ${message}`),
    })
  } catch (e) {
    warn('cleanupPartials', e)
  }

  const broadcast = (channel, ...args) => {
    try {
      deps.broadcast(channel, ...args)
    } catch (e) {
      warn(`broadcast ${channel}`, e)
    }
  }

  /** @type {{ cancel: () => void } | null} */
  let checks = null
  let inFlight = false
  let stopped = true
  // The trial launch this process began and has neither confirmed nor seen fail, if any: its
  // cliEntry and pending automatic confirmation. A later launch or stop() ends it cleanly.
  /** @type {{ cliEntry: string, confirm: { cancel: () => void } | null } | null} */
  let trial = null

  // Forgets the open trial when it is `cliEntry`'s, cancelling its confirmation.
  const settle = (cliEntry) => {
    if (!trial || trial.cliEntry !== cliEntry) return
    trial.confirm?.cancel()
    trial = null
  }

  const confirmCliEntryOverride = (cliEntry) => {
    if (trial && trial.cliEntry === cliEntry) {
      trial.confirm?.cancel()
      trial.confirm = null
    }
    try {
      const version = confirmLaunch(deps.userData, cliEntry)
      settle(cliEntry)
      return version
    } catch (e) {
      // Not confirmed: the trial stays open, so a clean quit still ends it.
      warn('confirmLaunch', e)
      return null
    }
  }

  // An app that only changed its import never confirms: a runtime still up `confirmAfter` ms
  // after its launch, with no failure reported for it, is confirmed here.
  const beginTrial = (cliEntry) => {
    trial = { cliEntry, confirm: null }
    if (!confirmAfter) return
    trial.confirm = later(confirmAfter, () => {
      const version = confirmCliEntryOverride(cliEntry)
      if (version) say('log', `[runtime-auto-update] Staged runtime ${version} confirmed healthy.`)
    })
  }

  // The launch: the only call that counts an attempt.
  const resolveCliEntryOverride = () => {
    // The orchestrator runs one runtime at a time: a trial launch of this process still open was
    // replaced (a restart, a settings change) with no failure reported, so it ended cleanly, and
    // is ended before the new launch counts: restarts within one session never add up to a
    // rollback.
    endOpenTrial()
    let launch
    try {
      launch = beginLaunch(deps.userData, launchOpts)
    } catch (e) {
      warn('beginLaunch', e)
      return null
    }
    if (launch.rolledBack) {
      say(
        'warn',
        `[runtime-auto-update] Staged runtime ${launch.rolledBack.version} never came up (${launch.rolledBack.reason}); rolled back to ${launch.version}.`,
      )
      broadcast('runtime:rolled-back', launch.rolledBack.version)
    }
    // A confirmed version (attempt 0) is no trial: nothing to confirm or end.
    if (launch.cliEntry && launch.attempt > 0) beginTrial(launch.cliEntry)
    return launch.cliEntry
  }

  // The version that ran is the captured cliEntry's, not the pointer's: a background check may
  // have staged a newer one since the spawn.
  const onCliEntryOverrideFailed = (reason, cliEntry) => {
    settle(cliEntry)
    let failedVersion = null
    // The reason is for the log: whatever the app passes (an Error, an exit code) must not stop
    // the rollback.
    let why
    try {
      why = reason == null ? undefined : String(reason)
    } catch {
      why = undefined
    }
    try {
      failedVersion = reportLaunchFailed(deps.userData, cliEntry, why).failedVersion
      say('warn', `[runtime-auto-update] Staged runtime failed (${why})${failedVersion ? `; rolled back ${failedVersion}` : ''}.`)
    } catch (e) {
      // Nothing was changed: the pointer stays, and the next start's beginLaunch counts on. The
      // version that failed is still the cliEntry's, as the broadcast says.
      warn('reportLaunchFailed', e)
      try {
        failedVersion = versionFromCliEntry(deps.userData, cliEntry)
      } catch (e2) {
        warn('versionFromCliEntry', e2)
      }
    }
    broadcast('runtime:rolled-back', failedVersion ?? null)
  }

  const runCheck = async () => {
    // One check at a time: a slow download must not meet the next tick.
    if (inFlight) return
    inFlight = true
    let pointer = null
    try {
      // Drops a stale or broken pointer without counting a launch. A failure here (a frozen lock
      // holder, a read-only store) is logged, and the check still runs from the bundled version.
      try {
        pointer = resolveLaunch(deps.userData, { bundledVersion })
      } catch (e) {
        warn('resolveLaunch', e)
      }
      const outcome = await checkAndStageLatestRuntime({
        ...settings.staging,
        userData: deps.userData,
        currentVersion: pointer ? pointer.version : bundledVersion,
        // A withdrawal (honorDeprecation) never points at a version this app's own runtime beats.
        bundledVersion,
        nativeDepsSource,
      })
      // Before the staged line: a check that withdraws the running version and stages a newer
      // one says both, in the order they happened.
      if (outcome.withdrawn) announceWithdrawal(outcome.withdrawn)
      if (outcome.kind === 'staged') {
        say('log', `[runtime-auto-update] Staged kanban@${outcome.version}; restart to apply.`)
        broadcast('runtime:update-staged', outcome.version)
      } else if (outcome.kind === 'bad-version') {
        say('log', `[runtime-auto-update] Skipping kanban@${outcome.version}: previously failed startup.`)
      }
    } catch (e) {
      say('warn', '[runtime-auto-update] Runtime update check failed:', e instanceof Error ? e.message : e)
      // A check may withdraw the version that runs and then fail to stage a newer one: the
      // withdrawal stands, and the store's note of it is what says so.
      if (pointer) await announceWithdrawalOf(pointer.version)
    } finally {
      inFlight = false
    }
  }

  const announceWithdrawal = ({ version, reason, pointer: now }) => {
    say('warn', `[runtime-auto-update] kanban@${version} was withdrawn by its publisher (${reason}); next launch runs ${now ?? 'the bundled runtime'}.`)
    broadcast('runtime:withdrawn', version, now)
  }

  // Announces the withdrawal of `version` when the store notes one.
  const announceWithdrawalOf = async (version) => {
    try {
      const { withdrawn, pointer } = await readStoreStatus(deps.userData)
      if (withdrawn && withdrawn.version === version && pointer?.version !== version) announceWithdrawal(withdrawn)
    } catch (e) {
      warn('readStoreStatus', e)
    }
  }

  const arm = (ms) => {
    if (stopped) return
    checks = later(ms, () => {
      arm(interval * (1 - INTERVAL_SPREAD + 2 * INTERVAL_SPREAD * Math.random()))
      runCheck().catch(() => {})
    })
  }

  return {
    resolveCliEntryOverride,
    onCliEntryOverrideFailed,
    confirmCliEntryOverride,
    scheduleChecks() {
      stopChecks()
      stopped = false
      arm(firstDelay)
    },
    stop() {
      stopChecks()
      // The app is quitting normally: each trial launch still open ended cleanly, and is taken
      // back before the process exits, so a quick quit never counts against a healthy runtime.
      endOpenTrial()
    },
  }

  // Ends the trial launch of this process neither confirmed nor reported failed, if any.
  function endOpenTrial() {
    if (!trial) return
    const { cliEntry } = trial
    settle(cliEntry)
    try {
      endLaunch(deps.userData, cliEntry)
    } catch (e) {
      warn('endLaunch', e)
    }
  }

  function stopChecks() {
    stopped = true
    checks?.cancel()
    checks = null
  }
}

// Runs `fn` after `ms` (up to MAX_DELAY_MS), chaining timers past Node's 32-bit limit; the timers
// never keep the process alive, and `fn` throwing is swallowed: a timer callback that throws is
// an uncaught exception in the main process.
function later(ms, fn) {
  let timer = null
  const step = (left) => {
    const last = left <= MAX_TIMER_MS
    timer = setTimeout(
      () => {
        if (!last) return step(left - MAX_TIMER_MS)
        try {
          fn()
        } catch {}
      },
      Math.min(left, MAX_TIMER_MS),
    )
    timer.unref?.()
  }
  step(ms)
  return { cancel: () => clearTimeout(timer) }
}

// A setting in whole ms, from `min` to MAX_DELAY_MS; `fallback` when absent.
function wholeMs(settings, name, fallback, min) {
  const value = settings[name]
  if (value === undefined) return fallback
  if (!(Number.isInteger(value) && value >= min && value <= MAX_DELAY_MS)) {
    throw invalidOption(name, `must be a whole number of ms from ${min} to ${MAX_DELAY_MS} (365 days)`)
  }
  return value
}

// Shaped as the addon's own EINVALID_OPTION errors, and a TypeError, as a wrong setting is.
function invalidOption(option, reason) {
  return Object.assign(new TypeError(`invalid option \`${option}\`: ${reason}`), {
    code: 'EINVALID_OPTION',
    option,
    hint: 'check the option named in the message',
  })
}

// A corrupt or hand-edited cli/package.json must not reach a version comparison: its version is
// read as the addon reads every version (cleanVersion), and the caller falls back to the shell's
// version when it is none.
function readBundledVersion(cliDir) {
  try {
    const parsed = JSON.parse(readFileSync(path.join(cliDir, 'package.json'), 'utf8'))
    return cleanVersion(parsed?.version)
  } catch {
    return null
  }
}

module.exports = { createRuntimeAutoUpdate, FIRST_CHECK_DELAY_MS, CHECK_INTERVAL_MS, CONFIRM_AFTER_MS, MAX_DELAY_MS }
