// A staged folder held by another process, as Windows holds one: a runtime still running from it,
// a scanner with a file open. On Windows a real holder process; on Linux, which lets any file be
// deleted and any folder be renamed while open, the immutable attribute stands in (root only).
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'

export interface Hold {
  /** Lets go; the folder may have moved since, which the release follows. */
  release(): Promise<void>
}

/**
 * Holds `dir`: `delete` keeps what is in it from being deleted while the folder itself may still
 * be renamed (a loaded native module on Windows); `move` keeps the folder from being moved out of
 * its name too (a process whose working directory it is, on Windows). `storeRoot` is where a moved
 * folder is looked for on release.
 */
export async function holdFolder(dir: string, how: 'delete' | 'move', storeRoot: string): Promise<Hold> {
  if (process.platform === 'win32') return holdOnWindows(dir, how)
  const target = how === 'move' ? dir : path.join(dir, 'dist', 'cli.js')
  const r = spawnSync('chattr', ['+i', target], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`chattr +i ${target}: ${r.stderr || r.error} (the tests run as root on ext4)`)
  return {
    async release() {
      // Wherever it went (renamed aside into staging/, say): lifted from the whole store.
      spawnSync('chattr', ['-R', '-i', storeRoot])
    },
  }
}

async function holdOnWindows(dir: string, how: 'delete' | 'move'): Promise<Hold> {
  // `delete`: a native module loaded from the folder, as a runtime's node-pty is; Windows refuses
  // to delete a loaded module. `move`: a process working inside it, which Windows refuses to let
  // the folder be renamed or deleted under.
  let script = 'process.stdout.write("held\\n"); setInterval(() => {}, 1000)'
  if (how === 'delete') {
    // This platform's build of the addon: a real native module, as node-pty's is.
    const addon = fs.readdirSync(path.join(__dirname, '..', '..')).find((f) => f.endsWith('.node') && f.includes(`${process.platform}-${process.arch}`))
    if (!addon) throw new Error('no built addon to load as a held module')
    const module = path.join(dir, 'held.node')
    fs.copyFileSync(path.join(__dirname, '..', '..', addon), module)
    script = `process.dlopen({ exports: {} }, ${JSON.stringify(module)}); ${script}`
  }
  const child = spawn(process.execPath, ['-e', script], { cwd: how === 'move' ? dir : undefined, stdio: ['ignore', 'pipe', 'inherit'] })
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve())
    child.once('exit', (code) => reject(new Error(`holder exited ${code}`)))
  })
  return {
    async release() {
      if (child.exitCode !== null || child.signalCode !== null) return
      const gone = new Promise((r) => child.once('exit', r))
      child.kill()
      await gone
    },
  }
}
