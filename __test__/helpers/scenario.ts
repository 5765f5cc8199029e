// Shared set-up for the suites: a loopback registry, a userData folder, bundled native modules,
// and assertions on the store's state.
import fs from 'node:fs'
import path from 'node:path'
import { afterEach, beforeEach, expect } from 'vitest'
import { type Published, Registry } from '../../scripts/testkit/registry.mjs'
import { binding } from './binding'
import { cleanupTempDirs, listTree, nativeDeps, runtimeTarball, snapshot, tempDir } from './fixtures'

export class Scenario {
  registry!: Registry
  userData!: string
  native!: string

  static async start(): Promise<Scenario> {
    return Scenario.of(await Registry.start())
  }

  /** A fresh userData and bundled native modules, staging from `registry`. */
  static of(registry: Registry): Scenario {
    const s = new Scenario()
    s.registry = registry
    s.userData = tempDir()
    s.native = nativeDeps()
    return s
  }

  /**
   * One Scenario for the tests of a file, started afresh before each (then given to `setup`) and
   * stopped after it.
   */
  static perTest(setup?: (s: Scenario) => void | Promise<void>): Scenario {
    const s = new Scenario()
    beforeEach(async () => {
      Object.assign(s, await Scenario.start())
      await setup?.(s)
    })
    afterEach(() => s.stop())
    return s
  }

  async stop(): Promise<void> {
    await this.registry.close()
    cleanupTempDirs()
  }

  get store(): string {
    return path.join(this.userData, 'runtime-store')
  }

  get versionsDir(): string {
    return path.join(this.store, 'versions')
  }

  /** Where staging runs work: partials, kept download bytes, folders on their way out. */
  get stagingDir(): string {
    return path.join(this.store, 'staging')
  }

  opts(extra: Record<string, unknown> = {}) {
    return {
      userData: this.userData,
      currentVersion: '1.0.0',
      nativeDepsSource: this.native,
      registry: this.registry.url,
      retries: 0,
      ...extra,
    }
  }

  publish(version: string, tarball = runtimeTarball(version), extra: Omit<Published, 'version' | 'tarball'> = {}) {
    this.registry.publish('kanban', [{ version, tarball, ...extra }], { latest: version })
  }

  /** Publishes runtime tarballs of `versions`, `latest` naming the last unless `distTags` say otherwise. */
  publishVersions(versions: string[], distTags: Record<string, string> = { latest: versions[versions.length - 1] }) {
    this.registry.publish(
      'kanban',
      versions.map((version) => ({ version, tarball: runtimeTarball(version) })),
      distTags,
    )
  }

  /** Serves `version`'s tarball with its body held back after 10 bytes until `release` is called. */
  holdTarball(version: string): () => void {
    let release!: () => void
    const held = new Promise<void>((r) => (release = r))
    this.registry.hold(this.registry.tarballPath('kanban', version), runtimeTarball(version), { until: () => held })
    return release
  }

  /** Stages `version` as the store's known-good state that a failing run must leave alone. */
  async stageBaseline(version = '1.0.5'): Promise<Record<string, string>> {
    this.publish(version)
    const outcome = await binding.checkAndStageLatestRuntime(this.opts({ currentVersion: '0.0.1' }))
    expect(outcome).toEqual({ kind: 'staged', version })
    return snapshot(this.store)
  }

  /** Leftovers: partials and folders on their way out, in `staging/` and (the first stager's) `versions/`. */
  partials(): string[] {
    const list = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir) : [])
    return [
      ...list(this.versionsDir).filter((n) => n.endsWith('.partial')),
      ...list(this.stagingDir).filter((n) => n.includes('.partial') || n.includes('.trash-')),
    ]
  }

  /** The store is byte for byte what it was, with no partial left and the pointer unchanged. */
  expectUnchanged(before: Record<string, string>, pointedVersion: string | null) {
    expect(this.partials()).toEqual([])
    expect(snapshot(this.store)).toEqual(before)
    expect(binding.readPointer(this.userData)?.version ?? null).toBe(pointedVersion)
  }

  /** Whether `versions/<v>` has everything a whole staged runtime has. */
  isWhole(version: string): boolean {
    const dir = path.join(this.versionsDir, version)
    return ['dist/cli.js', 'node_modules/node-pty/package.json', '.kanban-runtime-complete.json'].every((f) =>
      fs.existsSync(path.join(dir, f)),
    )
  }

  /** The crash invariant: no pointer, or one naming a whole version. */
  expectPointerSafe() {
    const p = binding.readPointer(this.userData)
    if (p) {
      expect(this.isWhole(p.version)).toBe(true)
      expect(binding.resolvePointerCliEntry(this.userData)).toBe(p.cliEntry)
    }
  }

  tree(version: string): string[] {
    return listTree(path.join(this.versionsDir, version))
  }
}
