// A desktop-app style consumer, compiled with `tsc --strict` against the *installed* package's
// types and run against a loopback registry by scripts/install-test/run.mjs.
import {
  checkAndStageLatestRuntime,
  readPointer,
  resolvePointerCliEntry,
  type StageOptions,
  type StageOutcome,
} from 'kanban-runtime-stager'
import { createRuntimeAutoUpdate, type RuntimeAutoUpdate } from 'kanban-runtime-stager/auto-update'

declare const process: { env: Record<string, string | undefined>; exitCode?: number }
declare const console: { log(line: string): void }

function describe(outcome: StageOutcome): string {
  switch (outcome.kind) {
    case 'up-to-date':
      return 'up-to-date'
    case 'bad-version':
      return `bad-version ${outcome.version}`
    case 'already-staged':
      return 'already-staged'
    case 'staged':
      return `staged ${outcome.version}`
    default: {
      const unreachable: never = outcome
      return unreachable
    }
  }
}

async function main(): Promise<void> {
  const userData = process.env.USER_DATA!
  const opts: StageOptions = {
    userData,
    currentVersion: '0.1.69',
    nativeDepsSource: process.env.NATIVE_DEPS!,
    registry: process.env.REGISTRY!,
    onProgress: (p) => {
      const phase: 'resolving' | 'waiting-for-lock' | 'downloading' | 'finishing' = p.phase
      void phase
    },
  }
  const outcome = await checkAndStageLatestRuntime(opts)
  const cli: string | null = resolvePointerCliEntry(userData)
  // The wiring an app imports instead of its own: unpackaged, it runs the bundled CLI.
  const wiring: RuntimeAutoUpdate | null = createRuntimeAutoUpdate({
    isPackaged: false,
    userData,
    resourcesPath: userData,
    shellVersion: '0.1.69',
    broadcast: () => undefined,
  })
  if (wiring !== null) throw new Error('an unpackaged app must get no wiring')
  console.log(JSON.stringify({ outcome: describe(outcome), pointer: readPointer(userData)?.version ?? null, cli }))
}

main().catch((err: { code?: string; message?: string }) => {
  console.log(JSON.stringify({ error: err.code, message: err.message }))
  process.exitCode = 1
})
