//! The encrypted form of a personal value inside a stored payload, and the
//! cipher: AES-256-GCM with a synthetic nonce.
//!
//! A personal value is replaced by `{"$shredded": {"subject": ...,
//! "nonce": ..., "data": ...}}` (base64). The nonce is an HMAC-SHA-256 of
//! the event id, the value's place and the plaintext under a key derived
//! from the data key: a batch re-sent with the same ids and content is
//! byte-for-byte the same (so the store's idempotent re-send still
//! recognises it), and two different plaintexts never share a nonce. The
//! event id and subject are bound to the ciphertext as associated data, so
//! an envelope copied into another event does not decrypt.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use factos::EventId;
use factos::forget::KEY_LEN;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::ShreddingError;
use crate::personal::FORGOTTEN_MARKER;

/// The key of an encrypted value's object.
pub(crate) const SHREDDED: &str = "$shredded";

/// Whether a stored payload may hold encrypted values (cheap: no parse).
pub(crate) fn may_hold_envelopes(payload: &[u8]) -> bool {
    const NEEDLE: &[u8] = b"\"$shredded\"";
    payload.windows(NEEDLE.len()).any(|w| w == NEEDLE)
}

/// The encrypted form of `plain`, at `place` in event `id`, of `subject`.
pub(crate) fn seal(
    key: &[u8; KEY_LEN],
    subject: &str,
    id: &EventId,
    place: &str,
    plain: &Value,
) -> Result<Value, ShreddingError> {
    let plaintext = serde_json::to_vec(plain).map_err(ShreddingError::Json)?;
    let nonce_key = Sha256::new()
        .chain_update(b"factos-shredding nonce key")
        .chain_update(key)
        .finalize();
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&nonce_key).map_err(|_| ShreddingError::Cipher)?;
    mac.update(id.as_bytes());
    mac.update(place.as_bytes());
    mac.update(&plaintext);
    let tag = mac.finalize().into_bytes();
    let nonce = &tag[..12];
    let sealed = cipher(key)
        .encrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: &plaintext,
                aad: &associated(id, subject),
            },
        )
        .map_err(|_| ShreddingError::Cipher)?;
    Ok(json!({ SHREDDED: { "subject": subject, "nonce": BASE64.encode(nonce), "data": BASE64.encode(sealed) } }))
}

/// The subject of an envelope, if `value` is one.
pub(crate) fn subject_of(value: &Value) -> Option<&str> {
    value
        .as_object()
        .filter(|o| o.len() == 1)?
        .get(SHREDDED)?
        .get("subject")?
        .as_str()
}

/// The plaintext of envelope `value` of event `id`.
pub(crate) fn open(key: &[u8; KEY_LEN], id: &EventId, value: &Value) -> Result<Value, ShreddingError> {
    let envelope = value.get(SHREDDED).ok_or(ShreddingError::Envelope { id: *id })?;
    let field = |name: &str| {
        envelope
            .get(name)
            .and_then(Value::as_str)
            .ok_or(ShreddingError::Envelope { id: *id })
    };
    let subject = field("subject")?;
    let nonce = BASE64
        .decode(field("nonce")?)
        .map_err(|_| ShreddingError::Envelope { id: *id })?;
    let data = BASE64
        .decode(field("data")?)
        .map_err(|_| ShreddingError::Envelope { id: *id })?;
    if nonce.len() != 12 {
        return Err(ShreddingError::Envelope { id: *id });
    }
    let plaintext = cipher(key)
        .decrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: &data,
                aad: &associated(id, subject),
            },
        )
        .map_err(|_| ShreddingError::Decrypt { id: *id })?;
    serde_json::from_slice(&plaintext).map_err(ShreddingError::Json)
}

/// What a forgotten value reads as.
pub(crate) fn forgotten() -> Value {
    json!({ FORGOTTEN_MARKER: true })
}

/// Calls `visit` on every envelope in `value`, depth first.
pub(crate) fn each_envelope<E>(
    value: &mut Value,
    visit: &mut impl FnMut(&mut Value) -> Result<(), E>,
) -> Result<(), E> {
    if subject_of(value).is_some() {
        return visit(value);
    }
    match value {
        Value::Object(map) => map.values_mut().try_for_each(|v| each_envelope(v, visit)),
        Value::Array(items) => items.iter_mut().try_for_each(|v| each_envelope(v, visit)),
        _ => Ok(()),
    }
}

fn cipher(key: &[u8; KEY_LEN]) -> Aes256Gcm {
    Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key))
}

fn associated(id: &EventId, subject: &str) -> Vec<u8> {
    let mut aad = id.as_bytes().to_vec();
    aad.extend_from_slice(subject.as_bytes());
    aad
}
