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
  confirmLaunch,
  reportLaunchFailed,
  resolveLaunch,
  versionFromCliEntry,
} = require('./index.js')

const FIRST_CHECK_DELAY_MS = 30_000
const CHECK_INTERVAL_MS = 30 * 60_000
// How long a runtime started from a staged cliEntry must run without a reported failure before the
// wiring confirms it by itself: the rule an app that confirms itself follows (readiness + 30 s).
const CONFIRM_AFTER_MS = 30_000
const MAX_TIMER_MS = 2 ** 31 - 1
// Each interval is drawn from +-10% of the setting, so a fleet started together does not ask
// the registry in lock-step.
const INTERVAL_SPREAD = 0.1
// semver.org's own pattern: the bundled version is checked before any comparison uses it.
const SEMVER =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/

function createRuntimeAutoUpdate(deps, settings = {}) {
  if (!deps.isPackaged) return null

  const logger = settings.logger ?? console
  const warn = (label, err) =>
    logger.warn(`[runtime-auto-update] ${label} failed:`, err instanceof Error ? err.message : err)
  const unpacked = path.join(deps.resourcesPath, 'app.asar.unpacked')
  const bundledVersion = readBundledVersion(path.join(unpacked, 'cli')) ?? deps.shellVersion
  // node-pty, rebuilt for this Electron, beside the bundled runtime.
  const nativeDepsSource = path.join(unpacked, 'node_modules')
  const firstDelay = settings.firstCheckDelayMs ?? FIRST_CHECK_DELAY_MS
  const interval = settings.checkIntervalMs ?? CHECK_INTERVAL_MS
  const max = settings.maxUnconfirmedLaunches
  // Refused here, once, rather than by every beginLaunch, which would leave the app on its bundled
  // runtime for good with nothing but a warning per start.
  if (max !== undefined && !(Number.isInteger(max) && max >= 1 && max <= 1000)) {
    throw new TypeError('maxUnconfirmedLaunches must be a whole number from 1 to 1000')
  }
  const launchOpts = { bundledVersion, maxUnconfirmedLaunches: max }
  // 0 or null: the app confirms by itself (confirmCliEntryOverride).
  const confirmAfter = settings.confirmAfterMs === undefined ? CONFIRM_AFTER_MS : settings.confirmAfterMs
  // A timer past 2^31 - 1 ms would fire at once (Node clamps it to 1 ms): that would confirm
  // every launch before it could fail.
  if (confirmAfter !== null && !(Number.isInteger(confirmAfter) && confirmAfter >= 0 && confirmAfter <= MAX_TIMER_MS)) {
    throw new TypeError(`confirmAfterMs must be null or a whole number of ms from 0 to ${MAX_TIMER_MS}`)
  }

  // Leftovers of interrupted runs go before any new staging can meet them.
  try {
    cleanupPartials(deps.userData)
  } catch (e) {
    warn('cleanupPartials', e)
  }

  // A listener that throws must not turn a launch decision or a rollback into a failure.
  const broadcast = (channel, ...args) => {
    try {
      deps.broadcast(channel, ...args)
    } catch (e) {
      warn(`broadcast ${channel}`, e)
    }
  }

  let timer = null
  let inFlight = false
  let stopped = true
  // The automatic confirmation pending for each cliEntry launched, until it fires or is cancelled.
  const pendingConfirms = new Map()

  const cancelConfirm = (cliEntry) => {
    const pending = pendingConfirms.get(cliEntry)
    if (pending) clearTimeout(pending)
    pendingConfirms.delete(cliEntry)
  }

  const confirmCliEntryOverride = (cliEntry) => {
    cancelConfirm(cliEntry)
    try {
      return confirmLaunch(deps.userData, cliEntry)
    } catch (e) {
      warn('confirmLaunch', e)
      return null
    }
  }

  // An app that only changed its import never confirms: a runtime still up `confirmAfter` ms
  // after its launch, with no failure reported for it, is confirmed here, so that the trial
  // counter never rolls back a healthy runtime.
  const scheduleConfirm = (cliEntry) => {
    cancelConfirm(cliEntry)
    if (!confirmAfter) return
    const pending = setTimeout(() => {
      pendingConfirms.delete(cliEntry)
      const version = confirmCliEntryOverride(cliEntry)
      // A timer callback that throws would be an uncaught exception in the main process.
      try {
        if (version) logger.log(`[runtime-auto-update] Staged runtime ${version} confirmed healthy.`)
      } catch {}
    }, confirmAfter)
    // A pending confirmation never keeps the app alive.
    pending.unref?.()
    pendingConfirms.set(cliEntry, pending)
  }

  // The launch: the only call that counts an attempt.
  const resolveCliEntryOverride = () => {
    try {
      const launch = beginLaunch(deps.userData, launchOpts)
      if (launch.rolledBack) {
        logger.warn(
          `[runtime-auto-update] Staged runtime ${launch.rolledBack.version} never came up (${launch.rolledBack.reason}); rolled back to ${launch.version}.`,
        )
        broadcast('runtime:rolled-back', launch.rolledBack.version)
      }
      // A confirmed version (attempt 0) is no trial: nothing to confirm.
      if (launch.cliEntry && launch.attempt > 0) scheduleConfirm(launch.cliEntry)
      return launch.cliEntry
    } catch (e) {
      warn('beginLaunch', e)
      return null
    }
  }

  // The version that ran is the captured cliEntry's, not the pointer's: a background check may
  // have staged a newer one since the spawn.
  const onCliEntryOverrideFailed = (reason, cliEntry) => {
    cancelConfirm(cliEntry)
    let failedVersion = null
    try {
      // The reason is for the log: whatever the app passes (an Error, an exit code) must not
      // stop the rollback.
      const why = reason == null ? undefined : String(reason)
      failedVersion = reportLaunchFailed(deps.userData, cliEntry, why).failedVersion
      logger.warn(
        `[runtime-auto-update] Staged runtime failed (${reason})${failedVersion ? `; rolled back ${failedVersion}` : ''}.`,
      )
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
    try {
      // Drops a stale or broken pointer without counting a launch. A failure here (a frozen lock
      // holder, a read-only store) is logged, and the check still runs from the bundled version.
      let pointer = null
      try {
        pointer = resolveLaunch(deps.userData, { bundledVersion })
      } catch (e) {
        warn('resolveLaunch', e)
      }
      const outcome = await checkAndStageLatestRuntime({
        ...settings.staging,
        userData: deps.userData,
        currentVersion: pointer ? pointer.version : bundledVersion,
        nativeDepsSource,
      })
      if (outcome.kind === 'staged') {
        logger.log(`[runtime-auto-update] Staged kanban@${outcome.version}; restart to apply.`)
        broadcast('runtime:update-staged', outcome.version)
      } else if (outcome.kind === 'bad-version') {
        logger.log(`[runtime-auto-update] Skipping kanban@${outcome.version}: previously failed startup.`)
      }
    } catch (e) {
      logger.warn('[runtime-auto-update] Runtime update check failed:', e instanceof Error ? e.message : e)
    } finally {
      inFlight = false
    }
  }

  const arm = (ms) => {
    if (stopped) return
    timer = setTimeout(() => {
      arm(interval * (1 - INTERVAL_SPREAD + 2 * INTERVAL_SPREAD * Math.random()))
      void runCheck()
    }, ms)
    // A pending check never keeps the app alive.
    timer.unref?.()
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
      for (const cliEntry of [...pendingConfirms.keys()]) cancelConfirm(cliEntry)
    },
  }

  function stopChecks() {
    stopped = true
    if (timer) clearTimeout(timer)
    timer = null
  }
}

// A corrupt or hand-edited cli/package.json must not reach a version comparison: the caller
// falls back to the shell's version.
function readBundledVersion(cliDir) {
  try {
    const parsed = JSON.parse(readFileSync(path.join(cliDir, 'package.json'), 'utf8'))
    return typeof parsed.version === 'string' && SEMVER.test(parsed.version) ? parsed.version : null
  } catch {
    return null
  }
}

module.exports = { createRuntimeAutoUpdate, FIRST_CHECK_DELAY_MS, CHECK_INTERVAL_MS, CONFIRM_AFTER_MS }
