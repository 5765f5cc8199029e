// npm run bench: the addon against the pacote reference, Bun's installer and npm on the real
// kanban tarball, served by a registry on 127.0.0.1. Each run is a fresh process with a fresh
// userData (or project folder and cache); the four take turns in each round after a warm-up. Also: the floor (Rust inflate + untar +
// write from memory), the no-op paths, the JS thread's worst lateness, peak RSS with a
// tarball four times larger, the flaky-link scenario (bench/flaky.mjs), and beginLaunch on the
// start-up path (bench/launch.mjs).
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { realRuntimeTarball } from '../scripts/fixtures/runtime.mjs'
import { Registry } from '../scripts/testkit/registry.mjs'
import { flaky, printFlaky } from './flaky.mjs'
import { hostile } from './hostile.mjs'
import { launchBench } from './launch.mjs'
import { bunInstall, findBun, hasGnuTime, measured, npmInstall } from './peers.mjs'
import { bundledNativeDeps, CHILD, runChild, runOptions } from './runs.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.dirname(here)
/** The measured tarball: the real runtime when it can be fetched, else the synthetic stand-in. */
let FIXTURE
const PAIRS = Number(process.env.BENCH_PAIRS ?? 7)
const NOOP_CALLS = 20
/** How many times larger the memory-check tarball is than the real one. */
const SCALE = Number(process.env.BENCH_SCALE ?? 4)
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'krs-bench-'))

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
const fmt = (n, d = 1) => n.toFixed(d)


let runNo = 0
/**
 * One staging run in a fresh child, measured as a whole process too: the call's own time and
 * the child's report, plus the process's wall time as this process saw it and, under GNU time,
 * its CPU time and peak RSS (else the child's own figures).
 */
async function stageMeasured(impl, registry, native) {
  const dir = path.join(work, `run-${runNo++}`)
  const userData = path.join(dir, 'userData')
  fs.mkdirSync(dir, { recursive: true })
  const whole = await measured(process.execPath, [CHILD, impl, JSON.stringify(runOptions(userData, native, registry))], { cwd: dir })
  fs.rmSync(dir, { recursive: true, force: true })
  const report = JSON.parse(whole.out.trim().split('\n').pop())
  if (report.outcome.kind !== 'staged') throw new Error(`${impl} run: ${JSON.stringify(report.outcome)}`)
  if (process.env.BENCH_VERBOSE) console.log(JSON.stringify(report))
  return { ...report, wallMs: whole.wallMs, cpuMs: whole.cpuMs ?? report.cpuMs, peakRssMB: whole.peakRssMB ?? report.peakRssMB }
}

/** One run of a peer (`bun` or `npm`) in a fresh project folder. */
async function peerRun(name, registry, bun) {
  const dir = path.join(work, `run-${runNo++}`)
  const r = name === 'bun' ? await bunInstall(bun, registry, dir, '0.1.70') : await npmInstall(registry, dir, '0.1.70')
  fs.rmSync(dir, { recursive: true, force: true })
  if (process.env.BENCH_VERBOSE) console.log(JSON.stringify({ name, ...r, out: undefined }))
  return { ms: r.wallMs, wallMs: r.wallMs, cpuMs: r.cpuMs, peakRssMB: r.peakRssMB, worstLateMs: 0 }
}

async function stageInChild(impl, registry, native) {
  const userData = path.join(work, `run-${runNo++}`)
  const { code, report } = await runChild(impl, runOptions(userData, native, registry))
  fs.rmSync(userData, { recursive: true, force: true })
  if (code !== 0 || !report) throw new Error(`${impl} run exited with ${code}`)
  if (report.outcome.kind !== 'staged') throw new Error(`${impl} run: ${JSON.stringify(report.outcome)}`)
  if (process.env.BENCH_VERBOSE) console.log(JSON.stringify(report))
  return report
}

function summary(label, runs) {
  const ms = runs.map((r) => r.ms)
  const rss = runs.map((r) => r.peakRssMB)
  const known = (xs) => (xs.some((x) => x == null) ? null : median(xs))
  return {
    label,
    medianWallMs: known(runs.map((r) => r.wallMs)),
    medianCpuMs: known(runs.map((r) => r.cpuMs)),
    medianMs: median(ms),
    minMs: Math.min(...ms),
    maxMs: Math.max(...ms),
    medianRssMB: known(rss),
    maxRssMB: rss.some((x) => x == null) ? null : Math.max(...rss),
    worstLateMs: Math.max(...runs.map((r) => r.worstLateMs)),
  }
}

function printRow(s) {
  console.log(
    `${s.label.padEnd(22)} ${fmt(s.medianMs).padStart(8)} ${fmt(s.minMs).padStart(8)} ${fmt(s.maxMs).padStart(8)}` +
      ` ${fmt(s.medianRssMB).padStart(9)} ${fmt(s.maxRssMB).padStart(9)} ${fmt(s.worstLateMs).padStart(9)}`,
  )
}

async function noopPaths(registry, native) {
  const { checkAndStageLatestRuntime } = createRequire(import.meta.url)('../index.js')
  const userData = path.join(work, 'noop')
  const opts = { userData, currentVersion: '0.1.69', nativeDepsSource: native, registry: registry.url, hostNodeVersion: '22.12.0' }
  await checkAndStageLatestRuntime(opts) // stage once so already-staged has something to find
  const time = async (o, kind) => {
    const requests = () => ({ doc: registry.count('/kanban'), tarball: registry.tarballRequests() })
    const before = requests()
    const ms = []
    for (let i = 0; i < NOOP_CALLS; i++) {
      const t = performance.now()
      const outcome = await checkAndStageLatestRuntime(o)
      ms.push(performance.now() - t)
      if (outcome.kind !== kind) throw new Error(`expected ${kind}, got ${outcome.kind}`)
    }
    const after = requests()
    return {
      kind,
      medianMs: median(ms),
      docRequestsPerCall: (after.doc - before.doc) / NOOP_CALLS,
      tarballRequests: after.tarball - before.tarball,
    }
  }
  const upToDate = await time({ ...opts, currentVersion: '0.1.70' }, 'up-to-date')
  const already = await time(opts, 'already-staged')
  fs.rmSync(userData, { recursive: true, force: true })
  return [upToDate, already]
}

/** A tarball SCALE times the size: the real package plus SCALE - 1 renamed copies of its files. */
function scaledTarball() {
  const dir = path.join(work, 'quad')
  fs.mkdirSync(dir, { recursive: true })
  execFileSync('tar', ['-xzf', FIXTURE, '-C', dir])
  const pkg = path.join(dir, 'package')
  const originals = fs.readdirSync(pkg)
  for (let i = 1; i < SCALE; i++) {
    for (const name of originals) fs.cpSync(path.join(pkg, name), path.join(pkg, `copy${i}`, name), { recursive: true })
  }
  const out = path.join(work, `kanban-${SCALE}x.tgz`)
  execFileSync('tar', ['-czf', out, '-C', dir, 'package'])
  fs.rmSync(dir, { recursive: true, force: true })
  return out
}

function floor() {
  execFileSync('cargo', ['build', '--release', '-p', 'runtime-stager-core', '--features', 'floor', '--example', 'floor'], { cwd: root, stdio: 'inherit' })
  const bin = path.join(root, 'target/release/examples/floor')
  return JSON.parse(execFileSync(bin, [FIXTURE, work, String(PAIRS)], { encoding: 'utf8' }))
}

async function main() {
  const fixture = realRuntimeTarball()
  FIXTURE = fixture.file
  const registry = (await Registry.start()).withEtags()
  const native = bundledNativeDeps(work)
  registry.publishFile('kanban', '0.1.70', FIXTURE)
  const size = fs.statSync(FIXTURE).size
  console.log(`kanban-runtime-stager bench: ${path.basename(FIXTURE)} (${fixture.real ? 'the real runtime' : 'SYNTHETIC stand-in: the real runtime could not be fetched'}, ${fmt(size / 1e6)} MB), ${PAIRS} pairs, ${os.cpus().length} cores, ${os.cpus()[0]?.model ?? ''}, node ${process.version}`)

  const bun = findBun()
  const { addon, pacote, ratios, peers } = await pairs(registry, native, bun)
  const fl = floor()
  const noop = await noopPaths(registry, native)
  const quad = scaledTarball()
  const quadRuns = await scaledRuns(registry, native, quad)
  await registry.close()
  const hostileRows = await hostile(work, native)
  const flakyLink = await flaky(work, native, FIXTURE)
  const launch = await launchBench(work)

  const sa = summary('addon', addon)
  const sp = summary('pacote reference', pacote)
  const sq = summary(`addon, ${SCALE}x (${fmt(fs.statSync(quad).size / 1e6)} MB)`, quadRuns)
  const ratio = median(ratios)
  printSpeed(sa, sp, sq, ratio, fl, noop)
  const peerFigures = printPeers(sa, peers, addon, bun)
  printLaunch(launch)
  const hostileFailures = printHostile(hostileRows)
  const flakyMissed = printFlaky(flakyLink)
  saveResults({ date: new Date().toISOString(), pairs: PAIRS, addon: sa, pacote: sp, peers: peerFigures, quad: sq, ratio, floor: fl, noop, launch, hostile: hostileRows, flaky: flakyLink })
  if (hostileFailures) {
    console.error(`${hostileFailures} hostile input(s) not refused as expected within 80 MB`)
    process.exit(1)
  }
  if (flakyMissed) {
    console.error('the flaky-link goal was missed')
    process.exit(1)
  }
}

/**
 * The timed rounds after one warm-up run of each (not counted): in each, the addon, the pacote
 * reference, Bun (unless it cannot run here) and npm, one after the other, each a fresh process.
 */
async function pairs(registry, native, bun) {
  await stageMeasured('addon', registry.url, native)
  await stageMeasured('pacote', registry.url, native)
  const peerNames = [...(bun.bin ? ['bun'] : []), 'npm']
  for (const name of peerNames) await peerRun(name, registry.url, bun)
  const addon = []
  const pacote = []
  const ratios = []
  const peers = Object.fromEntries(peerNames.map((n) => [n, []]))
  for (let i = 0; i < PAIRS; i++) {
    const a = await stageMeasured('addon', registry.url, native)
    const b = await stageMeasured('pacote', registry.url, native)
    addon.push(a)
    pacote.push(b)
    ratios.push(a.ms / b.ms)
    for (const name of peerNames) peers[name].push(await peerRun(name, registry.url, bun))
  }
  return { addon, pacote, ratios, peers }
}

/**
 * The addon against each peer's whole process, round by round: the call alone (what the app's
 * main process waits for) and the addon's whole process (start Node, load the addon, stage), with
 * CPU time and peak RSS. Returns the figures saved with the results.
 */
function printPeers(sa, peers, addon, bun) {
  const ms = (x) => (x == null ? 'n/a' : fmt(x))
  console.log(`\nagainst other installers, whole processes in the same rounds (ms; CPU = user + sys of the whole process${hasGnuTime ? '' : ', n/a without GNU time'}; MB)`)
  console.log(`${''.padEnd(30)} ${'call'.padStart(8)} ${'process'.padStart(8)} ${'CPU'.padStart(8)} ${'rss max'.padStart(9)}`)
  console.log(`${'addon'.padEnd(30)} ${fmt(sa.medianMs).padStart(8)} ${ms(sa.medianWallMs).padStart(8)} ${ms(sa.medianCpuMs).padStart(8)} ${fmt(sa.maxRssMB).padStart(9)}`)
  if (!bun.bin) console.log(`bun: skipped, ${bun.skip}`)
  const out = {}
  for (const [name, runs] of Object.entries(peers)) {
    const s = summary(name === 'bun' ? `bun install (Bun ${bun.version})` : 'npm install', runs)
    console.log(`${s.label.padEnd(30)} ${''.padStart(8)} ${fmt(s.medianWallMs).padStart(8)} ${ms(s.medianCpuMs).padStart(8)} ${ms(s.maxRssMB ?? null).padStart(9)}`)
    const per = (f) => median(runs.map((r, i) => f(addon[i]) / r.wallMs))
    const call = per((a) => a.ms)
    const whole = per((a) => a.wallMs)
    const cpu = s.medianCpuMs == null || sa.medianCpuMs == null ? null : sa.medianCpuMs / s.medianCpuMs
    const goal = name === 'bun' ? ' (goals: call <= 0.8, process <= 1, CPU <= 1)' : ''
    console.log(`  median ratio addon / ${name}: call ${fmt(call, 2)}, whole process ${fmt(whole, 2)}, CPU ${cpu == null ? 'n/a' : fmt(cpu, 2)}${goal}`)
    out[name] = { ...s, callRatio: call, processRatio: whole, cpuRatio: cpu }
  }
  return out
}

/** Three addon runs of the scaled tarball, which the registry serves from now on. */
async function scaledRuns(registry, native, quad) {
  registry.publishFile('kanban', '0.1.70', quad)
  const runs = []
  for (let i = 0; i < 3; i++) runs.push(await stageInChild('addon', registry.url, native))
  return runs
}

/** The speed, memory, JS-thread and no-change figures, each beside its target. */
function printSpeed(sa, sp, sq, ratio, fl, noop) {
  console.log(`\nstaging the real tarball (wall time of the call in ms; peak RSS of the process in MB)`)
  console.log(`${''.padEnd(22)} ${'median'.padStart(8)} ${'min'.padStart(8)} ${'max'.padStart(8)} ${'rss med'.padStart(9)} ${'rss max'.padStart(9)} ${'js late'.padStart(9)}`)
  printRow(sa)
  printRow(sp)
  printRow(sq)
  console.log(`\nmedian ratio addon / pacote over ${PAIRS} pairs: ${fmt(ratio, 3)} (target <= 0.33)`)
  console.log(`floor (Rust inflate + untar + durable write from memory): median ${fmt(fl.medianMs)} ms; addon / floor: ${fmt(sa.medianMs / fl.medianMs, 2)} (target <= 1.5)`)
  console.log(`peak RSS: addon ${fmt(sa.maxRssMB)} MB (target <= 80), ${SCALE}x tarball ${fmt(sq.maxRssMB)} MB, pacote ${fmt(sp.maxRssMB)} MB`)
  console.log(`JS thread: worst lateness of a 10 ms ticker during addon staging ${fmt(sa.worstLateMs)} ms (target <= 50)`)
  for (const n of noop) {
    console.log(`${n.kind}: median ${fmt(n.medianMs, 2)} ms over ${NOOP_CALLS} calls, ${n.docRequestsPerCall} document request(s) per call, ${n.tarballRequests} tarball requests (target < 20 ms, 1, 0)`)
  }
}

/** beginLaunch's figures beside the start-up path's target. */
function printLaunch(l) {
  const ok = l.worstMs < 5 ? 'ok' : 'MISSED'
  console.log(
    `beginLaunch (a trial launch, ${l.versions} staged versions, pointer, bad list, launch record): median ${fmt(l.medianMs, 2)} ms, p99 ${fmt(l.p99Ms, 2)} ms, worst ${fmt(l.worstMs, 2)} ms over ${l.calls} calls (target < 5 ms: ${ok})`,
  )
}

/** Prints each hostile input's row; the number refused otherwise than expected. */
function printHostile(rows) {
  console.log(`\nhostile input, each staged by a fresh child (peak RSS target <= 80 MB, refused with its code)`)
  let failures = 0
  for (const h of rows) {
    const ok = h.code === h.expected && h.peakRssMB <= 80
    if (!ok) failures += 1
    console.log(`${h.name.padEnd(44)} ${String(h.code).padEnd(12)} peak RSS ${fmt(h.peakRssMB).padStart(6)} MB ${ok ? 'ok' : `FAIL (expected ${h.expected}, <= 80 MB)`}`)
  }
  return failures
}

/** Writes the figures to bench/.work/results.json and removes the run's work folder. */
function saveResults(results) {
  fs.mkdirSync(path.join(here, '.work'), { recursive: true })
  fs.writeFileSync(path.join(here, '.work', 'results.json'), `${JSON.stringify(results, null, 2)}\n`)
  fs.rmSync(work, { recursive: true, force: true })
}

main().catch((e) => {
  console.error(e)
  fs.rmSync(work, { recursive: true, force: true })
  process.exit(1)
})
