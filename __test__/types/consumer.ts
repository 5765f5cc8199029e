// Compiled with `tsc --strict` in the test run: proves index.d.ts declares the outcome as a
// discriminated union that an exhaustive switch narrows, exactly as the desktop app uses it.
import {
  checkAndStageLatestRuntime,
  isStageError,
  markBadVersion,
  pruneStore,
  readStoreStatus,
  readPointer,
  resolvePointerCliEntry,
  type StageErrorCode,
  type StageOutcome,
} from '../../index.js'

/** What the app tells the user, by code: the union narrows and an unknown code does not compile. */
export function advice(e: unknown): string {
  if (!isStageError(e)) return 'unexpected error'
  const code: StageErrorCode = e.code
  // @ts-expect-error not one of the package's codes
  const wrong: StageErrorCode = 'ENOPE'
  switch (code) {
    case 'ENETWORK':
    case 'ETIMEDOUT':
      return `offline? ${e.url ?? ''} (${e.phase ?? ''}) ${wrong}`
    case 'EHTTP':
      return `registry answered ${e.status ?? 0}`
    case 'EINTEGRITY':
      return `${e.expected ?? ''} != ${e.actual ?? ''}`
    case 'EINVALID_OPTION':
      return `bad option ${e.option ?? ''}`
    default:
      return `${code}: ${e.message}`
  }
}

/** Any variant may say that the trust policy passed a newer version over, and why. */
function refusal(outcome: StageOutcome): string | undefined {
  const r = outcome.refused
  if (!r) return undefined
  const code: 'ESIGNATURE' | 'EPROVENANCE' = r.code
  return `${r.version} refused (${code}, ${r.check ?? r.reason ?? ''}): ${r.message}`
}

/** Any variant may carry a release the rollout holds back and a withdrawal made on the way. */
function rollout(outcome: StageOutcome): string | undefined {
  const w = outcome.withdrawn
  if (w) {
    const pointer: string | null = w.pointer
    return `${w.version} withdrawn (${w.reason}); next launch: ${pointer ?? 'bundled'}`
  }
  const p = outcome.pending
  return p && `${p.version} arrives at ${new Date(p.eligibleAt).toLocaleString()}`
}

function describe(outcome: StageOutcome): string {
  const refused = refusal(outcome) ?? rollout(outcome)
  if (refused) return refused
  switch (outcome.kind) {
    case 'up-to-date':
      // @ts-expect-error `version` does not exist on the up-to-date variant
      return outcome.version
    case 'bad-version':
      return `latest ${outcome.version} is marked bad`
    case 'already-staged':
      return 'already staged'
    case 'staged':
      return `restart to update to ${outcome.version}`
    default: {
      const never: never = outcome
      return never
    }
  }
}

export async function main(userData: string): Promise<string> {
  const outcome = await checkAndStageLatestRuntime({
    userData,
    currentVersion: '0.1.69',
    nativeDepsSource: '/app/resources/native',
    timeoutMs: 60_000,
    onLog: (entry) => {
      const level: 'debug' | 'info' | 'warn' = entry.level
      const version: string | number | undefined = entry.fields?.version
      console.log(level, entry.message, version)
    },
  })
  // readPointer and readStoreStatus describe the pointer the same way: a value or null.
  const status = await readStoreStatus(userData)
  const same: ReturnType<typeof readPointer> = status.pointer
  const kept: boolean = status.versions.every((v) => v.pointed || v.fallback || v.bad)
  // The rollout's state: each a value or null.
  const bucket: number | null = status.rolloutBucket
  const held: string | undefined = status.pending?.eligibleAt
  const withdrawnTo: string | null | undefined = status.withdrawn?.pointer
  void [bucket, held, withdrawnTo]
  const pruned = await pruneStore(userData, '0.1.69')
  const freed: number = pruned.freedBytes
  const cli: string | null = resolvePointerCliEntry(userData)
  // Synchronous, as the desktop calls it inside try/catch: no promise to await.
  const now: string | null = markBadVersion(userData, '0.1.70')
  const version: string | undefined = readPointer(userData)?.version
  return `${describe(outcome)} ${cli} ${now} ${version} ${same?.version} ${kept} ${freed}`
}
