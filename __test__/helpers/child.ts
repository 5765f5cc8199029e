// One checkAndStageLatestRuntime call in a process of its own (helpers/stage-child.cjs), for the
// multi-process tests: another process staging is what the locks are for.
import { type ChildProcess, spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'

const CHILD = path.join(__dirname, 'stage-child.cjs')

/**
 * Stages with `opts` in a child process; `onSpawn` may kill it. With `maxOpenFiles` the child runs
 * under that open-file limit (`ulimit -n`, POSIX only). Resolves to what it printed.
 */
export function runStageChild(
  opts: object,
  onSpawn: (c: ChildProcess) => void = () => {},
  maxOpenFiles?: number,
): Promise<string> {
  const args = [CHILD, JSON.stringify(opts)]
  const child =
    maxOpenFiles === undefined
      ? spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] })
      : spawn('sh', ['-c', `ulimit -n ${maxOpenFiles} && exec "$0" "$@"`, process.execPath, ...args], {
          stdio: ['ignore', 'pipe', 'inherit'],
        })
  let out = ''
  child.stdout!.on('data', (d) => (out += d))
  onSpawn(child)
  return new Promise((resolve, reject) => {
    child.on('error', reject)
    child.on('exit', () => resolve(out))
  })
}

/**
 * Stages with `opts` in a child process; `onSpawn` may kill it. Resolves to the last line it
 * printed: the outcome or `{ error, message }` as an object, or `'started'` if it was killed first.
 */
export async function stageInChild(
  opts: object,
  onSpawn?: (c: ChildProcess) => void,
  maxOpenFiles?: number,
): Promise<any> {
  const last = (await runStageChild(opts, onSpawn, maxOpenFiles)).trim().split('\n').pop() ?? ''
  return last.startsWith('{') ? JSON.parse(last) : last
}

/** Holds `file`'s advisory lock in another process until the returned function is called. */
export async function holdLock(file: string): Promise<() => void> {
  fs.mkdirSync(path.dirname(file), { recursive: true })
  // Its own process group: the release kills the shell and the sleep that inherited the lock.
  const child = spawn('flock', ['-x', file, '-c', 'echo held; sleep 60'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    detached: true,
  })
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve())
    child.once('exit', (code) => reject(new Error(`flock exited ${code}`)))
  })
  return () => {
    try {
      process.kill(-child.pid!, 'SIGKILL')
    } catch {
      // Already gone.
    }
  }
}
