import type { StageOptions } from './index.js'

/** What the app's process orchestrator calls. */
export interface RuntimeAutoUpdate {
  /**
   * At each launch of the runtime: the staged CLI to run, or `null` for the bundled one. Records
   * one trial launch (see `beginLaunch`); a version whose trials never came up is rolled back
   * here, broadcast as `runtime:rolled-back`. A trial launch is confirmed by itself after
   * `confirmAfterMs` (default 30 s) unless `onCliEntryOverrideFailed` is called for it first (or
   * `stop()`): an app that only changed its import keeps its healthy runtime.
   */
  resolveCliEntryOverride: () => string | null
  /**
   * The runtime started from `cliEntry` (exactly what `resolveCliEntryOverride` returned, captured
   * at spawn) failed: rolls back the version that ran, even when a background check has since
   * staged a newer one, and broadcasts `runtime:rolled-back` with that version (`null` for a
   * `cliEntry` outside the store). When the rollback cannot be recorded (the disk is full, say), it
   * is logged, nothing changes, and the broadcast still names the version that failed. Cancels the
   * pending automatic confirmation of `cliEntry`.
   */
  onCliEntryOverrideFailed: (reason: string, cliEntry: string) => void
  /**
   * The runtime started from `cliEntry` is healthy: call once its readiness probe passed and it
   * stayed up for a while (30 s, say). Returns the confirmed version or `null`. Needed only with
   * `confirmAfterMs: 0` or `null`; otherwise the wiring confirms by itself.
   */
  confirmCliEntryOverride: (cliEntry: string) => string | null
  /** Background checks: the first after 30 s, then every 30 min (each +-10%); never keeps the process alive. */
  scheduleChecks(): void
  /** Stops the background checks and cancels every pending automatic confirmation. */
  stop(): void
}

export interface RuntimeAutoUpdateDeps {
  isPackaged: boolean
  userData: string
  resourcesPath: string
  shellVersion: string
  broadcast: (channel: string, ...args: unknown[]) => void
}

export interface RuntimeAutoUpdateSettings {
  /** Staging options passed to every check (registry, proxy, timeouts, trust policy, ...). */
  staging?: Partial<Omit<StageOptions, 'userData' | 'currentVersion' | 'nativeDepsSource'>>
  /** Default 30 000. */
  firstCheckDelayMs?: number
  /** Default 1 800 000 (30 min). */
  checkIntervalMs?: number
  /** Trial launches before a rollback; default 2, a whole number from 1 to 1000 (else throws). */
  maxUnconfirmedLaunches?: number
  /**
   * After `resolveCliEntryOverride` returned a staged cliEntry on trial, the wiring confirms it
   * (as `confirmCliEntryOverride` does) once this many ms passed with no `onCliEntryOverrideFailed`
   * for it and no `stop()`. The timer never keeps the process alive. Default 30 000: long enough
   * for the orchestrator's readiness probe to fail, and for a runtime that dies soon after it came
   * up to be reported. `0` or `null`: never confirm by itself (an app that confirms itself, after
   * its own readiness rule). At most 2 147 483 647 (a timer's limit); anything else throws.
   * The delay runs from the launch, not from readiness: the orchestrator must give up on a
   * runtime that never becomes ready (and call `onCliEntryOverrideFailed`) well within it, or a
   * hung runtime is confirmed.
   */
  confirmAfterMs?: number | null
  /** Where the wiring logs; default `console`. */
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
