// Compiled with `tsc --strict` in the test run: the app's wiring imported from this package has
// the shape an Electron main process already uses (the same factory, deps and methods), plus
// the launch-health method and the optional settings.
import {
  CHECK_INTERVAL_MS,
  CONFIRM_AFTER_MS,
  createRuntimeAutoUpdate,
  FIRST_CHECK_DELAY_MS,
  type RuntimeAutoUpdate,
  type RuntimeAutoUpdateDeps,
  type RuntimeAutoUpdateSettings,
} from '../../auto-update.js'

const deps: RuntimeAutoUpdateDeps = {
  isPackaged: true,
  userData: '/tmp/user-data',
  resourcesPath: '/opt/app/resources',
  shellVersion: '1.0.0',
  broadcast: (channel: string, ...args: unknown[]) => void [channel, args],
}

// The desktop's own call: one argument.
const wiring: RuntimeAutoUpdate | null = createRuntimeAutoUpdate(deps)

const settings: RuntimeAutoUpdateSettings = {
  staging: { registry: 'https://registry.example.com/', timeoutMs: 60_000, rolloutHours: 48, honorDeprecation: true },
  firstCheckDelayMs: FIRST_CHECK_DELAY_MS,
  checkIntervalMs: CHECK_INTERVAL_MS,
  maxUnconfirmedLaunches: 3,
  confirmAfterMs: CONFIRM_AFTER_MS,
  logger: console,
}
const tuned = createRuntimeAutoUpdate(deps, settings)
// An app that confirms by itself turns the automatic confirmation off.
const selfConfirming = createRuntimeAutoUpdate(deps, { confirmAfterMs: null })
void selfConfirming

if (wiring && tuned) {
  const cliEntry: string | null = wiring.resolveCliEntryOverride()
  if (cliEntry !== null) {
    const confirmed: string | null = wiring.confirmCliEntryOverride(cliEntry)
    void confirmed
    const onFailed: (reason: string, cliEntry: string) => void = wiring.onCliEntryOverrideFailed
    onFailed('exited with code 1', cliEntry)
  }
  wiring.scheduleChecks()
  wiring.stop()
}

// @ts-expect-error the desktop's own fields are required
createRuntimeAutoUpdate({ isPackaged: true })
// @ts-expect-error confirmAfterMs is a number of ms
createRuntimeAutoUpdate(deps, { confirmAfterMs: '30s' })
// @ts-expect-error the staging settings never take the fields the wiring supplies
createRuntimeAutoUpdate(deps, { staging: { userData: '/elsewhere' } })
// @ts-expect-error nor the bundled version, which the wiring reads from the app itself
createRuntimeAutoUpdate(deps, { staging: { bundledVersion: '1.0.0' } })
