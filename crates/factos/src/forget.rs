//! Forgetting personal data: the contract for per-subject data keys that
//! crypto-shredding builds on.
//!
//! Events are immutable, but a person's right to erasure is not optional.
//! Crypto-shredding stores a subject's personal data encrypted with a key of
//! its own and forgets the subject by destroying the key: the events stay
//! (their types, tags, positions and every other field), and the personal
//! parts can never be read again. The encryption itself lives in the
//! `factos-shredding` crate; this module is the contract for keeping the
//! keys, which a store implements in a table of its own (SQLite,
//! PostgreSQL, the in-memory store) or an application implements over its
//! key service.
//!
//! A forgotten subject stays forgotten: its key is destroyed and a marker
//! kept, so no new key is ever created for it and nothing written later for
//! it can be read either.

use crate::error::StoreError;

/// The length of a data key: AES-256.
pub const KEY_LEN: usize = 32;

/// What a key store knows about a subject.
#[derive(Clone, PartialEq, Eq)]
pub enum SubjectKey {
    /// The subject's data key.
    Key([u8; KEY_LEN]),
    /// The subject was forgotten: its key is gone.
    Forgotten,
}

impl std::fmt::Debug for SubjectKey {
    /// Never prints a key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubjectKey::Key(_) => f.write_str("Key(..)"),
            SubjectKey::Forgotten => f.write_str("Forgotten"),
        }
    }
}

/// Keeps one data key per subject, and forgets subjects.
#[trait_variant::make(SubjectKeys: Send)]
pub trait LocalSubjectKeys {
    /// The keys to encrypt with, one per subject in `wanted` (a subject and
    /// a fresh random key for it): a subject never seen gets its fresh key
    /// stored; one already known keeps its stored key; a forgotten one
    /// answers [`SubjectKey::Forgotten`]. In `wanted`'s order. Callers
    /// read known keys with [`keys_for_reading`](Self::keys_for_reading)
    /// first and come here only when a subject has none, so this may
    /// always write.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the keys cannot be read or written.
    async fn keys_for_writing(&self, wanted: Vec<(String, [u8; KEY_LEN])>) -> Result<Vec<SubjectKey>, StoreError>;

    /// The keys to decrypt with, one per subject in `subjects`, in its
    /// order: `None` for a subject that never had a key.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the keys cannot be read.
    async fn keys_for_reading(&self, subjects: &[String]) -> Result<Vec<Option<SubjectKey>>, StoreError>;

    /// Destroys `subject`'s key and remembers it as forgotten, so that no
    /// key is created for it again. Returns whether a key was destroyed
    /// (`false` when it was already forgotten, or never had one; it is
    /// marked forgotten either way).
    ///
    /// A store that keeps snapshots ([`crate::snapshot`]) retires them all
    /// in the same transaction, since a snapshot's state may hold the
    /// subject's decrypted data.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the key cannot be destroyed; then it
    /// was not.
    async fn forget(&self, subject: &str) -> Result<bool, StoreError>;
}
