// One staging run in a fresh process: times the call, watches the JS thread, reports peak RSS.
// argv: impl ('addon' | 'pacote'), JSON options.
import { createRequire } from 'node:module'
import { performance } from 'node:perf_hooks'

const [impl, json] = process.argv.slice(2)
const opts = JSON.parse(json)
const stage =
  impl === 'addon'
    ? createRequire(import.meta.url)('../index.js').checkAndStageLatestRuntime
    : (await import('./reference.mjs')).checkAndStageLatestRuntime

// A 10 ms ticker: how late it fires is how long the JS thread was blocked.
let worstLateMs = 0
let expected = performance.now() + 10
const ticker = setInterval(() => {
  const now = performance.now()
  worstLateMs = Math.max(worstLateMs, now - expected)
  expected = now + 10
}, 10)

const t0 = performance.now()
const outcome = await stage(opts)
const ms = performance.now() - t0
clearInterval(ticker)
process.stdout.write(
  `${JSON.stringify({ impl, ms, peakRssMB: process.resourceUsage().maxRSS / 1024, worstLateMs, outcome })}\n`,
)
