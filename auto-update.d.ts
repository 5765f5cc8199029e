import type { StageOptions } from './index.js'

/** What the app's process orchestrator calls. */
export interface RuntimeAutoUpdate {
  /**
   * At each launch of the runtime: the staged CLI to run, or `null` for the bundled one. Records
   * one trial launch (see `beginLaunch`); a version whose trials never came up is rolled back
   * here, broadcast as `runtime:rolled-back`. A trial launch counts against its version only when
   * the start ends with neither a confirmation nor a clean end: the process died, was killed, or
   * hung until force-quit. It is confirmed by `confirmCliEntryOverride` (call it when the
   * readiness probe passes), or by itself `confirmAfterMs` (default 30 s) after the launch unless
   * `onCliEntryOverrideFailed` is called for it first; `stop()` ends it cleanly, and so does the
   * next call in the same process (the orchestrator relaunching its runtime): restarts within one
   * session never add up to a rollback. Never throws.
   */
  resolveCliEntryOverride: () => string | null
  /**
   * The runtime started from `cliEntry` (exactly what `resolveCliEntryOverride` returned, captured
   * at spawn) failed: rolls back the version that ran, even when a background check has since
   * staged a newer one, and broadcasts `runtime:rolled-back` with that version (`null` for a
   * `cliEntry` outside the store). When the rollback cannot be recorded (the disk is full, say), it
   * is logged, nothing changes, and the broadcast still names the version that failed. Cancels the
   * pending automatic confirmation of `cliEntry`. Never throws.
   */
  onCliEntryOverrideFailed: (reason: string, cliEntry: string) => void
  /**
   * The runtime started from `cliEntry` is up: call it the moment its readiness probe passes.
   * Confirms the version at once (durably: a crash right after it is no failed trial) and cancels
   * the pending automatic confirmation. Returns the confirmed version, or `null` (a path outside
   * the store, a bad or vanished version, a store that could not be written: logged, and the
   * trial stays open for `stop()` to end). A runtime that fails later is still rolled back by
   * `onCliEntryOverrideFailed`. Never throws.
   */
  confirmCliEntryOverride: (cliEntry: string) => string | null
  /**
   * Background checks: the first after `firstCheckDelayMs` (30 s), then every `checkIntervalMs`
   * (30 min), each +-10 %, one at a time; never keeps the process alive. A check that stages a
   * version broadcasts `runtime:update-staged` with it; a check that withdraws the pointed version
   * because its publisher deprecated it (`staging.honorDeprecation`) broadcasts
   * `runtime:withdrawn` with that version and the version the pointer names now (`null`: the
   * bundled runtime), so the app can offer a restart; also when that check then fails to stage
   * a newer release (the withdrawal stands, and the store notes it). Each check passes the
   * bundled runtime's version as `bundledVersion`.
   */
  scheduleChecks(): void
  /**
   * The app is quitting normally: stops the background checks, cancels every pending automatic
   * confirmation, and ends each trial launch of this process that was neither confirmed nor
   * reported failed with `endLaunch`, flushed before it returns, so a user who quits before a
   * runtime is confirmed never counts against it. Call it on the app's way out (`before-quit`,
   * `will-quit`). Never throws.
   */
  stop(): void
}

export interface RuntimeAutoUpdateDeps {
  isPackaged: boolean
  userData: string
  resourcesPath: string
  shellVersion: string
  /**
   * Sends to every window: `('runtime:update-staged', version)`, `('runtime:rolled-back',
   * version | null)`, `('runtime:withdrawn', version, pointer | null)`.
   */
  broadcast: (channel: string, ...args: unknown[]) => void
}

export interface RuntimeAutoUpdateSettings {
  /** Staging options passed to every check (registry, proxy, timeouts, trust policy, ...). */
  staging?: Partial<Omit<StageOptions, 'userData' | 'currentVersion' | 'nativeDepsSource' | 'bundledVersion'>>
  /**
   * Default 30 000. A whole number of ms from 0 to `MAX_DELAY_MS` (365 days); any longer wait is
   * held as long as it says (timers are chained past Node's 2^31 - 1 ms limit). Anything else
   * throws an `EINVALID_OPTION` `TypeError` at creation.
   */
  firstCheckDelayMs?: number
  /**
   * Default 1 800 000 (30 min). A whole number of ms from 1 to `MAX_DELAY_MS` (365 days), held
   * as `firstCheckDelayMs` is; anything else throws an `EINVALID_OPTION` `TypeError` at creation.
   */
  checkIntervalMs?: number
  /**
   * Trial launches never confirmed nor ended cleanly before a rollback; default 2, a whole
   * number in `optionLimits().maxUnconfirmedLaunches` (1 to 1000; else throws an
   * `EINVALID_OPTION` `TypeError` at creation).
   */
  maxUnconfirmedLaunches?: number
  /**
   * After `resolveCliEntryOverride` returned a staged cliEntry on trial, the wiring confirms it
   * (as `confirmCliEntryOverride` does) once this many ms passed with no `onCliEntryOverrideFailed`
   * for it and no `stop()`. The timer never keeps the process alive. Default 30 000: long enough
   * for the orchestrator's readiness probe to fail, and for a runtime that dies soon after it came
   * up to be reported. `0` or `null`: never confirm by itself (an app that confirms at readiness
   * itself). A whole number of ms up to `MAX_DELAY_MS` (365 days), held as long as it says;
   * anything else throws an `EINVALID_OPTION` `TypeError` at creation. The delay runs from the
   * launch, not from readiness: the orchestrator must give up on a runtime that never becomes
   * ready (and call `onCliEntryOverrideFailed`) well within it, or a hung runtime is confirmed.
   */
  confirmAfterMs?: number | null
  /** Where the wiring logs; default `console`. A logger that throws is ignored, never rethrown. */
  logger?: Pick<Console, 'log' | 'warn'>
}

/** `null` when the app is not packaged (development runs the bundled CLI). */
export declare function createRuntimeAutoUpdate(
  deps: RuntimeAutoUpdateDeps,
  settings?: RuntimeAutoUpdateSettings,
): RuntimeAutoUpdate | null

export declare const FIRST_CHECK_DELAY_MS: number
export declare const CHECK_INTERVAL_MS: number
/** The default of `confirmAfterMs`: 30 000. */
export declare const CONFIRM_AFTER_MS: number
/** The longest wait a setting may ask for: 365 days in ms. */
export declare const MAX_DELAY_MS: number
