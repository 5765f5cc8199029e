// Options are checked, never coerced: a wrong type or an out-of-range number rejects the returned
// promise with EINVALID_OPTION naming the option, before any request or write; nothing throws
// synchronously.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { binding, rejection } from './helpers/binding'
import { snapshot } from './helpers/fixtures'
import { Scenario } from './helpers/scenario'

const { checkAndStageLatestRuntime } = binding
const stage = checkAndStageLatestRuntime as (...args: unknown[]) => Promise<unknown>

const s = Scenario.perTest((fresh) => fresh.publish('1.1.0'))

/** Calls the stager with raw arguments: it must return a promise, never throw. */
function call(...args: unknown[]): Promise<unknown> {
  let p: Promise<unknown> | undefined
  expect(() => {
    p = stage(...args)
  }).not.toThrow()
  expect(p).toBeInstanceOf(Promise)
  return p!
}

/** The call rejects with EINVALID_OPTION naming `option`, and touched neither registry nor store. */
async function expectInvalid(p: Promise<unknown>, option: string) {
  const err = await rejection(p)
  expect(err).toBeInstanceOf(Error)
  expect(err).toMatchObject({ code: 'EINVALID_OPTION', option })
  expect(s.registry.requests).toEqual([])
  expect(fs.existsSync(s.store)).toBe(false)
}

const DAY_MS = 24 * 60 * 60 * 1000

describe('numeric options are refused, not wrapped', () => {
  for (const name of ['timeoutMs', 'connectTimeoutMs', 'idleTimeoutMs']) {
    for (const bad of [NaN, Infinity, -Infinity, -1, 0, 1.5, 2 ** 32 + 5000, DAY_MS + 1]) {
      it(`${name}: ${bad}`, async () => {
        await expectInvalid(call(s.opts({ [name]: bad })), name)
      })
    }
  }

  for (const bad of [NaN, Infinity, -1, 0.5, 11, 2 ** 32]) {
    it(`retries: ${bad}`, async () => {
      await expectInvalid(call(s.opts({ retries: bad })), 'retries')
    })
  }

  for (const bad of [0, -1, 1.5, NaN, Infinity, 2 ** 53]) {
    it(`maxEntries: ${bad}`, async () => {
      await expectInvalid(call(s.opts({ maxEntries: bad })), 'maxEntries')
    })
    it(`maxUnpackedBytes: ${bad}`, async () => {
      await expectInvalid(call(s.opts({ maxUnpackedBytes: bad })), 'maxUnpackedBytes')
    })
  }

  it('the documented maxima are accepted', async () => {
    const outcome = await call(
      s.opts({ timeoutMs: DAY_MS, connectTimeoutMs: DAY_MS, idleTimeoutMs: DAY_MS, retries: 10 }),
    )
    expect(outcome).toEqual({ kind: 'staged', version: '1.1.0' })
  })
})

describe('wrong types reject with the option named', () => {
  const cases: [string, () => unknown[], string][] = [
    ['no options at all', () => [], 'opts'],
    ['null options', () => [null], 'opts'],
    ['a string as options', () => ['/tmp'], 'opts'],
    ['userData: 42', () => [s.opts({ userData: 42 })], 'userData'],
    ['userData: ""', () => [s.opts({ userData: '' })], 'userData'],
    ['a relative userData', () => [s.opts({ userData: 'relative/dir' })], 'userData'],
    ['a missing currentVersion', () => [s.opts({ currentVersion: undefined })], 'currentVersion'],
    ['a missing nativeDepsSource', () => [s.opts({ nativeDepsSource: undefined })], 'nativeDepsSource'],
    ['timeoutMs: "5"', () => [s.opts({ timeoutMs: '5' })], 'timeoutMs'],
    ['retries: true', () => [s.opts({ retries: true })], 'retries'],
    ['registry: 5', () => [s.opts({ registry: 5 })], 'registry'],
    ['signal: {}', () => [s.opts({ signal: {} })], 'signal'],
    ['signal: "abort"', () => [s.opts({ signal: 'abort' })], 'signal'],
    [
      'a signal without removeEventListener',
      () => [s.opts({ signal: { aborted: false, addEventListener() {} } })],
      'signal',
    ],
    ['onProgress: 5', () => [s.opts({ onProgress: 5 })], 'onProgress'],
    ['ca: 5', () => [s.opts({ ca: 5 })], 'ca'],
    ['ca: [5]', () => [s.opts({ ca: [5] })], 'ca'],
    [
      'a ca PEM block that holds no certificate',
      () => [s.opts({ ca: '-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n' })],
      'ca',
    ],
  ]
  for (const [what, args, option] of cases) {
    it(what, async () => {
      await expectInvalid(call(...args()), option)
    })
  }

  it('null stands for a missing optional option, as undefined does', async () => {
    const outcome = await call(s.opts({ timeoutMs: null, signal: null, onProgress: null, ca: null }))
    expect(outcome).toEqual({ kind: 'staged', version: '1.1.0' })
  })
})

describe('a throwing options object rejects, never throws', () => {
  it('a getter that throws rejects with what it threw', async () => {
    const boom = new Error('getter')
    const opts = s.opts()
    Object.defineProperty(opts, 'timeoutMs', {
      get() {
        throw boom
      },
    })
    expect(await rejection(call(opts))).toBe(boom)
  })

  it('a signal whose addEventListener throws rejects with what it threw, and the call does not run', async () => {
    const boom = new Error('listener')
    const signal = {
      aborted: false,
      addEventListener() {
        throw boom
      },
      removeEventListener() {},
    }
    expect(await rejection(call(s.opts({ signal })))).toBe(boom)
    // Give a call that wrongly started time to reach the registry.
    await new Promise((r) => setTimeout(r, 200))
    expect(s.registry.requests).toEqual([])
  })

  it('an AbortSignal-shaped object that is not an AbortSignal works', async () => {
    const listeners: (() => void)[] = []
    const signal = {
      aborted: false,
      addEventListener: (_: string, f: () => void) => listeners.push(f),
      removeEventListener: (_: string, f: () => void) => listeners.splice(listeners.indexOf(f), 1),
    }
    expect(await call(s.opts({ signal }))).toEqual({ kind: 'staged', version: '1.1.0' })
    // The listener was attached for the call and removed when it settled.
    expect(listeners).toEqual([])
  })
})

describe('store functions refuse an empty or relative userData', () => {
  const b = binding as any
  const ptr = { version: '1.0.0', cliEntry: '/x/runtime-store/versions/1.0.0/dist/cli.js' }
  const syncCalls: [string, (u: string) => unknown][] = [
    ['readPointer', (u) => b.readPointer(u)],
    ['resolvePointerCliEntry', (u) => b.resolvePointerCliEntry(u)],
    ['isStoreLocked', (u) => b.isStoreLocked(u)],
    ['isBadVersion', (u) => b.isBadVersion(u, '1.0.0')],
    ['versionDir', (u) => b.versionDir(u, '1.0.0')],
    ['partialDir', (u) => b.partialDir(u, '1.0.0')],
    ['cliEntryFor', (u) => b.cliEntryFor(u, '1.0.0')],
    ['versionFromCliEntry', (u) => b.versionFromCliEntry(u, ptr.cliEntry)],
    ['pointerFileExists', (u) => b.pointerFileExists(u)],
    ['writePointer', (u) => b.writePointer(u, ptr)],
    ['clearPointer', (u) => b.clearPointer(u)],
    ['cleanupPartials', (u) => b.cleanupPartials(u)],
    ['removeVersionDir', (u) => b.removeVersionDir(u, '1.0.0')],
    ['markBadVersion', (u) => b.markBadVersion(u, '1.0.0')],
  ]
  const asyncCalls: [string, (u: string) => Promise<unknown>][] = [
    ['readStoreStatus', (u) => b.readStoreStatus(u)],
    ['diagnoseStore', (u) => b.diagnoseStore(u)],
    ['pruneStore', (u) => b.pruneStore(u)],
  ]

  let cwd: string
  let dir: string
  beforeEach(() => {
    cwd = process.cwd()
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'krs-cwd-'))
    process.chdir(dir)
  })
  afterEach(() => {
    process.chdir(cwd)
    fs.rmSync(dir, { recursive: true, force: true })
  })

  for (const userData of ['', 'relative/dir', './x']) {
    for (const [name, fn] of syncCalls) {
      it(`${name}(${JSON.stringify(userData)}) throws EINVALID_OPTION and writes nothing`, () => {
        let err: any
        try {
          fn(userData)
        } catch (e) {
          err = e
        }
        expect(err).toMatchObject({ code: 'EINVALID_OPTION', option: 'userData' })
        expect(fs.readdirSync(dir)).toEqual([])
      })
    }

    for (const [name, fn] of asyncCalls) {
      it(`${name}(${JSON.stringify(userData)}) rejects EINVALID_OPTION and writes nothing`, async () => {
        let p: Promise<unknown> | undefined
        expect(() => {
          p = fn(userData)
        }).not.toThrow()
        const err = await rejection(p!)
        expect(err).toMatchObject({ code: 'EINVALID_OPTION', option: 'userData' })
        expect(fs.readdirSync(dir)).toEqual([])
      })
    }
  }

  it('an absolute userData still works', async () => {
    expect(b.readPointer(s.userData)).toBeNull()
    expect(b.markBadVersion(s.userData, '1.0.0')).toBeNull()
    expect(b.isBadVersion(s.userData, '1.0.0')).toBe(true)
  })
})

describe('store functions refuse an argument of the wrong type with EINVALID_OPTION naming it', () => {
  const b = binding as any
  // The staged and pointed version: a call that got past its checks would change the store.
  const V = '1.1.0'
  const u = () => s.userData
  const entry = () => b.cliEntryFor(s.userData, V)
  const launchOpts = { bundledVersion: '1.0.0' }
  beforeEach(async () => {
    expect(await checkAndStageLatestRuntime(s.opts())).toEqual({ kind: 'staged', version: V })
  })
  const NOT_STRINGS: [string, unknown][] = [
    ['a number', 42],
    ['undefined', undefined],
    ['an object', {}],
    ['null', null],
  ]
  // Each function with its string arguments: a call that takes one of them as `x`, the others valid.
  const table: { name: string; async?: boolean; args: Record<string, (x: any) => unknown> }[] = [
    { name: 'readPointer', args: { userData: (x) => b.readPointer(x) } },
    { name: 'resolvePointerCliEntry', args: { userData: (x) => b.resolvePointerCliEntry(x) } },
    { name: 'pointerFileExists', args: { userData: (x) => b.pointerFileExists(x) } },
    { name: 'clearPointer', args: { userData: (x) => b.clearPointer(x) } },
    { name: 'cleanupPartials', args: { userData: (x) => b.cleanupPartials(x) } },
    { name: 'isStoreLocked', args: { userData: (x) => b.isStoreLocked(x) } },
    {
      name: 'writePointer',
      args: { userData: (x) => b.writePointer(x, { version: V, cliEntry: entry() }), pointer: (x) => b.writePointer(u(), x) },
    },
    ...['isBadVersion', 'markBadVersion', 'versionDir', 'partialDir', 'cliEntryFor', 'removeVersionDir'].map((name) => ({
      name,
      args: { userData: (x: any) => b[name](x, V), version: (x: any) => b[name](u(), x) },
    })),
    ...['versionFromCliEntry', 'confirmLaunch', 'endLaunch'].map((name) => ({
      name,
      args: { userData: (x: any) => b[name](x, entry()), cliEntry: (x: any) => b[name](u(), x) },
    })),
    {
      name: 'reportLaunchFailed',
      args: { userData: (x) => b.reportLaunchFailed(x, entry(), 'crashed'), cliEntry: (x) => b.reportLaunchFailed(u(), x, 'crashed') },
    },
    {
      name: 'beginLaunch',
      args: { userData: (x) => b.beginLaunch(x, launchOpts), bundledVersion: (x) => b.beginLaunch(u(), { bundledVersion: x }) },
    },
    {
      name: 'resolveLaunch',
      args: { userData: (x) => b.resolveLaunch(x, launchOpts), bundledVersion: (x) => b.resolveLaunch(u(), { bundledVersion: x }) },
    },
    // opts.currentVersion is optional: undefined and null are "not given".
    {
      name: 'readStoreStatus',
      async: true,
      args: { userData: (x) => b.readStoreStatus(x), currentVersion: (x) => b.readStoreStatus(u(), { currentVersion: x ?? 42 }) },
    },
    { name: 'diagnoseStore', async: true, args: { userData: (x) => b.diagnoseStore(x) } },
    // currentVersion is optional: undefined and null are "not given".
    { name: 'pruneStore', async: true, args: { userData: (x) => b.pruneStore(x), currentVersion: (x) => b.pruneStore(u(), x ?? 42) } },
  ]

  it('covers every store function the package exports', () => {
    const covered = new Set(table.map((t) => t.name))
    const exported = Object.keys(b).filter((k) => typeof b[k] === 'function')
    const notStore = ['checkAndStageLatestRuntime', 'cleanVersion', 'isStageError', 'optionLimits', 'storeLayout', 'verifyBundle']
    expect(exported.filter((k) => !notStore.includes(k) && !covered.has(k))).toEqual([])
  })

  for (const { name, async, args } of table) {
    for (const [argument, call] of Object.entries(args)) {
      it(`${name}: a ${argument} of the wrong type (a number, undefined, an object, null) ${async ? 'rejects' : 'throws'} EINVALID_OPTION naming ${argument}`, async () => {
        const before = snapshot(s.userData)
        for (const [what, x] of NOT_STRINGS) {
          let err: any
          if (async) {
            let p: Promise<unknown> | undefined
            expect(() => (p = call(x) as Promise<unknown>), `${name} threw at once for ${what}`).not.toThrow()
            err = await rejection(p!)
          } else {
            try {
              call(x)
            } catch (e) {
              err = e
            }
          }
          expect(err, `${name}(${argument}: ${what})`).toMatchObject({ code: 'EINVALID_OPTION', option: argument })
          expect(b.isStageError(err)).toBe(true)
        }
        expect(snapshot(s.userData)).toEqual(before)
      })
    }
  }

  it('reportLaunchFailed: a reason that is not a string is refused with EINVALID_OPTION naming reason', () => {
    const before = snapshot(s.userData)
    for (const reason of [42, {}, true]) {
      expect(() => b.reportLaunchFailed(u(), entry(), reason as any)).toThrow(
        expect.objectContaining({ code: 'EINVALID_OPTION', option: 'reason' }),
      )
    }
    expect(snapshot(s.userData)).toEqual(before)
    // Absent, undefined and null are "no reason".
    for (const reason of [undefined, null]) {
      expect(b.reportLaunchFailed(u(), '/elsewhere/cli.js', reason as any)).toMatchObject({ failedVersion: null })
    }
  })

  it('writePointer: a pointer.previous that is not a string is refused with EINVALID_OPTION naming pointer', () => {
    const before = snapshot(s.userData)
    for (const previous of [42, {}, true]) {
      expect(() => b.writePointer(u(), { version: V, cliEntry: entry(), previous } as any)).toThrow(
        expect.objectContaining({ code: 'EINVALID_OPTION', option: 'pointer' }),
      )
    }
    expect(snapshot(s.userData)).toEqual(before)
  })
})
