//! Transparency log entries: a trusted Rekor log recorded this signature (its SET, its entry
//! body, its inclusion proof and the checkpoint that proof leads to).
//!
//! An entry and its body are read into the typed forms below, one entry at a time: a malformed
//! entry is that entry's refusal (`transparencyLog`), not the whole bundle's.

use super::dsse::{pae, Envelope};
use super::encoding::{b64, hex, pem_der, NotBase64};
use super::material::{Content, Material};
use super::refusal::{refuse, Check, Refusal};
use super::root::{LogKey, TrustRoot};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::signature::UnparsedPublicKey;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// What a verified log entry vouches for.
pub(super) struct Logged<'r> {
    /// The integrated time its SET signs; none for a Rekor v2 entry, which has no SET.
    pub(super) integrated: Option<i64>,
    pub(super) key: &'r LogKey,
}

/// The signature a log entry must record, and the logs trusted to record it.
pub(super) struct Signed<'s, 'r> {
    /// The bundle's format version (`0.1` is 1): which proofs an entry must carry.
    pub(super) version: u8,
    pub(super) material: &'s Material,
    pub(super) content: &'s Content<'s>,
    /// The artifact's digest, for a message signature.
    pub(super) artifact: Option<&'s [u8; 32]>,
    pub(super) root: &'r TrustRoot,
}

/// Why a log entry does not vouch for this signature.
#[derive(Debug, thiserror::Error)]
pub(super) enum LogError {
    #[error("the log entry is malformed: {0}")]
    Malformed(serde_json::Error),
    #[error("the log entry has a negative {0}")]
    Negative(&'static str),
    #[error("log entry is from an unknown transparency log")]
    UnknownLog,
    #[error("the log's signed entry timestamp does not verify")]
    BadSet,
    #[error("log entry has no signed entry timestamp")]
    NoSet,
    #[error("the log entry has a signed entry timestamp but no integrated time")]
    NoIntegratedTime,
    #[error("the log entry has no inclusion proof")]
    NoInclusionProof,
    #[error("the log entry body is not JSON")]
    BodyNotJson,
    #[error("the log entry's `{kind}` {version} body is malformed: {error}")]
    BadBody {
        kind: String,
        version: String,
        error: serde_json::Error,
    },
    #[error("a `{0}` entry cannot record a message signature")]
    NotAMessageKind(String),
    #[error("unsupported log entry kind `{0}` {1}")]
    UnsupportedKind(String, String),
    #[error("no artifact to check the entry with")]
    NoArtifact,
    #[error("the log entry's hash is not SHA-256")]
    NotSha256,
    #[error("the log entry has no {0}")]
    Missing(&'static str),
    #[error("the log entry's key is not PEM")]
    NotPem,
    #[error("the log entry has not one signature")]
    NotOneSignature,
    #[error("the log entry is for another {0}")]
    Other(&'static str),
    #[error("the inclusion proof has more than {MAX_PROOF_HASHES} hashes")]
    LongProof,
    #[error("an inclusion proof hash is not 32 bytes")]
    ShortHash,
    #[error("the inclusion proof does not lead to its root hash")]
    BadProof,
    #[error("the inclusion proof has no checkpoint")]
    NoCheckpoint,
    #[error("the checkpoint is not a signed note")]
    NotSignedNote,
    #[error("the checkpoint is not for this log")]
    OtherLog,
    #[error("the checkpoint is for another tree than the inclusion proof")]
    OtherTree,
    #[error("the checkpoint is not signed by the log")]
    UnsignedCheckpoint,
    #[error(transparent)]
    Base64(#[from] NotBase64),
}

/// A 64-bit integer as protobuf's JSON writes it (a string), or as a number.
#[derive(Debug, Clone, Copy)]
struct Int(i64);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Int, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either<'a> {
            Number(i64),
            Text(&'a str),
            Owned(String),
        }
        let text = match Either::deserialize(d)? {
            Either::Number(n) => return Ok(Int(n)),
            Either::Text(s) => s.to_string(),
            Either::Owned(s) => s,
        };
        text.parse()
            .map(Int)
            .map_err(|_| serde::de::Error::custom(format!("`{text}` is not an integer")))
    }
}

impl Int {
    /// The value when it is not negative; `what` names it in the error.
    fn unsigned(self, what: &'static str) -> Result<u64, LogError> {
        u64::try_from(self.0).map_err(|_| LogError::Negative(what))
    }
}

/// A bundle's `tlogEntries[]` item (`TransparencyLogEntry`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    log_index: Int,
    log_id: KeyId,
    canonicalized_body: String,
    integrated_time: Option<Int>,
    inclusion_promise: Option<Promise>,
    inclusion_proof: Option<Proof>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyId {
    key_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Promise {
    signed_entry_timestamp: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Proof {
    log_index: Int,
    tree_size: Int,
    root_hash: String,
    hashes: Vec<String>,
    checkpoint: Option<Checkpoint>,
}

#[derive(Deserialize)]
struct Checkpoint {
    envelope: String,
}

/// A log entry's body: its kind and version say what its `spec` holds.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    kind: String,
    api_version: String,
    spec: Value,
}

/// `{ algorithm, value }`: a hex digest.
#[derive(Deserialize)]
struct HexHash {
    algorithm: String,
    value: String,
}

/// `{ content }` or `{ rawBytes }`: base64.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Content64 {
    #[serde(alias = "rawBytes")]
    content: String,
}

/// `hashedrekord` 0.0.1's spec.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HashedRekordV1 {
    data: HashedRekordV1Data,
    signature: HashedRekordV1Signature,
}

#[derive(Deserialize)]
struct HashedRekordV1Data {
    hash: HexHash,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HashedRekordV1Signature {
    content: String,
    public_key: Content64,
}

/// Rekor v2's `hashedrekord` 0.0.2 spec.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HashedRekordV2Spec {
    hashed_rekord_v002: HashedRekordV2,
}

#[derive(Deserialize)]
struct HashedRekordV2 {
    data: HashedRekordV2Data,
    signature: HashedRekordV2Signature,
}

#[derive(Deserialize)]
struct HashedRekordV2Data {
    algorithm: String,
    digest: String,
}

#[derive(Deserialize)]
struct HashedRekordV2Signature {
    content: String,
    verifier: Verifier,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Verifier {
    x509_certificate: Option<Content64>,
    public_key: Option<Content64>,
}

/// `dsse` 0.0.1's spec.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DsseSpec {
    payload_hash: Option<HexHash>,
    signatures: Vec<DsseSignature>,
}

#[derive(Deserialize)]
struct DsseSignature {
    signature: String,
    /// The signer's PEM, base64.
    verifier: String,
}

/// `intoto` 0.0.2's spec.
#[derive(Deserialize)]
struct IntotoSpec {
    content: IntotoContent,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IntotoContent {
    payload_hash: Option<HexHash>,
    envelope: IntotoEnvelope,
}

#[derive(Deserialize)]
struct IntotoEnvelope {
    signatures: Vec<IntotoSignature>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IntotoSignature {
    /// The envelope's base64 signature, base64-encoded once more.
    sig: String,
    /// The signer's PEM, base64.
    public_key: String,
}

/// Returns what the first log entry that verifies and records this signature vouches for.
pub(super) fn logged_times<'r>(
    entries: Option<&Value>,
    signed: &Signed<'_, 'r>,
) -> Result<Logged<'r>, Refusal> {
    let entries = entries
        .and_then(Value::as_array)
        .filter(|e| !e.is_empty())
        .ok_or_else(|| {
            refuse(
                Check::TransparencyLog,
                "bundle has no transparency log entry",
            )
        })?;
    let mut log_error = None;
    for entry in entries {
        match check_log_entry(entry, signed) {
            Ok(t) => return Ok(t),
            Err(e) => {
                log_error.get_or_insert(e);
            }
        }
    }
    Err(refuse(
        Check::TransparencyLog,
        log_error.map(|e| e.to_string()).unwrap_or_default(),
    ))
}

/// Verifies a Rekor entry: it records this signature, its SET (a v0.1 bundle needs one) and
/// its inclusion proof with its checkpoint (v0.2 on needs one) verify with a trusted log key.
fn check_log_entry<'r>(entry: &Value, signed: &Signed<'_, 'r>) -> Result<Logged<'r>, LogError> {
    let Signed {
        version,
        material,
        content,
        artifact,
        root,
    } = *signed;
    let entry = Entry::deserialize(entry).map_err(LogError::Malformed)?;
    let log_id = b64(&entry.log_id.key_id, "the log id")?;
    let log_index = entry.log_index.unsigned("index")?;
    let body = b64(&entry.canonicalized_body, "the log entry body")?;
    let key = root
        .logs
        .iter()
        .find(|k| k.key_id == log_id)
        .ok_or(LogError::UnknownLog)?;
    check_entry_body(&body, material, content, artifact)?;
    let integrated = match &entry.inclusion_promise {
        Some(promise) => {
            let set = b64(&promise.signed_entry_timestamp, "the SET")?;
            let integrated = entry.integrated_time.ok_or(LogError::NoIntegratedTime)?.0;
            // Rekor signs the canonical JSON (sorted keys, no spaces) of these four fields.
            let signed = format!(
                "{{\"body\":\"{}\",\"integratedTime\":{integrated},\"logID\":\"{}\",\"logIndex\":{log_index}}}",
                B64.encode(&body),
                hex(&log_id)
            );
            UnparsedPublicKey::new(key.curve.ecdsa(), &key.point)
                .verify(signed.as_bytes(), &set)
                .map_err(|_| LogError::BadSet)?;
            Some(integrated)
        }
        None if version == 1 => return Err(LogError::NoSet),
        None => None,
    };
    match &entry.inclusion_proof {
        Some(proof) => check_inclusion(proof, &body, key, version >= 2)?,
        None if version >= 2 || integrated.is_none() => return Err(LogError::NoInclusionProof),
        None => {}
    }
    Ok(Logged { integrated, key })
}

/// Reads a body's `spec` as the form its kind and version name.
fn spec_of<'de, T: Deserialize<'de>>(body: &'de Body) -> Result<T, LogError> {
    T::deserialize(&body.spec).map_err(|error| LogError::BadBody {
        kind: body.kind.clone(),
        version: body.api_version.clone(),
        error,
    })
}

/// The log entry must be this signature's: same signature, same signer, same artifact (or
/// payload). Otherwise a valid entry of another artifact would do. Kinds: `dsse` 0.0.1,
/// `intoto` 0.0.2, `hashedrekord` 0.0.1 and Rekor v2's `hashedrekord` 0.0.2.
fn check_entry_body(
    body: &[u8],
    material: &Material,
    content: &Content,
    artifact: Option<&[u8; 32]>,
) -> Result<(), LogError> {
    let body: Body = serde_json::from_slice(body).map_err(|_| LogError::BodyNotJson)?;
    let (digest, sig, signer) = match (body.kind.as_str(), body.api_version.as_str()) {
        ("hashedrekord", "0.0.1") => hashedrekord_v1(spec_of(&body)?)?,
        ("hashedrekord", "0.0.2") => hashedrekord_v2(spec_of::<HashedRekordV2Spec>(&body)?)?,
        _ => {
            let Content::Dsse(envelope) = content else {
                return Err(LogError::NotAMessageKind(body.kind));
            };
            return check_logged_envelope(&body, envelope, material);
        }
    };
    // A hashedrekord of a DSSE envelope records the hash of its PAE (Rekor v2).
    let want = match content {
        Content::Message { .. } => hex(artifact.ok_or(LogError::NoArtifact)?),
        Content::Dsse(e) => hex(&Sha256::digest(pae(e.payload_type, &e.payload))),
    };
    if digest != want {
        return Err(LogError::Other("artifact"));
    }
    if sig != content.sig() {
        return Err(LogError::Other("signature"));
    }
    if signer != material.der() {
        return Err(LogError::Other("signer"));
    }
    Ok(())
}

/// What a `hashedrekord` entry records: the artifact's digest (hex), the signature, and the
/// signer's DER.
type Recorded = (String, Vec<u8>, Vec<u8>);

/// What a `hashedrekord` 0.0.1 entry's spec records.
fn hashedrekord_v1(spec: HashedRekordV1) -> Result<Recorded, LogError> {
    if spec.data.hash.algorithm != "sha256" {
        return Err(LogError::NotSha256);
    }
    let pem = b64(&spec.signature.public_key.content, "the log entry's key")?;
    Ok((
        spec.data.hash.value.to_ascii_lowercase(),
        b64(&spec.signature.content, "the log entry's signature")?,
        pem_der(&pem).ok_or(LogError::NotPem)?,
    ))
}

/// What a Rekor v2 `hashedrekord` 0.0.2 entry's spec records.
fn hashedrekord_v2(spec: HashedRekordV2Spec) -> Result<Recorded, LogError> {
    let v = spec.hashed_rekord_v002;
    if v.data.algorithm != "SHA2_256" {
        return Err(LogError::NotSha256);
    }
    let verifier = v
        .signature
        .verifier
        .x509_certificate
        .or(v.signature.verifier.public_key)
        .ok_or(LogError::Missing("verifier"))?;
    Ok((
        hex(&b64(&v.data.digest, "the log entry's digest")?),
        b64(&v.signature.content, "the log entry's signature")?,
        b64(&verifier.content, "the verifier")?,
    ))
}

/// A `dsse` 0.0.1 or `intoto` 0.0.2 entry records this envelope: its payload hash, its
/// signature and the signing certificate.
fn check_logged_envelope(
    body: &Body,
    envelope: &Envelope,
    material: &Material,
) -> Result<(), LogError> {
    let (payload_hash, sig, cert_pem) = match (body.kind.as_str(), body.api_version.as_str()) {
        ("dsse", "0.0.1") => {
            let spec: DsseSpec = spec_of(body)?;
            let [s] = <[DsseSignature; 1]>::try_from(spec.signatures)
                .map_err(|_| LogError::NotOneSignature)?;
            let sig = b64(&s.signature, "the log entry's signature")?;
            (spec.payload_hash, sig, s.verifier)
        }
        ("intoto", "0.0.2") => {
            let spec: IntotoSpec = spec_of(body)?;
            let [s] = <[IntotoSignature; 1]>::try_from(spec.content.envelope.signatures)
                .map_err(|_| LogError::NotOneSignature)?;
            let twice = b64(&s.sig, "the log entry's signature")?;
            let once =
                std::str::from_utf8(&twice).map_err(|_| NotBase64("the log entry's signature"))?;
            let sig = b64(once, "the log entry's signature")?;
            (spec.content.payload_hash, sig, s.public_key)
        }
        (kind, version) => return Err(LogError::UnsupportedKind(kind.into(), version.into())),
    };
    check_payload_hash(payload_hash.as_ref(), &envelope.payload)?;
    if sig != envelope.sig {
        return Err(LogError::Other("signature"));
    }
    let pem = b64(&cert_pem, "the log entry's certificate")?;
    if pem_der(&pem).as_deref() != Some(material.der()) {
        return Err(LogError::Other("certificate"));
    }
    Ok(())
}

/// Returns an error unless the entry's payload hash is the SHA-256 of `payload`.
fn check_payload_hash(payload_hash: Option<&HexHash>, payload: &[u8]) -> Result<(), LogError> {
    let payload_hash = payload_hash.ok_or(LogError::Missing("payload hash"))?;
    if payload_hash.algorithm != "sha256"
        || !payload_hash
            .value
            .eq_ignore_ascii_case(&hex(&Sha256::digest(payload)))
    {
        return Err(LogError::Other("payload"));
    }
    Ok(())
}

/// A signed note (`<origin>\n<size>\n<base64 root>\n[extensions]\n\n— <name> <base64 sig>\n`)
/// naming `size` and `root`, with a signature by the log's key over the text before the blank
/// line: a line under the log's name whose key hint is the log id's first four bytes. Other
/// lines (a witness's cosignature) are not checked.
fn check_checkpoint(note: &str, size: u64, root: &[u8], key: &LogKey) -> Result<(), LogError> {
    let (text, sigs) = note.split_once("\n\n").ok_or(LogError::NotSignedNote)?;
    let text = format!("{text}\n");
    let mut lines = text.lines();
    let (origin, tree_size, tree_root) = (lines.next(), lines.next(), lines.next());
    // Rekor v1 names its tree after the host (`rekor.sigstore.dev - <tree id>`), v2 the host.
    let origin_ok = origin.is_some_and(|o| {
        !o.is_empty()
            && (key.origin.is_empty()
                || o == key.origin
                || o.strip_prefix(key.origin.as_str())
                    .is_some_and(|r| r.starts_with(" - ")))
    });
    if !origin_ok {
        return Err(LogError::OtherLog);
    }
    if tree_size.and_then(|s| s.parse::<u64>().ok()) != Some(size)
        || tree_root.and_then(|r| B64.decode(r).ok()).as_deref() != Some(root)
    {
        return Err(LogError::OtherTree);
    }
    let signed = sigs.lines().any(|line| {
        let Some((name, sig)) = line
            .strip_prefix("\u{2014} ")
            .and_then(|rest| rest.rsplit_once(' '))
        else {
            return false;
        };
        if !key.origin.is_empty() && name != key.origin {
            return false;
        }
        let Ok(sig) = B64.decode(sig) else {
            return false;
        };
        sig.len() > 4
            && key.key_id.get(..4) == Some(&sig[..4])
            && UnparsedPublicKey::new(key.curve.ecdsa(), &key.point)
                .verify(text.as_bytes(), &sig[4..])
                .is_ok()
    });
    if signed {
        Ok(())
    } else {
        Err(LogError::UnsignedCheckpoint)
    }
}

/// A Merkle tree over 2^64 leaves is 64 levels deep: a longer proof is malformed.
const MAX_PROOF_HASHES: usize = 64;

/// The inclusion proof leads from the entry to the root hash of a checkpoint the log signed.
/// A v0.1 bundle's proof may come without a checkpoint (`need_checkpoint` false); its SET is
/// then what binds the entry to the log.
fn check_inclusion(
    proof: &Proof,
    body: &[u8],
    key: &LogKey,
    need_checkpoint: bool,
) -> Result<(), LogError> {
    let index = proof.log_index.unsigned("log index")?;
    let size = proof.tree_size.unsigned("tree size")?;
    let root = b64(&proof.root_hash, "the root hash")?;
    if proof.hashes.len() > MAX_PROOF_HASHES {
        return Err(LogError::LongProof);
    }
    let hashes = proof
        .hashes
        .iter()
        .map(|h| {
            let h = b64(h, "an inclusion proof hash")?;
            <[u8; 32]>::try_from(h).map_err(|_| LogError::ShortHash)
        })
        .collect::<Result<Vec<[u8; 32]>, LogError>>()?;
    let mut leaf = Sha256::new();
    leaf.update([0u8]);
    leaf.update(body);
    if !merkle_inclusion(index, size, leaf.finalize().into(), &hashes, &root) {
        return Err(LogError::BadProof);
    }
    match &proof.checkpoint {
        Some(c) => check_checkpoint(&c.envelope, size, &root, key),
        None if !need_checkpoint => Ok(()),
        None => Err(LogError::NoCheckpoint),
    }
}

/// RFC 9162 §2.1.3.2: the audit path from leaf `index` of a tree of `size` leaves to `root`.
pub(super) fn merkle_inclusion(
    index: u64,
    size: u64,
    leaf: [u8; 32],
    proof: &[[u8; 32]],
    root: &[u8],
) -> bool {
    if index >= size {
        return false;
    }
    let node = |left: &[u8], right: &[u8]| -> [u8; 32] {
        let mut h = Sha256::new();
        h.update([1u8]);
        h.update(left);
        h.update(right);
        h.finalize().into()
    };
    let (mut f, mut s, mut r) = (index, size - 1, leaf);
    for p in proof {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r.as_slice() == root
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9162's Merkle tree hash, computed whole, to check the audit path against.
    fn mth(leaves: &[[u8; 32]]) -> [u8; 32] {
        if leaves.len() == 1 {
            return leaves[0];
        }
        let k = leaves.len().next_power_of_two() / 2;
        let mut h = Sha256::new();
        h.update([1u8]);
        h.update(mth(&leaves[..k]));
        h.update(mth(&leaves[k..]));
        h.finalize().into()
    }

    /// The audit path of leaf `m` (RFC 6962 §2.1.1).
    fn path(m: usize, leaves: &[[u8; 32]]) -> Vec<[u8; 32]> {
        if leaves.len() == 1 {
            return Vec::new();
        }
        let k = leaves.len().next_power_of_two() / 2;
        if m < k {
            let mut p = path(m, &leaves[..k]);
            p.push(mth(&leaves[k..]));
            p
        } else {
            let mut p = path(m - k, &leaves[k..]);
            p.push(mth(&leaves[..k]));
            p
        }
    }

    #[test]
    fn inclusion_proofs_verify_for_every_leaf_of_small_trees() {
        for size in 1..=17usize {
            let leaves: Vec<[u8; 32]> = (0..size)
                .map(|i| Sha256::digest([i as u8]).into())
                .collect();
            let root = mth(&leaves);
            for m in 0..size {
                let p = path(m, &leaves);
                assert!(
                    merkle_inclusion(m as u64, size as u64, leaves[m], &p, &root),
                    "{m}/{size}"
                );
                // Another index, another leaf, a shorter or tampered path: refused.
                let other = (m + 1) % size;
                if other != m {
                    assert!(!merkle_inclusion(
                        other as u64,
                        size as u64,
                        leaves[m],
                        &p,
                        &root
                    ));
                    assert!(!merkle_inclusion(
                        m as u64,
                        size as u64,
                        leaves[other],
                        &p,
                        &root
                    ));
                }
                if let Some((first, rest)) = p.split_first() {
                    assert!(!merkle_inclusion(
                        m as u64,
                        size as u64,
                        leaves[m],
                        rest,
                        &root
                    ));
                    let mut bad = p.clone();
                    bad[0] = Sha256::digest(first).into();
                    assert!(!merkle_inclusion(
                        m as u64,
                        size as u64,
                        leaves[m],
                        &bad,
                        &root
                    ));
                }
                assert!(!merkle_inclusion(m as u64, m as u64, leaves[m], &p, &root));
            }
        }
    }
}
