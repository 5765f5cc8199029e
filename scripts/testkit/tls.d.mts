export interface TestCa {
  caPem: string
  key: string
  cert: string
}

export function writeTestCa(dir: string): boolean
export function readTestCa(dir: string): TestCa
