//! What `checkAndStageLatestRuntime` takes: the documented option types, and the reader that
//! turns the JS options object into the core's `Options`.

use super::types::{invalid, ArgError, StageLogEntry, StageProgress};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use runtime_stager_core::{Options, ProvenanceInput, RegistryKeyInput, Secret};

// Types only: it keeps the documented `StageOptions` interface in index.d.ts, while
// `checkAndStageLatestRuntime` reads the object itself (`OptionsReader`, then `Config::resolve`)
// so that a wrong type or an out-of-range number rejects with EINVALID_OPTION naming the option,
// instead of napi's conversion throwing synchronously or wrapping `-1` / `NaN` / `2**32 + 5`
// into a `u32`.
#[allow(dead_code)]
/// Options of `checkAndStageLatestRuntime`.
#[napi(object)]
pub(crate) struct StageOptions<'a> {
    /// The app's `userData` folder (`app.getPath('userData')`); the store lives in
    /// `<userData>/runtime-store/`.
    pub user_data: String,
    /// The runtime version the app runs now. A value that is not semver counts as older than any
    /// release.
    pub current_version: String,
    /// Folder holding the app's bundled `node-pty/`, copied into every staged version.
    pub native_deps_source: String,
    /// Registry base URL. Default: `npm_config_registry` from the environment, else
    /// `https://registry.npmjs.org/`.
    pub registry: Option<String>,
    /// Package to stage. Default: `'kanban'`.
    pub package_name: Option<String>,
    /// Dist-tag to follow. Default: `'latest'`.
    pub dist_tag: Option<String>,
    /// Budget for the whole call, retries and lock wait included, in ms: a whole number from 1
    /// to 86400000 (24 h). Default: 600000 (10 min).
    pub timeout_ms: Option<u32>,
    /// Budget for each TCP + TLS connection, in ms: a whole number from 1 to 86400000.
    /// Default: 10000.
    pub connect_timeout_ms: Option<u32>,
    /// Longest wait for the next byte of a response, in ms: a whole number from 1 to 86400000.
    /// Default: 30000.
    pub idle_timeout_ms: Option<u32>,
    /// Retries after a transient failure (connect error, reset, 408, 429, 5xx): 0 to 10.
    /// Default: 3.
    pub retries: Option<u32>,
    /// Proxy for every request: a URL (`http://host:port`) or what Electron's
    /// `session.resolveProxy()` returns (`PROXY host:port; DIRECT`). Default: `HTTPS_PROXY` /
    /// `HTTP_PROXY` / `NO_PROXY` from the environment, else direct.
    pub proxy: Option<String>,
    /// Extra PEM certificates to trust beside the operating system's store. Default: none.
    pub ca: Option<Either<String, Vec<String>>>,
    /// Bearer token sent to the registry's own host only. Default: none.
    pub auth_token: Option<String>,
    /// Cap on the unpacked size of the tarball, in bytes: a positive whole number. Default: twice
    /// the registry's `dist.unpackedSize` plus 1 MiB, else 512 MiB; never above 1 GiB.
    pub max_unpacked_bytes: Option<i64>,
    /// Cap on the number of tarball entries: a positive whole number. Default: twice the
    /// registry's `dist.fileCount` plus 64, else 20000; never above 100000.
    pub max_entries: Option<u32>,
    /// Cap on the size of the registry's package document, in bytes: a positive integer.
    /// Default: 8 MiB (8388608); `kanban`'s document is ~10 KB. A larger document rejects with
    /// `code: 'ETOO_LARGE'` and `limit: 'document'`.
    pub max_document_bytes: Option<f64>,
    /// Release-age cool-down in minutes: a version published less than this long ago (by the
    /// full document's `time`) is not staged, and the newest release that is old enough, not
    /// deprecated, not newer than the tag's version and not a prerelease (unless the tag's is)
    /// is considered instead. A version without a `time` counts as too young. 0 to 527040
    /// (366 days). Default: 0 (off, and then only the smaller abbreviated document is fetched).
    pub min_release_age_minutes: Option<u32>,
    /// The registry's signing keys, as its `/-/npm/v1/keys` serves them; they replace the
    /// embedded keys. A signature that is present and does not verify with one of them (or
    /// whose key expired before the version was published) refuses the version (`ESIGNATURE`):
    /// it is passed over for the newest older release that passes, and the refusal is the
    /// outcome's `refused`. Default: the public npm registry's keys, embedded.
    pub registry_keys: Option<Vec<RegistryKeyOption>>,
    /// Also refuse (`ESIGNATURE`, passed over as above) a version that carries no registry
    /// signature. Many mirrors strip `dist.signatures`, hence opt-in. Default: false.
    pub require_signatures: Option<bool>,
    /// The Node version the runtime will run on: a runtime whose `engines.node` excludes it, or
    /// whose `node-pty` range excludes the bundled node-pty's version, rejects with
    /// `code: 'EINCOMPATIBLE'`. Default: the Node version of this process (Electron's Node in
    /// Electron).
    pub host_node_version: Option<String>,
    /// Stage a version only when its npm provenance attestation proves that a GitHub Actions run
    /// of `repository` (and of `workflowPath` when given) built exactly this tarball; otherwise
    /// the version is refused (`EPROVENANCE`) before anything is downloaded, passed over for the
    /// newest older release that passes, and the refusal is the outcome's `refused`. Default: not
    /// checked (no attestation is requested).
    pub provenance: Option<ProvenanceOptions>,
    /// The text of a Sigstore `trusted_root.json` whose Fulcio CAs and Rekor keys replace the
    /// embedded ones, at most 1 MiB. Default: Sigstore's public-good trust root, embedded.
    pub sigstore_trust_root: Option<String>,
    /// Phased rollout: a release reaches this store `rolloutBucket × rolloutHours` hours after
    /// it is eligible under the cool-down (by the full document's `time`), so a bad release
    /// reaches a few desktops first. A release not yet eligible here is passed over as the
    /// cool-down passes over a young one, and the outcome's `pending` names the newest held back.
    /// A version without a `time` is staged as without a rollout (with an `onLog` warning).
    /// A whole number from 0 to 8760 (a year). Default: 0 (off).
    pub rollout_hours: Option<u32>,
    /// This store's place in the rollout, a number from 0 up to (not including) 1, e.g. 0 for an
    /// app's internal canary users. Default: the store's own bucket, drawn at random on first
    /// use and kept in `rollout.json` (see `readStoreStatus`).
    pub rollout_bucket: Option<f64>,
    /// The publisher's kill switch: when the registry's document deprecates the version the
    /// pointer names (`npm deprecate kanban@x "reason"`), the call withdraws it: the pointer
    /// moves to the newest staged version that is whole, not bad, not deprecated (and newer than
    /// `bundledVersion`, when given), else it is removed so the app runs its bundled runtime.
    /// The version is not marked bad and its folder is kept: once the deprecation is lifted it is
    /// eligible again. Deprecated releases are never staged. The outcome's `withdrawn` says what
    /// was done. Default: false.
    pub honor_deprecation: Option<bool>,
    /// The version of the runtime bundled with the app: a withdrawal never points at a version
    /// that is not newer than it (the app's launch would drop such a pointer anyway). Default:
    /// unknown.
    pub bundled_version: Option<String>,
    /// Most tarball bytes read per second, so a background update leaves bandwidth for the
    /// user: a positive integer. Default: none (no cap).
    pub max_bytes_per_second: Option<f64>,
    /// Aborts the call: it rejects promptly with `code: 'EABORTED'`, removes this run's partial
    /// folder and leaves the pointer and every staged version as they were (the tarball bytes received
    /// so far are kept for the next call to resume). Default: none.
    #[napi(ts_type = "AbortSignal")]
    pub signal: Option<Object<'a>>,
    /// Called with progress while the call runs (phase, bytes downloaded, tarball size). It never
    /// keeps the process alive, and calls that would land after the JS environment is gone (exit,
    /// window reload) are dropped. A callback that throws loses that event and the call goes on;
    /// nothing reaches `uncaughtException`. Default: none.
    #[napi(ts_type = "(progress: StageProgress) => void")]
    pub on_progress: Option<Function<'a, StageProgress, ()>>,
    /// Called with what the stager decided and why: the tag and version resolved, each guard's
    /// answer, retries with their reason and delay, lock waits, what was swept or pruned. Same
    /// delivery rules as `onProgress`. Default: none.
    #[napi(ts_type = "(entry: StageLogEntry) => void")]
    pub on_log: Option<Function<'a, StageLogEntry, ()>>,
}

/// One registry signing key, as an entry of the registry's `/-/npm/v1/keys`.
#[allow(dead_code)]
#[napi(object)]
pub(crate) struct RegistryKeyOption {
    /// The key's id as `dist.signatures` names it (`SHA256:...`).
    pub keyid: String,
    /// `'ecdsa-sha2-nistp256'`, the only type the registry uses.
    pub keytype: Option<String>,
    /// `'ecdsa-sha2-nistp256'`.
    pub scheme: Option<String>,
    /// The public key: base64 of its SPKI DER.
    pub key: String,
    /// When the key was retired (ISO 8601): it verifies only versions published before.
    #[napi(ts_type = "string | null")]
    pub expires: Option<String>,
}

/// Who must have built a version (`provenance` option).
#[napi(object)]
pub(crate) struct ProvenanceOptions {
    /// The GitHub repository, `owner/name`.
    pub repository: String,
    /// The workflow file that must have built it, e.g. `.github/workflows/publish.yml`.
    /// Default: any workflow of the repository.
    pub workflow_path: Option<String>,
    /// The git ref the run must have built, or a glob of it (`*`: any run of characters), e.g.
    /// `refs/tags/v*`. Default: a branch or a tag (`refs/heads/*`, `refs/tags/*`). Runs
    /// triggered by `pull_request` or `pull_request_target` are refused whatever it says.
    #[napi(js_name = "ref")]
    pub git_ref: Option<String>,
}

const REGISTRY_KEYS: &str = "registryKeys";

/// The options object, read property by property with a type check on each. `undefined` and
/// `null` both mean "not given", as they did with napi's own conversion. Only the JS types are
/// checked here; ranges, defaults and parsing are `Config::resolve`'s.
pub(super) struct OptionsReader<'env> {
    obj: Object<'env>,
}

impl<'env> OptionsReader<'env> {
    pub(super) fn new(opts: Option<Unknown<'env>>) -> std::result::Result<Self, ArgError> {
        match opts {
            Some(v) if v.get_type()? == ValueType::Object => Ok(OptionsReader {
                // SAFETY: the value's type was just checked to be an object.
                obj: unsafe { v.cast::<Object>() }?,
            }),
            _ => Err(invalid("opts", "must be an options object")),
        }
    }

    /// Every option `Config::resolve` takes, read in the order it checks them.
    pub(super) fn read(&self) -> std::result::Result<Options, ArgError> {
        Ok(Options {
            user_data: self.string("userData")?,
            current_version: self.string("currentVersion")?,
            native_deps_source: self.string("nativeDepsSource")?,
            registry: self.string("registry")?,
            package_name: self.string("packageName")?,
            dist_tag: self.string("distTag")?,
            timeout_ms: self.number("timeoutMs")?,
            connect_timeout_ms: self.number("connectTimeoutMs")?,
            idle_timeout_ms: self.number("idleTimeoutMs")?,
            retries: self.number("retries")?,
            proxy: self.string("proxy")?,
            ca: self.ca()?,
            auth_token: self.string("authToken")?.map(Secret::new),
            max_bytes_per_second: self.number("maxBytesPerSecond")?,
            max_unpacked_bytes: self.number("maxUnpackedBytes")?,
            max_entries: self.number("maxEntries")?,
            max_document_bytes: self.number("maxDocumentBytes")?,
            min_release_age_minutes: self.number("minReleaseAgeMinutes")?,
            registry_keys: self.registry_keys()?,
            require_signatures: self.boolean("requireSignatures")?,
            host_node_version: self.string("hostNodeVersion")?,
            provenance: self.provenance()?,
            sigstore_trust_root: self.string("sigstoreTrustRoot")?,
            rollout_hours: self.number("rolloutHours")?,
            rollout_bucket: self.number("rolloutBucket")?,
            honor_deprecation: self.boolean("honorDeprecation")?,
            bundled_version: self.string("bundledVersion")?,
        })
    }

    fn get(&self, name: &'static str) -> std::result::Result<Option<Unknown<'env>>, ArgError> {
        let v: Unknown<'env> = self.obj.get_named_property(name)?;
        Ok(match v.get_type()? {
            ValueType::Undefined | ValueType::Null => None,
            _ => Some(v),
        })
    }

    /// The property when it has the JS type `ty`, else the error `wrong` makes.
    fn typed<T: FromNapiValue>(
        &self,
        name: &'static str,
        ty: ValueType,
        wrong: impl FnOnce() -> ArgError,
    ) -> std::result::Result<Option<T>, ArgError> {
        match self.get(name)? {
            None => Ok(None),
            // SAFETY: the value's type was just checked to be `ty`, the JS type of `T`.
            Some(v) if v.get_type()? == ty => Ok(Some(unsafe { v.cast() }?)),
            Some(_) => Err(wrong()),
        }
    }

    fn string(&self, name: &'static str) -> std::result::Result<Option<String>, ArgError> {
        self.typed(name, ValueType::String, || {
            invalid(name, "must be a string")
        })
    }

    fn number(&self, name: &'static str) -> std::result::Result<Option<f64>, ArgError> {
        self.typed(name, ValueType::Number, || {
            invalid(name, "must be a number")
        })
    }

    fn boolean(&self, name: &'static str) -> std::result::Result<Option<bool>, ArgError> {
        self.typed(name, ValueType::Boolean, || {
            invalid(name, "must be a boolean")
        })
    }

    /// A callback option: a function, or absent.
    pub(super) fn callback<T: ToNapiValue + JsValuesTupleIntoVec>(
        &self,
        name: &'static str,
    ) -> std::result::Result<Option<Function<'env, T, ()>>, ArgError> {
        self.typed(name, ValueType::Function, || {
            invalid(name, "must be a function")
        })
    }

    /// `ca`: one PEM string or an array of them.
    fn ca(&self) -> std::result::Result<Option<Vec<String>>, ArgError> {
        let Some(v) = self.get("ca")? else {
            return Ok(None);
        };
        let not_pem = || invalid("ca", "must be a PEM string or an array of PEM strings");
        match v.get_type()? {
            // SAFETY: the value's type was just checked to be a string.
            ValueType::String => Ok(Some(vec![unsafe { v.cast() }?])),
            ValueType::Object if v.is_array()? => {
                // SAFETY: the value was just checked to be an array.
                let items: Vec<Unknown> = unsafe { v.cast() }?;
                items
                    .into_iter()
                    .map(|item| match item.get_type()? {
                        // SAFETY: the item's type was just checked to be a string.
                        ValueType::String => Ok(unsafe { item.cast() }?),
                        _ => Err(not_pem()),
                    })
                    .collect::<std::result::Result<_, _>>()
                    .map(Some)
            }
            _ => Err(not_pem()),
        }
    }

    /// `registryKeys`: an array of key objects whose fields are strings.
    fn registry_keys(&self) -> std::result::Result<Option<Vec<RegistryKeyInput>>, ArgError> {
        let Some(v) = self.get(REGISTRY_KEYS)? else {
            return Ok(None);
        };
        if v.get_type()? != ValueType::Object || !v.is_array()? {
            return Err(invalid(REGISTRY_KEYS, "must be an array of key objects"));
        }
        // SAFETY: the value was just checked to be an array.
        let items: Vec<Unknown> = unsafe { v.cast() }?;
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| registry_key(i, item))
            .collect::<std::result::Result<_, _>>()
            .map(Some)
    }

    /// `provenance`: `{ repository, workflowPath?, ref? }`.
    fn provenance(&self) -> std::result::Result<Option<ProvenanceInput>, ArgError> {
        let Some(v) = self.get("provenance")? else {
            return Ok(None);
        };
        if v.get_type()? != ValueType::Object || v.is_array()? {
            return Err(invalid(
                "provenance",
                "must be an object `{ repository, workflowPath?, ref? }`",
            ));
        }
        let inner = OptionsReader {
            // SAFETY: the value's type was just checked to be an object.
            obj: unsafe { v.cast() }?,
        };
        let field = |name, full| {
            inner.typed(name, ValueType::String, || {
                invalid(full, "must be a string")
            })
        };
        Ok(Some(ProvenanceInput {
            repository: field("repository", "provenance.repository")?,
            workflow_path: field("workflowPath", "provenance.workflowPath")?,
            git_ref: field("ref", "provenance.ref")?,
        }))
    }

    /// `signal`: anything shaped like an `AbortSignal` (`aborted` boolean, both listener methods),
    /// so a polyfill works too.
    pub(super) fn signal(&self) -> std::result::Result<Option<Object<'env>>, ArgError> {
        let Some(v) = self.get("signal")? else {
            return Ok(None);
        };
        let not_signal = || invalid("signal", "must be an AbortSignal");
        if v.get_type()? != ValueType::Object {
            return Err(not_signal());
        }
        // SAFETY: the value's type was just checked to be an object.
        let obj: Object<'env> = unsafe { v.cast() }?;
        let type_of = |name: &str| -> Result<ValueType> {
            obj.get_named_property::<Unknown>(name)?.get_type()
        };
        if type_of("aborted")? != ValueType::Boolean
            || type_of("addEventListener")? != ValueType::Function
            || type_of("removeEventListener")? != ValueType::Function
        {
            return Err(not_signal());
        }
        Ok(Some(obj))
    }
}

/// `registryKeys`, one entry: an object whose fields are strings.
fn registry_key(i: usize, item: Unknown<'_>) -> std::result::Result<RegistryKeyInput, ArgError> {
    if item.get_type()? != ValueType::Object {
        return Err(invalid(
            REGISTRY_KEYS,
            format!("entry {i} is not an object"),
        ));
    }
    let entry = OptionsReader {
        // SAFETY: the item's type was just checked to be an object.
        obj: unsafe { item.cast() }?,
    };
    let field = |name: &'static str| {
        entry.typed(name, ValueType::String, || {
            invalid(
                REGISTRY_KEYS,
                format!("entry {i}: `{name}` must be a string"),
            )
        })
    };
    Ok(RegistryKeyInput {
        keyid: field("keyid")?,
        keytype: field("keytype")?,
        scheme: field("scheme")?,
        key: field("key")?,
        expires: field("expires")?,
    })
}
