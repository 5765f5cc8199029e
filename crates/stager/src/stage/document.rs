//! The package document: fetched whole, or revalidated against the store's cached copy.

use crate::config::Config;
use crate::net::doccache;
use crate::net::{Fetched, Http};
use crate::registry::{Document, ACCEPT_CORGI};
use crate::shared::call::Control;
use crate::shared::error::Result;
use crate::shared::error::StageError;
use crate::shared::fsutil::blocking;
use crate::store::Store;

/// The package document, revalidated against the store's cached copy when there is one: a 304
/// costs a few hundred bytes instead of the whole document. A cached copy that no longer parses
/// is dropped and the document fetched again unconditionally. The raw bytes are dropped once
/// parsed, and the cached body is read only on a 304: the document is never held twice.
pub(crate) async fn fetch_document(
    cfg: &Config,
    store: &Store,
    http: &Http,
    url: &str,
    accept: &str,
    ctl: &Control,
) -> Result<Document> {
    if accept != ACCEPT_CORGI {
        return fetch_plain(cfg, http, url, accept, ctl).await;
    }
    let max = cfg.limits.max_document_bytes;
    let read_cache = || {
        let (store, url) = (store.clone(), url.to_string());
        blocking(move || Ok(doccache::read(&store, &url, max)))
    };
    let validators = read_cache().await?.map(|c| c.validators);
    let mut fetched = http
        .get_document(url, ACCEPT_CORGI, max, validators.as_ref(), ctl)
        .await?;
    if let Fetched::NotModified = fetched {
        if let Some(doc) = read_cache()
            .await?
            .and_then(|c| Document::parse(url, &c.body).ok())
        {
            return Ok(doc);
        }
        // Cached copy gone (another writer) or unparsable: drop it and ask for the document.
        blocking({
            let store = store.clone();
            move || doccache::remove(&store)
        })
        .await?;
        fetched = http.get_document(url, ACCEPT_CORGI, max, None, ctl).await?;
    }
    let Fetched::Body { body, validators } = fetched else {
        return Err(StageError::Http {
            url: url.into(),
            status: 304,
            retry_after: None,
        });
    };
    let doc = Document::parse(url, &body)?;
    let (store, url) = (store.clone(), url.to_string());
    // The cache is an optimisation: a store that cannot take it still gets its update.
    let _ = blocking(move || doccache::write(&store, &url, &validators, &body)).await;
    Ok(doc)
}

/// The document as `accept` asks for it, fetched unconditionally: the full document, which the
/// cool-down and expiring signing keys need, is not cached.
pub(crate) async fn fetch_plain(
    cfg: &Config,
    http: &Http,
    url: &str,
    accept: &str,
    ctl: &Control,
) -> Result<Document> {
    // The raw bytes are dropped once parsed: the document is never held twice.
    Document::parse(
        url,
        &http
            .get_bytes(url, accept, cfg.limits.max_document_bytes, ctl)
            .await?,
    )
}
