// The smallest Electron app using the stager the way the README tells apps to: run from app.asar
// with the addon's .node unpacked, calling it from the main process. run.mjs packs and launches it
// with SMOKE_* set, and reads the one SMOKE_RESULT line this prints.
'use strict'

const { app } = require('electron')

async function main() {
  app.setPath('userData', process.env.SMOKE_USER_DATA)
  await app.whenReady()
  // Required here rather than at the top, so a loading failure is reported like any other.
  const { checkAndStageLatestRuntime } = require('kanban-runtime-stager')
  return checkAndStageLatestRuntime({
    userData: app.getPath('userData'),
    currentVersion: '0.0.1',
    nativeDepsSource: process.env.SMOKE_NATIVE_DEPS,
    registry: process.env.SMOKE_REGISTRY,
    // Loopback and a tiny tarball: a minute means something is stuck.
    timeoutMs: 60_000,
  })
}

main().then(
  (outcome) => {
    console.log(`SMOKE_RESULT ${JSON.stringify({ outcome })}`)
    app.exit(0)
  },
  (err) => {
    console.log(`SMOKE_RESULT ${JSON.stringify({ error: { code: err.code, message: err.message } })}`)
    app.exit(1)
  },
)
