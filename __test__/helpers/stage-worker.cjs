// Loads the addon in a worker thread and runs one checkAndStageLatestRuntime call with the options
// in workerData, for the worker-thread test. Posts 'progress' once the download has begun, then the
// outcome or the error's code.
'use strict'
const { parentPort, workerData } = require('node:worker_threads')
const { checkAndStageLatestRuntime } = require('../../index.js')

let told = false
checkAndStageLatestRuntime({
  ...workerData,
  onProgress: (p) => {
    if (p.phase === 'downloading' && !told) {
      told = true
      parentPort.postMessage({ progress: p.phase })
    }
  },
}).then(
  (outcome) => parentPort.postMessage({ outcome }),
  (err) => parentPort.postMessage({ error: err.code }),
)
