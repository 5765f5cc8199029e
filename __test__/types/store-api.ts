// Compiled with `tsc --strict` in the test run: the store functions have the signatures of the
// store module an Electron app already imports (same names, argument order, synchronous return
// types), so switching that import to this package type-checks unchanged.
import {
  cleanupPartials,
  clearPointer,
  cliEntryFor,
  isBadVersion,
  markBadVersion,
  partialDir,
  pointerFileExists,
  readPointer,
  removeVersionDir,
  resolvePointerCliEntry,
  versionDir,
  versionFromCliEntry,
  writePointer,
  type RuntimePointer,
} from '../../index.js'

interface Pointer {
  version: string
  cliEntry: string
}

interface StoreModule {
  versionDir(userData: string, version: string): string
  partialDir(userData: string, version: string): string
  cliEntryFor(userData: string, version: string): string
  versionFromCliEntry(userData: string, cliEntry: string): string | null
  readPointer(userData: string): Pointer | null
  pointerFileExists(userData: string): boolean
  writePointer(userData: string, p: Pointer): void
  clearPointer(userData: string): void
  resolvePointerCliEntry(userData: string): string | null
  cleanupPartials(userData: string): void
  removeVersionDir(userData: string, version: string): void
  isBadVersion(userData: string, version: string): boolean
  markBadVersion(userData: string, version: string): void
}

export const store: StoreModule = {
  versionDir,
  partialDir,
  cliEntryFor,
  versionFromCliEntry,
  readPointer,
  pointerFileExists,
  writePointer,
  clearPointer,
  resolvePointerCliEntry,
  cleanupPartials,
  removeVersionDir,
  isBadVersion,
  markBadVersion,
}

export function rollback(userData: string, cliEntry: string): string | null {
  const failed = versionFromCliEntry(userData, cliEntry)
  if (failed === null) return null
  // Not a promise: a failure throws here, inside the caller's try.
  const now: string | null = markBadVersion(userData, failed)
  const pointer: RuntimePointer | null = readPointer(userData)
  if (pointer?.cliEntry === cliEntry) clearPointer(userData)
  removeVersionDir(userData, failed)
  return now
}

export function launch(userData: string, bundled: string): string | null {
  const p: RuntimePointer = { version: bundled, cliEntry: cliEntryFor(userData, bundled) }
  writePointer(userData, p)
  return pointerFileExists(userData) ? resolvePointerCliEntry(userData) : null
}
