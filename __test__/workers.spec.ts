// Electron may load the addon in several JS contexts and tear them down at any moment. The addon
// is context-aware: it loads in worker threads beside the main thread, stages from all of them at
// once, and a worker terminated mid-call neither crashes the process nor leaves its store locked.
import path from 'node:path'
import { Worker } from 'node:worker_threads'
import { expect, it } from 'vitest'
import { binding } from './helpers/binding'
import { nativeDeps, tempDir } from './helpers/fixtures'
import { Scenario } from './helpers/scenario'

const WORKER = path.join(__dirname, 'helpers/stage-worker.cjs')

const s = Scenario.perTest((fresh) => fresh.publish('2.0.0'))

/** Options for a store of its own. */
function storeOpts() {
  return { ...s.opts(), userData: tempDir(), nativeDepsSource: nativeDeps() }
}

/** Starts a worker staging with `opts`; resolves with its first message of `kind`. */
function startWorker(opts: Record<string, unknown>) {
  const worker = new Worker(WORKER, { workerData: opts })
  const next = (kind: string) =>
    new Promise<any>((resolve, reject) => {
      worker.on('message', (m) => kind in m && resolve(m[kind]))
      worker.on('error', reject)
    })
  return { worker, next }
}

it('stages from two worker threads and the main thread at once, into separate stores', async () => {
  const stores = [storeOpts(), storeOpts(), storeOpts()]
  const a = startWorker(stores[0])
  const b = startWorker(stores[1])
  const results = await Promise.all([a.next('outcome'), b.next('outcome'), binding.checkAndStageLatestRuntime(stores[2])])
  expect(results).toEqual([0, 1, 2].map(() => ({ kind: 'staged', version: '2.0.0' })))
  for (const o of stores) {
    expect(binding.readPointer(o.userData as string)?.version).toBe('2.0.0')
    expect(binding.isStoreLocked(o.userData as string)).toBe(false)
  }
  await Promise.all([a.worker.terminate(), b.worker.terminate()])
})

it('survives a worker terminated mid-download, and its store is neither locked nor half-staged', async () => {
  // The tarball's body stalls after 10 bytes, so the worker is terminated mid-download.
  const release = s.holdTarball('2.0.0')
  const opts = storeOpts()
  const w = startWorker(opts)
  expect(await w.next('progress')).toBe('downloading')
  expect(binding.isStoreLocked(opts.userData as string)).toBe(true)
  expect(await w.worker.terminate()).toBe(1)

  // The terminated call gives up its lock without waiting for the stalled download.
  const deadline = Date.now() + 5_000
  while (binding.isStoreLocked(opts.userData as string) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  expect(binding.isStoreLocked(opts.userData as string)).toBe(false)
  release()

  // Nothing half-staged: the store has no pointer, and the next call (main thread) stages whole.
  expect(binding.readPointer(opts.userData as string)).toBeNull()
  s.registry.routes.delete(s.registry.tarballPath('kanban', '2.0.0'))
  expect(await binding.checkAndStageLatestRuntime(opts)).toEqual({ kind: 'staged', version: '2.0.0' })
  expect((await binding.readStoreStatus(opts.userData as string)).versions.map((v) => v.version)).toEqual(['2.0.0'])
})
