// Loads the built addon through its generated loader, exactly as the desktop app does.
import { createRequire } from 'node:module'
import type * as Api from '../../index'

const require = createRequire(import.meta.url)
export const binding: typeof Api = require('../../index.js')

/** The rejection of a promise that must reject, for asserting its shape. */
export async function rejection(p: Promise<unknown>): Promise<any> {
  try {
    await p
  } catch (e) {
    return e
  }
  throw new Error('expected the promise to reject, it resolved')
}
