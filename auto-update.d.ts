import type { StageOptions } from './index.js'

/** What the app's process orchestrator calls. */
export interface RuntimeAutoUpdate {
  /**
   * At each launch of the runtime: the staged CLI to run, or `null` for the bundled one. Records
   * one trial launch (see `beginLaunch`); a version whose trials never came up is rolled back
   * here, broadcast as `runtime:rolled-back`.
   */
  resolveCliEntryOverride: () => string | null
  /**
   * The runtime started from `cliEntry` (exactly what `resolveCliEntryOverride` returned, captured
   * at spawn) failed: rolls back the version that ran, even when a background check has since
   * staged a newer one, and broadcasts `runtime:rolled-back` with it (or `null`).
   */
  onCliEntryOverrideFailed: (reason: string, cliEntry: string) => void
  /**
   * The runtime started from `cliEntry` is healthy: call once its readiness probe passed and it
   * stayed up for a while (30 s, say). Returns the confirmed version or `null`.
   */
  confirmCliEntryOverride: (cliEntry: string) => string | null
  /** Background checks: the first after 30 s, then every 30 min (each +-10%); never keeps the process alive. */
  scheduleChecks(): void
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
  /** Trial launches before a rollback; default 2. */
  maxUnconfirmedLaunches?: number
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
