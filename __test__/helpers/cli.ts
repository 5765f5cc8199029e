// The command line and one-off `node -e` scripts in processes of their own, run as a person or a
// script would run them (stdout is not a TTY).
import { spawn } from 'node:child_process'
import path from 'node:path'
import type { Scenario } from './scenario'

export const BIN = path.join(__dirname, '../../bin/kanban-runtime-stager.js')

/** A script prefix that loads the built addon as `b`. */
export const LOAD_ADDON = `const b = require(${JSON.stringify(path.join(__dirname, '../../index.js'))});`

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
  /** From spawn to exit. */
  ms: number
}

/**
 * Runs the command line with `args`, `env` added to this process's environment. With `killAfterMs`
 * a run that has not exited by then is killed (a hang then shows as `code: null`).
 */
export function runCli(args: string[], env: Record<string, string> = {}, killAfterMs?: number): Promise<CliResult> {
  return new Promise((resolve) => {
    const t0 = Date.now()
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } })
    const timer = killAfterMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), killAfterMs)
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr, ms: Date.now() - t0 })
    })
  })
}

/** `stage` into the scenario's store from its registry, as an app running 1.0.0. */
export function stageArgs(s: Scenario): string[] {
  return ['stage', '--user-data', s.userData, '--native-deps', s.native, '--registry', s.registry.url, '--current-version', '1.0.0']
}

/** Runs `script` with `node -e`; a hang shows as a kill after 20 s. */
export function runScript(script: string): Promise<{ code: number | null; signal: string | null; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
    let stdout = ''
    child.stdout.on('data', (d) => (stdout += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout })
    })
  })
}
