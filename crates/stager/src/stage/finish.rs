//! The last step of an install, on the blocking pool: what turns an extracted partial into a
//! version folder. The tarball's own package.json is checked, the CLI must be there, the native
//! modules move in, the completion record is written, every name is flushed, and only then does
//! the folder get its final name.

use super::guards::read_manifest;
use crate::shared::error::{Result, StageError};
use crate::shared::fsutil;
use crate::store::{self, CompletionRecord, Store, CLI_ENTRY, NATIVE_MODULE};
use crate::trust::{self, Compat};
use std::path::Path;

/// Moves the native modules in, checks the CLI, writes the completion record, flushes, renames.
pub(super) fn finish(
    store: &Store,
    partial: &Path,
    native_partial: &Path,
    url: &str,
    compat: &Compat,
    record: CompletionRecord,
) -> Result<()> {
    // The tarball's own package.json is what the runtime runs with; a document may lack (or
    // misstate) its engines and dependencies. Checked before anything is promoted.
    if let Some(manifest) = read_manifest(&partial.join("package.json")) {
        trust::check_compat(
            &manifest,
            compat.host_node.as_ref(),
            compat.node_pty.as_ref(),
        )
        .map_err(|r| r.into_error(&record.version))?;
    }
    let mut cli = partial.to_path_buf();
    cli.extend(CLI_ENTRY);
    if !cli.is_file() {
        return Err(StageError::MissingCli {
            url: url.into(),
            missing: CLI_ENTRY.join("/"),
        });
    }
    let mut native_dst = partial.to_path_buf();
    native_dst.extend(NATIVE_MODULE);
    // The package may ship its own node_modules/node-pty (ours, built for this app, replaces
    // it), but never as a file or link: that is the package's fault, not the disk's.
    crate::extract::require_folders_or_absent(partial, &NATIVE_MODULE, url)?;
    fsutil::remove_tree(&native_dst)?;
    fsutil::create_dir_all(native_dst.parent().expect("node_modules"))?;
    fsutil::rename_retrying(
        store.renamer(),
        &native_partial.join(NATIVE_MODULE[1]),
        &native_dst,
    )?;
    fsutil::remove_tree(native_partial)?;
    store::write_record(partial, &record)?;
    // Every name in the tree is durable before the tree gets its final name.
    fsutil::sync_tree_dirs(partial)?;
    let final_dir = store.version_dir(&record.version);
    fsutil::rename_retrying(store.renamer(), partial, &final_dir)?;
    fsutil::sync_dir(&store.versions_dir())
}
