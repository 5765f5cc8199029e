// npm provenance attestations made by the tests: Sigstore bundles (DSSE envelope, Rekor entry
// with its signed entry timestamp) signed with the test CA's leaf and the test log key in
// __test__/fixtures/provenance/, written by `cargo run -p runtime-stager-provenance --features
// testkit --example provenance-fixtures`.
import { createHash, createPrivateKey, createPublicKey, sign, X509Certificate } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'

const dir = path.join(__dirname, '..', 'fixtures', 'provenance')
const read = (name: string) => fs.readFileSync(path.join(dir, name), 'utf8')

/** The repository and workflow the test leaves were issued for. */
export const REPOSITORY = 'kanban-org/kanban'
export const WORKFLOW = '.github/workflows/publish.yml'
/** The trust root that trusts the test CA and the test log key. */
export const trustRoot = read('trusted_root.json')
/** 2025-01-01T00:05:00Z: inside the leaves' ten minutes of validity. */
const INTEGRATED_TIME = 1735689900
const PAYLOAD_TYPE = 'application/vnd.in-toto+json'
const SLSA_V1 = 'https://slsa.dev/provenance/v1'

export interface Signer {
  certPem: string
  keyPem: string
}
export const trustedLeaf: Signer = { certPem: read('leaf.pem'), keyPem: read('leaf.key.pem') }
export const otherCaLeaf: Signer = { certPem: read('other-ca-leaf.pem'), keyPem: read('other-ca-leaf.key.pem') }
const leafOf = (name: string): Signer => ({ certPem: read(`${name}.pem`), keyPem: read(`${name}.key.pem`) })
/** Leaves of the trusted CA for a push of tag `v2.0.0`, and for runs a pull request triggered. */
export const tagLeaf = leafOf('tag-leaf')
export const pullRequestLeaf = leafOf('pull-request-leaf')
export const pullRequestTargetLeaf = leafOf('pull-request-target-leaf')
/**
 * Leaves of the trusted CA for a push of `main` that the certificate check refuses: one repeats
 * its source repository extension (`evil/kanban` second), one is BER, not DER.
 */
export const repeatedExtensionLeaf = leafOf('repeated-extension-leaf')
export const berLeaf = leafOf('ber-leaf')
const logKey = createPrivateKey(read('rekor.key.pem'))

function pae(type: string, payload: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} ${type} ${payload.length} `), payload])
}

/**
 * npm's attestations response for `name@version` whose statement names `tarball`'s sha512 (or
 * `digestHex` instead), signed by `signer`; the bundle's certificate `rawBytes` are
 * `rawBytes(der)` when given (the log entry still names the signer's certificate).
 */
export function attestations(
  name: string,
  version: string,
  tarball: Buffer,
  {
    signer = trustedLeaf,
    digestHex,
    rawBytes = (der) => der.toString('base64'),
  }: { signer?: Signer; digestHex?: string; rawBytes?: (der: Buffer) => string } = {},
): Buffer {
  const statement = Buffer.from(
    JSON.stringify({
      _type: 'https://in-toto.io/Statement/v1',
      subject: [
        {
          name: `pkg:npm/${name.replace(/^@/, '%40')}@${version}`,
          digest: {
            sha512: digestHex ?? createHash('sha512').update(tarball).digest('hex'),
            sha256: createHash('sha256').update(tarball).digest('hex'),
          },
        },
      ],
      predicateType: SLSA_V1,
      predicate: { buildDefinition: {}, runDetails: {} },
    }),
  )
  const sig = sign('sha256', pae(PAYLOAD_TYPE, statement), createPrivateKey(signer.keyPem))
  const certDer = new X509Certificate(signer.certPem).raw
  const body = Buffer.from(
    JSON.stringify({
      apiVersion: '0.0.1',
      kind: 'dsse',
      spec: {
        envelopeHash: { algorithm: 'sha256', value: '00' },
        payloadHash: { algorithm: 'sha256', value: createHash('sha256').update(statement).digest('hex') },
        signatures: [{ signature: sig.toString('base64'), verifier: Buffer.from(signer.certPem).toString('base64') }],
      },
    }),
  ).toString('base64')
  const spki = createPublicKey(logKey).export({ type: 'spki', format: 'der' })
  const logId = createHash('sha256').update(spki).digest()
  const logIndex = 7
  const set = sign(
    'sha256',
    Buffer.from(
      `{"body":"${body}","integratedTime":${INTEGRATED_TIME},"logID":"${logId.toString('hex')}","logIndex":${logIndex}}`,
    ),
    logKey,
  )
  // A log of one entry: the root hash is the entry's leaf hash, the audit path empty.
  const rootHash = createHash('sha256')
    .update(Buffer.concat([Buffer.from([0]), Buffer.from(body, 'base64')]))
    .digest()
  const note = `rekor.test - 1\n1\n${rootHash.toString('base64')}\n`
  const noteSig = Buffer.concat([logId.subarray(0, 4), sign('sha256', Buffer.from(note), logKey)])
  const bundle = {
    mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
    verificationMaterial: {
      certificate: { rawBytes: rawBytes(certDer) },
      tlogEntries: [
        {
          logIndex: String(logIndex),
          logId: { keyId: logId.toString('base64') },
          kindVersion: { kind: 'dsse', version: '0.0.1' },
          integratedTime: String(INTEGRATED_TIME),
          inclusionPromise: { signedEntryTimestamp: set.toString('base64') },
          inclusionProof: {
            logIndex: '0',
            rootHash: rootHash.toString('base64'),
            treeSize: '1',
            hashes: [],
            checkpoint: { envelope: `${note}\n\u2014 rekor.test ${noteSig.toString('base64')}\n` },
          },
          canonicalizedBody: body,
        },
      ],
    },
    dsseEnvelope: {
      payload: statement.toString('base64'),
      payloadType: PAYLOAD_TYPE,
      signatures: [{ sig: sig.toString('base64'), keyid: '' }],
    },
  }
  return Buffer.from(
    JSON.stringify({
      attestations: [
        { predicateType: 'https://github.com/npm/attestation/tree/main/specs/publish/v0.1', bundle: {} },
        { predicateType: SLSA_V1, bundle },
      ],
    }),
  )
}
