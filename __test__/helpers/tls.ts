// A private certificate authority and a server certificate for 127.0.0.1, made with openssl for
// the TLS tests (as corporate TLS interception uses). Null where openssl is missing.
import { execSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { tempDir } from './fixtures'

export interface TestCa {
  caPem: string
  key: string
  cert: string
}

export function makeTestCa(): TestCa | null {
  const dir = tempDir('krs-tls-')
  const sh = (cmd: string) => execSync(cmd, { cwd: dir, stdio: 'pipe', shell: '/bin/sh' })
  try {
    sh('openssl version')
  } catch {
    return null
  }
  sh(
    'openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 ' +
      '-subj /CN=krs-test-ca -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign',
  )
  sh('openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout srv.key -out srv.csr -subj /CN=127.0.0.1')
  fs.writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n')
  sh('openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 -extfile ext.cnf')
  const read = (f: string) => fs.readFileSync(path.join(dir, f), 'utf8')
  return { caPem: read('ca.pem'), key: read('srv.key'), cert: read('srv.pem') }
}
