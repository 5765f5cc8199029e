// Runs one checkAndStageLatestRuntime call in its own process, for the multi-process and crash
// tests. Options come as JSON in argv[2]; the outcome (or the error's code) goes to stdout.
'use strict'
const { checkAndStageLatestRuntime } = require('../../index.js')

const opts = JSON.parse(process.argv[2])
process.stdout.write('started\n')
checkAndStageLatestRuntime(opts).then(
  (outcome) => process.stdout.write(`${JSON.stringify(outcome)}\n`),
  (err) => process.stdout.write(`${JSON.stringify({ error: err.code, message: err.message })}\n`),
)
