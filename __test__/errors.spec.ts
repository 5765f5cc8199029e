// Errors an app can branch on: isStageError recognises this package's errors, also once they
// crossed Electron IPC as plain objects, and nothing else.
import { expect, it } from 'vitest'
import { binding, rejection } from './helpers/binding'
import { Scenario } from './helpers/scenario'

it('isStageError accepts a real rejection and its IPC copy, and nothing else', async () => {
  const s = await Scenario.start()
  try {
    const err = await rejection(binding.checkAndStageLatestRuntime(s.opts({ packageName: 'missing' })))
    expect(err.code).toBe('EHTTP')
    expect(binding.isStageError(err)).toBe(true)
    // What structured clone over IPC leaves of it: own enumerable fields and the message.
    const copy = JSON.parse(JSON.stringify({ ...err, message: err.message }))
    expect(binding.isStageError(copy)).toBe(true)
    if (binding.isStageError(copy)) expect(copy.status).toBe(404)
  } finally {
    await s.stop()
  }
  for (const other of [
    new Error('plain'),
    Object.assign(new Error('node'), { code: 'ENOENT' }),
    { code: 'EHTTP' },
    { code: 42, message: 'x' },
    'EHTTP',
    null,
    undefined,
    42,
  ]) {
    expect(binding.isStageError(other)).toBe(false)
  }
})
