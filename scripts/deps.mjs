// Installs the dev dependencies with `npm ci` when node_modules is missing or was installed from
// another package-lock.json, and does nothing otherwise. `npm ci` never rewrites the lock file, so
// the Quick start commands leave `git status` clean; skipping it when nothing changed keeps a
// second run fast (it would rebuild node-pty).
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const stamp = path.join(root, 'node_modules', '.kanban-runtime-stager-lock')
const lock = createHash('sha256').update(fs.readFileSync(path.join(root, 'package-lock.json'))).digest('hex')

if (fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === lock) {
  console.log('deps: node_modules matches package-lock.json')
} else {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
  execFileSync(npm, ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' })
  fs.writeFileSync(stamp, lock)
}
