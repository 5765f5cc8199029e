//! One staging run's plan: what the run stages and for which call. Its own module so that the
//! run (`run.rs`) and the download it drives (`install.rs`) both read it, neither the other.

use crate::config::Config;
use crate::net::Http;
use crate::registry::Dist;
use crate::shared::call::Control;
use crate::store::Store;
use crate::trust::Compat;
use std::path::PathBuf;

/// One staging run: the version it stages, from which tarball and with which native modules, and
/// the call it runs for.
pub(super) struct Run<'a> {
    pub(super) cfg: &'a Config,
    pub(super) store: &'a Store,
    pub(super) http: &'a Http,
    pub(super) ctl: &'a Control,
    pub(super) latest: String,
    pub(super) dist: Dist,
    pub(super) native_src: PathBuf,
    pub(super) compat: Compat,
}
