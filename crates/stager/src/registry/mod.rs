//! What the registry serves, as data: the package document (versions, dist-tags, `dist`,
//! publish times, deprecations, signatures), the integrity strings it promises and the hashers
//! that check bytes against them, and the URL rules for its tarballs.
//!
//! May use: `shared` only. Used by `trust`, `net` and `stage`.

mod document;
mod integrity;

pub(crate) use document::{
    document_url, rewrite_tarball_url, same_origin, Dist, Document, Signatures, ACCEPT_CORGI,
    ACCEPT_FULL,
};
pub use integrity::sri_of;
pub(crate) use integrity::{Expected, Hasher};
