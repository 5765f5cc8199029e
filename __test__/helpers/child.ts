// One checkAndStageLatestRuntime call in a process of its own (helpers/stage-child.cjs), for the
// multi-process tests: another process staging is what the locks are for.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
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

/**
 * Holds `file`'s lock in another process until the returned function is called: util-linux
 * `flock` on POSIX, the store's own `LockFileEx` byte range (scripts/windows/win-holder.c) on Windows.
 */
export async function holdLock(file: string): Promise<() => Promise<void>> {
  fs.mkdirSync(path.dirname(file), { recursive: true })
  if (process.platform === 'win32') return holdOnWindows('lock', file)
  // Its own process group: the release kills the shell and the sleep that inherited the lock.
  const child = spawn('flock', ['-x', file, '-c', 'echo held; sleep 60'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    detached: true,
  })
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve())
    child.once('exit', (code) => reject(new Error(`flock exited ${code}`)))
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  return async () => {
    try {
      process.kill(-child.pid!, 'SIGKILL')
    } catch {
      // Already gone.
    }
    await exited
  }
}

/**
 * Windows: holds `file` (or a folder) open without FILE_SHARE_DELETE in another process, as a virus
 * scanner or the search indexer holds a file it reads, until the returned function is called.
 */
export function holdOpenOnWindows(file: string): Promise<() => Promise<void>> {
  return holdOnWindows('open', file)
}

/**
 * The Windows holder program: KANBAN_TEST_WIN_HOLDER (npm run test:windows builds it), or built
 * here from win-holder.c with the gcc or clang on PATH.
 */
function winHolder(): string {
  const given = process.env.KANBAN_TEST_WIN_HOLDER
  if (given) return given
  const exe = path.join(__dirname, '..', '..', '.cache', 'win-holder.exe')
  if (fs.existsSync(exe)) return exe
  fs.mkdirSync(path.dirname(exe), { recursive: true })
  const src = path.join(__dirname, '..', '..', 'scripts', 'windows', 'win-holder.c')
  // MinGW's gcc needs -municode for wmain; clang for the MSVC target finds wmain by itself.
  for (const [cc, ...flags] of [['gcc', '-municode'], ['clang']]) {
    const r = spawnSync(cc, ['-O2', ...flags, '-o', exe, src], { stdio: 'inherit' })
    if (r.status === 0) return exe
  }
  throw new Error(`no C compiler (gcc, clang) to build ${src}: set KANBAN_TEST_WIN_HOLDER to a built win-holder.exe`)
}

async function holdOnWindows(mode: 'lock' | 'open', file: string): Promise<() => Promise<void>> {
  // stdin is how it is told to let go; should this process die, the pipe closes and it lets go.
  const child = spawn(winHolder(), [mode, file], { stdio: ['pipe', 'pipe', 'inherit'] })
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve())
    child.once('error', reject)
    child.once('exit', (code) => reject(new Error(`win-holder ${mode} exited ${code}`)))
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  return async () => {
    child.stdin!.end()
    await exited
  }
}
