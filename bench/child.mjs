// One staging run in a fresh process: times the call, watches the JS thread, reports peak RSS.
// argv: impl ('addon' | 'pacote'), JSON options.
import { readFileSync } from 'node:fs'
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

/**
 * Peak RSS of this process image in MB. On Linux, VmHWM: getrusage's maxrss would carry over the
 * parent's RSS at fork time, so a child of a large parent would report the parent's size.
 */
function peakRssMB() {
  try {
    const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))
    if (kb) return Number(kb[1]) / 1024
  } catch {}
  return process.resourceUsage().maxRSS / 1024
}

const t0 = performance.now()
// A rejection is a result too (the hostile-input runs expect one): its code is reported.
const outcome = await stage(opts).catch((err) => ({ error: err.code ?? String(err), messageLength: String(err.message).length }))
const ms = performance.now() - t0
clearInterval(ticker)
// The whole process's CPU time so far, start-up included: what a peer's whole process is held to.
const cpu = process.cpuUsage()
const cpuMs = (cpu.user + cpu.system) / 1000
process.stdout.write(
  `${JSON.stringify({ impl, ms, cpuMs, peakRssMB: peakRssMB(), worstLateMs, outcome })}\n`,
)
