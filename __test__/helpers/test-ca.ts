// A private certificate authority and a server certificate for 127.0.0.1 (scripts/testkit/tls.mjs):
// made here with openssl, or read from KANBAN_TEST_TLS_DIR. Null where neither is to be had.
import { readTestCa, type TestCa, writeTestCa } from '../../scripts/testkit/tls.mjs'
import { tempDir } from './fixtures'

export type { TestCa }

export function makeTestCa(): TestCa | null {
  const given = process.env.KANBAN_TEST_TLS_DIR
  if (given) return readTestCa(given)
  const dir = tempDir('krs-tls-')
  return writeTestCa(dir) ? readTestCa(dir) : null
}
