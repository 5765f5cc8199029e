// A private certificate authority and a server certificate for 127.0.0.1, made with openssl for
// the TLS tests (as corporate TLS interception uses). Where the tests run without openssl (Windows
// Node under Wine), npm run test:windows makes them with the host's openssl beforehand and names
// the folder in KANBAN_TEST_TLS_DIR.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'

const FILES = { caPem: 'ca.pem', key: 'srv.key', cert: 'srv.pem' }

/** Makes the CA and the server certificate in `dir` (which exists); false without openssl. */
export function writeTestCa(dir) {
  const ssl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' })
  try {
    ssl('version')
  } catch {
    return false
  }
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']
  const ca = ['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign']
  ssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=krs-test-ca', ...ca)
  ssl('req', ...ec, '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=127.0.0.1')
  fs.writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n')
  ssl('x509', '-req', '-in', 'srv.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'srv.pem', '-days', '2', '-extfile', 'ext.cnf')
  return true
}

/** The PEMs in `dir`, as writeTestCa left them. */
export function readTestCa(dir) {
  return Object.fromEntries(Object.entries(FILES).map(([k, f]) => [k, fs.readFileSync(path.join(dir, f), 'utf8')]))
}
