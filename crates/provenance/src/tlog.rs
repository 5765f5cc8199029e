//! Transparency log entries: a trusted Rekor log recorded this signature (its SET, its entry
//! body, its inclusion proof and the checkpoint that proof leads to).

use super::dsse::{pae, Envelope};
use super::encoding::{b64, b64_at, hex, int_at, pem_der, str_at};
use super::material::{Content, Material};
use super::refusal::{refuse, Check, Refusal};
use super::root::{LogKey, TrustRoot};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::signature::UnparsedPublicKey;
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

/// Returns what the first log entry that verifies and records this signature vouches for.
pub(super) fn logged_times<'r>(vm: &Value, signed: &Signed<'_, 'r>) -> Result<Logged<'r>, Refusal> {
    let entries = vm
        .get("tlogEntries")
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
        log_error.unwrap_or_default(),
    ))
}

/// Verifies a Rekor entry: it records this signature, its SET (a v0.1 bundle needs one) and
/// its inclusion proof with its checkpoint (v0.2 on needs one) verify with a trusted log key.
fn check_log_entry<'r>(entry: &Value, signed: &Signed<'_, 'r>) -> Result<Logged<'r>, String> {
    let Signed {
        version,
        material,
        content,
        artifact,
        root,
    } = *signed;
    let log_id = b64_at(
        entry,
        "/logId/keyId",
        "log entry has no logId",
        "the log id",
    )?;
    let log_index = int_at(entry, "logIndex")?;
    if log_index < 0 {
        return Err("the log entry has a negative index".into());
    }
    let body = b64(str_at(entry, "canonicalizedBody")?, "the log entry body")?;
    let key = root
        .logs
        .iter()
        .find(|k| k.key_id == log_id)
        .ok_or("log entry is from an unknown transparency log")?;
    check_entry_body(&body, material, content, artifact)?;
    let integrated = match entry.pointer("/inclusionPromise/signedEntryTimestamp") {
        Some(set) => {
            let set = b64(set.as_str().ok_or("bad signed entry timestamp")?, "the SET")?;
            let integrated = int_at(entry, "integratedTime")?;
            // Rekor signs the canonical JSON (sorted keys, no spaces) of these four fields.
            let signed = format!(
                "{{\"body\":\"{}\",\"integratedTime\":{integrated},\"logID\":\"{}\",\"logIndex\":{log_index}}}",
                B64.encode(&body),
                hex(&log_id)
            );
            UnparsedPublicKey::new(key.curve.ecdsa(), &key.point)
                .verify(signed.as_bytes(), &set)
                .map_err(|_| "the log's signed entry timestamp does not verify")?;
            Some(integrated)
        }
        None if version == 1 => return Err("log entry has no signed entry timestamp".into()),
        None => None,
    };
    match entry.get("inclusionProof") {
        Some(proof) => check_inclusion(proof, &body, key, version >= 2)?,
        None if version >= 2 || integrated.is_none() => {
            return Err("the log entry has no inclusion proof".into())
        }
        None => {}
    }
    Ok(Logged { integrated, key })
}

/// The log entry must be this signature's: same signature, same signer, same artifact (or
/// payload). Otherwise a valid entry of another artifact would do. Kinds: `dsse` 0.0.1,
/// `intoto` 0.0.2, `hashedrekord` 0.0.1 and Rekor v2's `hashedrekord` 0.0.2.
fn check_entry_body(
    body: &[u8],
    material: &Material,
    content: &Content,
    artifact: Option<&[u8; 32]>,
) -> Result<(), String> {
    let body: Value = serde_json::from_slice(body).map_err(|_| "the log entry body is not JSON")?;
    let kind = body.get("kind").and_then(Value::as_str).unwrap_or("");
    let version = body.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let spec = body.get("spec").ok_or("the log entry body has no spec")?;
    let (digest, sig, signer) = match (kind, version) {
        ("hashedrekord", "0.0.1") => hashedrekord_v1(spec)?,
        ("hashedrekord", "0.0.2") => hashedrekord_v2(spec)?,
        _ => {
            let Content::Dsse(envelope) = content else {
                return Err(format!(
                    "a `{kind}` entry cannot record a message signature"
                ));
            };
            return check_logged_envelope(&body, envelope, material);
        }
    };
    // A hashedrekord of a DSSE envelope records the hash of its PAE (Rekor v2).
    let want = match content {
        Content::Message { .. } => hex(artifact.ok_or("no artifact to check the entry with")?),
        Content::Dsse(e) => hex(&Sha256::digest(pae(e.payload_type, &e.payload))),
    };
    if digest != want {
        return Err("the log entry is for another artifact".into());
    }
    if sig != content.sig() {
        return Err("the log entry is for another signature".into());
    }
    if signer != material.der() {
        return Err("the log entry is for another signer".into());
    }
    Ok(())
}

/// What a `hashedrekord` entry records: the artifact's digest (hex), the signature, and the
/// signer's DER.
type Recorded = (String, Vec<u8>, Vec<u8>);

/// What a `hashedrekord` 0.0.1 entry's spec records.
fn hashedrekord_v1(spec: &Value) -> Result<Recorded, String> {
    if spec.pointer("/data/hash/algorithm").and_then(Value::as_str) != Some("sha256") {
        return Err("the log entry's hash is not SHA-256".into());
    }
    let value = spec
        .pointer("/data/hash/value")
        .and_then(Value::as_str)
        .ok_or("the log entry has no hash")?;
    let pem = logged_b64(
        spec.pointer("/signature/publicKey/content"),
        "the log entry has no key",
        "the log entry's key",
    )?;
    Ok((
        value.to_ascii_lowercase(),
        logged_b64(
            spec.pointer("/signature/content"),
            "the log entry has no signature",
            "the log entry's signature",
        )?,
        pem_der(&pem).ok_or("the log entry's key is not PEM")?,
    ))
}

/// What a Rekor v2 `hashedrekord` 0.0.2 entry's spec records.
fn hashedrekord_v2(spec: &Value) -> Result<Recorded, String> {
    let v = spec
        .get("hashedRekordV002")
        .ok_or("the log entry has no hashedRekordV002")?;
    if v.pointer("/data/algorithm").and_then(Value::as_str) != Some("SHA2_256") {
        return Err("the log entry's hash is not SHA-256".into());
    }
    let digest = logged_b64(
        v.pointer("/data/digest"),
        "the log entry has no digest",
        "the log entry's digest",
    )?;
    let verifier = v
        .pointer("/signature/verifier/x509Certificate/rawBytes")
        .or_else(|| v.pointer("/signature/verifier/publicKey/rawBytes"));
    Ok((
        hex(&digest),
        logged_b64(
            v.pointer("/signature/content"),
            "the log entry has no signature",
            "the log entry's signature",
        )?,
        logged_b64(verifier, "the log entry has no verifier", "the verifier")?,
    ))
}

/// A `dsse` or `intoto` entry records this envelope: its payload hash, its signature and the
/// signing certificate.
fn check_logged_envelope(
    body: &Value,
    envelope: &Envelope,
    material: &Material,
) -> Result<(), String> {
    let logged = logged_envelope(body)?;
    check_payload_hash(logged.payload_hash, &envelope.payload)?;
    let pem = logged_b64(
        logged.cert,
        "the log entry has no certificate",
        "the log entry's certificate",
    )?;
    if logged_signature(&logged)? != envelope.sig {
        return Err("the log entry is for another signature".into());
    }
    if pem_der(&pem).as_deref() != Some(material.der()) {
        return Err("the log entry is for another certificate".into());
    }
    Ok(())
}

/// What a log entry's body records of an envelope, each field where its kind keeps it.
struct LoggedEnvelope<'a> {
    payload_hash: Option<&'a Value>,
    sig: Option<&'a Value>,
    cert: Option<&'a Value>,
    /// intoto 0.0.2 stores the envelope's base64 signature base64-encoded once more.
    sig_is_b64_twice: bool,
}

/// Returns what a `dsse` 0.0.1 or `intoto` 0.0.2 entry body records of its envelope.
fn logged_envelope(body: &Value) -> Result<LoggedEnvelope<'_>, String> {
    let kind = body.get("kind").and_then(Value::as_str).unwrap_or("");
    let version = body.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let spec = body.get("spec").ok_or("the log entry body has no spec")?;
    match (kind, version) {
        ("dsse", "0.0.1") => {
            let s = only_signature(spec.get("signatures"))?;
            Ok(LoggedEnvelope {
                payload_hash: spec.pointer("/payloadHash"),
                sig: s.get("signature"),
                cert: s.get("verifier"),
                sig_is_b64_twice: false,
            })
        }
        ("intoto", "0.0.2") => {
            let content = spec.get("content").ok_or("the log entry has no content")?;
            let s = only_signature(content.pointer("/envelope/signatures"))?;
            Ok(LoggedEnvelope {
                payload_hash: content.get("payloadHash"),
                sig: s.get("sig"),
                cert: s.get("publicKey"),
                sig_is_b64_twice: true,
            })
        }
        _ => Err(format!("unsupported log entry kind `{kind}` {version}")),
    }
}

/// Returns the one signature of a log entry's `signatures` array.
fn only_signature(sigs: Option<&Value>) -> Result<&Value, String> {
    match sigs.and_then(Value::as_array).map(Vec::as_slice) {
        Some([s]) => Ok(s),
        _ => Err("the log entry has not one signature".into()),
    }
}

/// Returns an error unless the entry's payload hash is the SHA-256 of `payload`.
fn check_payload_hash(payload_hash: Option<&Value>, payload: &[u8]) -> Result<(), String> {
    let payload_hash = payload_hash.ok_or("the log entry has no payload hash")?;
    if payload_hash.get("algorithm").and_then(Value::as_str) != Some("sha256")
        || !payload_hash
            .get("value")
            .and_then(Value::as_str)
            .is_some_and(|v| v.eq_ignore_ascii_case(&hex(&Sha256::digest(payload))))
    {
        return Err("the log entry is for another payload".into());
    }
    Ok(())
}

/// Returns the base64 string `field` decoded; `missing` when there is none.
fn logged_b64(field: Option<&Value>, missing: &str, what: &str) -> Result<Vec<u8>, String> {
    b64(field.and_then(Value::as_str).ok_or(missing)?, what)
}

/// Returns the envelope signature the entry records, decoded.
fn logged_signature(logged: &LoggedEnvelope) -> Result<Vec<u8>, String> {
    let entry_sig = logged_b64(
        logged.sig,
        "the log entry has no signature",
        "the log entry's signature",
    )?;
    if !logged.sig_is_b64_twice {
        return Ok(entry_sig);
    }
    let inner = std::str::from_utf8(&entry_sig).map_err(|_| "bad log entry signature")?;
    b64(inner, "the log entry's signature")
}

/// A signed note (`<origin>\n<size>\n<base64 root>\n[extensions]\n\n— <name> <base64 sig>\n`)
/// naming `size` and `root`, with a signature by the log's key over the text before the blank
/// line: a line under the log's name whose key hint is the log id's first four bytes. Other
/// lines (a witness's cosignature) are not checked.
fn check_checkpoint(note: &str, size: u64, root: &[u8], key: &LogKey) -> Result<(), String> {
    let (text, sigs) = note
        .split_once("\n\n")
        .ok_or("the checkpoint is not a signed note")?;
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
        return Err("the checkpoint is not for this log".into());
    }
    if tree_size.and_then(|s| s.parse::<u64>().ok()) != Some(size)
        || tree_root.and_then(|r| B64.decode(r).ok()).as_deref() != Some(root)
    {
        return Err("the checkpoint is for another tree than the inclusion proof".into());
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
        Err("the checkpoint is not signed by the log".into())
    }
}

/// A Merkle tree over 2^64 leaves is 64 levels deep: a longer proof is malformed.
const MAX_PROOF_HASHES: usize = 64;

/// The inclusion proof leads from the entry to the root hash of a checkpoint the log signed.
/// A v0.1 bundle's proof may come without a checkpoint (`need_checkpoint` false); its SET is
/// then what binds the entry to the log.
fn check_inclusion(
    proof: &Value,
    body: &[u8],
    key: &LogKey,
    need_checkpoint: bool,
) -> Result<(), String> {
    let index = u64::try_from(int_at(proof, "logIndex")?).map_err(|_| "negative log index")?;
    let size = u64::try_from(int_at(proof, "treeSize")?).map_err(|_| "negative tree size")?;
    let root = b64(str_at(proof, "rootHash")?, "the root hash")?;
    let hashes = proof
        .get("hashes")
        .and_then(Value::as_array)
        .filter(|h| h.len() <= MAX_PROOF_HASHES)
        .ok_or("the inclusion proof has no usable hashes")?
        .iter()
        .map(|h| {
            h.as_str()
                .ok_or_else(|| "an inclusion proof hash is not a string".to_string())
                .and_then(|h| b64(h, "an inclusion proof hash"))
                .and_then(|h| {
                    <[u8; 32]>::try_from(h)
                        .map_err(|_| "an inclusion proof hash is not 32 bytes".into())
                })
        })
        .collect::<Result<Vec<[u8; 32]>, String>>()?;
    let mut leaf = Sha256::new();
    leaf.update([0u8]);
    leaf.update(body);
    if !merkle_inclusion(index, size, leaf.finalize().into(), &hashes, &root) {
        return Err("the inclusion proof does not lead to its root hash".into());
    }
    match proof
        .pointer("/checkpoint/envelope")
        .and_then(Value::as_str)
    {
        Some(note) => check_checkpoint(note, size, &root, key),
        None if !need_checkpoint => Ok(()),
        None => Err("the inclusion proof has no checkpoint".into()),
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
