#!/usr/bin/env node
// Runs every cargo-fuzz target in fuzz/ for FUZZ_SECONDS each (default 60), one after another,
// and fails on the first crash, leak or out-of-memory. Needs `cargo install cargo-fuzz`; the
// sanitizer flags need nightly, or RUSTC_BOOTSTRAP=1 on stable (set here).
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const fuzzDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fuzz')
const seconds = Number(process.env.FUZZ_SECONDS ?? 60)
if (!Number.isInteger(seconds) || seconds <= 0) {
  console.error(`FUZZ_SECONDS must be a positive integer, got ${process.env.FUZZ_SECONDS}`)
  process.exit(2)
}
const env = {
  ...process.env,
  RUSTC_BOOTSTRAP: '1',
  // ASan's default 256 MB quarantine of freed memory alone would trip the 200 MB RSS cap.
  ASAN_OPTIONS: process.env.ASAN_OPTIONS ?? 'quarantine_size_mb=16',
}

const list = spawnSync('cargo', ['fuzz', 'list'], { cwd: fuzzDir, env, encoding: 'utf8' })
if (list.status !== 0) {
  console.error(list.stderr || list.error?.message)
  console.error('cargo-fuzz is needed: cargo install cargo-fuzz')
  process.exit(2)
}
const targets = list.stdout.split('\n').map((t) => t.trim()).filter(Boolean)
const results = []
for (const target of targets) {
  console.log(`\n=== ${target}: ${seconds} s`)
  const started = Date.now()
  // 200 MB RSS and single-allocation cap: hostile input must never allocate without bound.
  // The extractor starts a flush thread per input, and ASan keeps ~200 bytes per dead thread:
  // over a long run that alone passes the cap, so those targets run without a sanitizer (safe
  // Rust; the RSS cap is then our own allocations). The parsers run under ASan.
  const sanitizer = target.startsWith('extract') ? ['--sanitizer', 'none'] : []
  const run = spawnSync(
    'cargo',
    ['fuzz', 'run', ...sanitizer, target, '--', `-max_total_time=${seconds}`, '-rss_limit_mb=200', '-timeout=30'],
    { cwd: fuzzDir, env, stdio: 'inherit' },
  )
  const took = Math.round((Date.now() - started) / 1000)
  results.push({ target, ok: run.status === 0, took })
  if (run.status !== 0) break
}
console.log('')
for (const r of results) console.log(`${r.ok ? 'clean ' : 'FAILED'} ${r.target} (${r.took} s)`)
process.exit(results.every((r) => r.ok) && results.length === targets.length ? 0 : 1)
