//! The HTTP client: one per call, with its timeouts, proxies, extra CAs and token; bounded
//! document fetches with retries, and the streaming opens the tarball download builds on.

use super::retry::{Attempt, RetryPolicy, MAX_RETRY_AFTER};
use crate::config::{NetConfig, DEFAULT_MAX_DOCUMENT_BYTES};
use crate::registry::same_origin;
use crate::shared::call::Control;
use crate::shared::error::{Budget, Limit, Result, StageError};
use crate::shared::phase::Phase;
use crate::shared::text::clip;
use std::time::Duration;

pub struct Http {
    /// The client for plain-http URLs when the registry is one and nothing needs TLS up front
    /// (no proxy, no extra CA): it loads no root certificates, which costs several milliseconds
    /// (a hundred-odd files read and parsed) that a loopback or LAN registry never needs.
    plain: Option<reqwest::Client>,
    /// The client with the OS roots (and the extra CAs): built at once when `plain` is `None`,
    /// else on the first https URL (a tarball or a redirect that leaves the registry).
    tls: std::sync::OnceLock<reqwest::Client>,
    net: NetConfig,
    registry: String,
}

impl Http {
    pub fn new(net: &NetConfig, registry: &str) -> Result<Http> {
        let proxies = proxies(net)?;
        let (ca, http) = (ca_certificates(net)?, Http::empty(net, registry));
        if registry.starts_with("http://") && proxies.is_empty() && ca.is_empty() {
            let plain = base_builder(net)
                .tls_built_in_root_certs(false)
                .redirect(plain_redirect_policy());
            return Ok(Http {
                plain: Some(build(plain)?),
                ..http
            });
        }
        let mut b = base_builder(net).redirect(redirect_policy());
        for proxy in proxies {
            b = b.proxy(proxy);
        }
        for c in ca {
            b = b.add_root_certificate(c);
        }
        let _ = http.tls.set(build(b)?);
        Ok(http)
    }

    fn empty(net: &NetConfig, registry: &str) -> Http {
        Http {
            plain: None,
            tls: std::sync::OnceLock::new(),
            net: net.clone(),
            registry: registry.to_string(),
        }
    }

    /// The client for `url`: the plain one for an http URL when there is one, else the TLS one.
    fn client(&self, url: &str) -> Result<&reqwest::Client> {
        match self.plain.as_ref().filter(|_| url.starts_with("http://")) {
            Some(plain) => Ok(plain),
            None => self.tls_client(),
        }
    }

    /// The TLS client, built now if nothing needed it before.
    fn tls_client(&self) -> Result<&reqwest::Client> {
        if let Some(c) = self.tls.get() {
            return Ok(c);
        }
        // Only reached with no proxy and no extra CA: `new` builds it at once otherwise.
        let built = build(base_builder(&self.net).redirect(redirect_policy()))?;
        Ok(self.tls.get_or_init(|| built))
    }

    fn request(
        &self,
        client: &reqwest::Client,
        url: &str,
        accept: &str,
    ) -> reqwest::RequestBuilder {
        let mut req = client.get(url).header(reqwest::header::ACCEPT, accept);
        // The token belongs to the registry: a tarball URL may point at another host, which
        // must never see it.
        if let Some(token) = &self.net.auth_token {
            if same_origin(url, &self.registry) {
                req = req.bearer_auth(token.expose());
            }
        }
        req
    }

    /// One GET whose status is checked: 2xx gives the response, anything else an `EHTTP`.
    async fn send(&self, url: &str, accept: &str, phase: Phase) -> Result<reqwest::Response> {
        self.send_with(url, accept, phase, &[], false).await
    }

    /// One GET with extra `headers`; 2xx (and 304 when `not_modified_ok`, for a conditional
    /// request) gives the response, anything else an `EHTTP`.
    async fn send_with(
        &self,
        url: &str,
        accept: &str,
        phase: Phase,
        headers: &[(reqwest::header::HeaderName, &str)],
        not_modified_ok: bool,
    ) -> Result<reqwest::Response> {
        let send = |client: &reqwest::Client| {
            let mut req = self.request(client, url, accept);
            for (name, value) in headers {
                req = req.header(name, *value);
            }
            req.send()
        };
        let err = |e: reqwest::Error| transport_error(url, phase, &e, &self.net);
        let mut resp = send(self.client(url)?).await.map_err(err)?;
        // The plain client stops at a redirect to https (it has no roots to check the server
        // with): the request starts over on the TLS client, which follows the whole chain.
        if self.plain.is_some() && redirects_to_https(&resp) {
            resp = send(self.tls_client()?).await.map_err(err)?;
        }
        let status = resp.status();
        if status.is_success() || (not_modified_ok && status.as_u16() == 304) {
            return Ok(resp);
        }
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER));
        Err(StageError::Http {
            url: url.into(),
            status: status.as_u16(),
            retry_after,
        })
    }

    /// GETs the whole body of a small document, with retries (see `get_document`).
    pub async fn get_bytes(
        &self,
        url: &str,
        accept: &str,
        max_bytes: u64,
        ctl: &Control,
    ) -> Result<Vec<u8>> {
        match self.get_document(url, accept, max_bytes, None, ctl).await? {
            Fetched::Body { body, .. } => Ok(body),
            Fetched::NotModified => Err(StageError::Http {
                url: url.into(),
                status: 304,
                retry_after: None,
            }),
        }
    }

    /// GETs the whole body of a small document, with retries; with `cached`, conditionally
    /// (`If-None-Match` / `If-Modified-Since`), and a 304 is `NotModified`. The body is streamed
    /// into one buffer and refused (`ETOO_LARGE`, limit `document`) as soon as it would pass
    /// `max_bytes`, or before a byte is read when its Content-Length already does.
    pub async fn get_document(
        &self,
        url: &str,
        accept: &str,
        max_bytes: u64,
        cached: Option<&CacheValidators>,
        ctl: &Control,
    ) -> Result<Fetched> {
        let conditions = conditions(cached);
        let mut policy = RetryPolicy::document(self.net.retries);
        loop {
            let once = self.fetch_document(url, accept, max_bytes, &conditions);
            let e = match ctl.guard(url, once).await {
                Err(e) => e,
                fetched => return fetched,
            };
            if !policy.retry(ctl, url, &e, Attempt::default()).await? {
                return Err(e);
            }
        }
    }

    /// One attempt at a document: `NotModified` for a 304 to a conditional request, else the
    /// body and its validators.
    async fn fetch_document(
        &self,
        url: &str,
        accept: &str,
        max_bytes: u64,
        conditions: &[(reqwest::header::HeaderName, &str)],
    ) -> Result<Fetched> {
        let conditional = !conditions.is_empty();
        let resp = self
            .send_with(url, accept, Phase::Resolving, conditions, conditional)
            .await?;
        if resp.status().as_u16() == 304 {
            return Ok(Fetched::NotModified);
        }
        let validators = CacheValidators::of(&resp);
        let body = self.read_document(resp, url, max_bytes).await?;
        Ok(Fetched::Body { body, validators })
    }

    /// The whole body of a document, refused once it would pass `max_bytes`.
    async fn read_document(
        &self,
        mut resp: reqwest::Response,
        url: &str,
        max_bytes: u64,
    ) -> Result<Vec<u8>> {
        let declared = resp.content_length();
        if let Some(len) = declared.filter(|len| *len > max_bytes) {
            return Err(too_large(url, max_bytes, format!("{len} bytes")));
        }
        // Sized from the header so the buffer grows once, but never reserved beyond the default
        // cap on the header's word alone: a raised cap is spent only as bytes actually arrive.
        let reserve = declared.unwrap_or(0).min(DEFAULT_MAX_DOCUMENT_BYTES);
        let mut body = Vec::with_capacity(reserve as usize);
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| transport_error(url, Phase::Resolving, &e, &self.net))?
        {
            if (body.len() + chunk.len()) as u64 > max_bytes {
                return Err(too_large(
                    url,
                    max_bytes,
                    format!("more than {max_bytes} bytes"),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// Opens a streaming GET: one attempt, its status checked. The caller retries the whole
    /// download (a body can fail midway too), so the retry budget is spent in one place.
    pub async fn open(&self, url: &str, accept: &str, ctl: &Control) -> Result<reqwest::Response> {
        ctl.guard(url, self.send(url, accept, Phase::Downloading))
            .await
    }

    /// Opens a streaming GET for the bytes from `offset` on, if the representation still matches
    /// `if_range` (a strong ETag or a Last-Modified date); else the server sends it whole (200).
    pub async fn open_range(
        &self,
        url: &str,
        accept: &str,
        offset: u64,
        if_range: &str,
        ctl: &Control,
    ) -> Result<reqwest::Response> {
        let range = format!("bytes={offset}-");
        let headers = [
            (reqwest::header::RANGE, range.as_str()),
            (reqwest::header::IF_RANGE, if_range),
        ];
        ctl.guard(
            url,
            self.send_with(url, accept, Phase::Downloading, &headers, false),
        )
        .await
    }

    /// Maps a failure while reading a response body.
    pub fn transport_error(&self, url: &str, phase: Phase, e: &reqwest::Error) -> StageError {
        transport_error(url, phase, e, &self.net)
    }

    pub fn retries(&self) -> u32 {
        self.net.retries
    }

    pub fn max_bytes_per_second(&self) -> Option<u64> {
        self.net.max_bytes_per_second
    }
}

/// Longest ETag or Last-Modified kept with a cached document: real ones are under 100 bytes.
const MAX_VALIDATOR_BYTES: usize = 256;

/// The validators of a cached document, sent back to ask whether it changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheValidators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

impl CacheValidators {
    /// The validators a response carries.
    fn of(resp: &reqwest::Response) -> CacheValidators {
        let header = |name| {
            resp.headers()
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                // Validators are short; a huge one is not worth caching.
                .filter(|v| v.len() <= MAX_VALIDATOR_BYTES)
                .map(str::to_string)
        };
        CacheValidators {
            etag: header(reqwest::header::ETAG),
            last_modified: header(reqwest::header::LAST_MODIFIED),
        }
    }
}

/// The headers that make a request conditional on `cached` having changed.
fn conditions(cached: Option<&CacheValidators>) -> Vec<(reqwest::header::HeaderName, &str)> {
    use reqwest::header::{IF_MODIFIED_SINCE, IF_NONE_MATCH};
    let Some(c) = cached else {
        return Vec::new();
    };
    let etag = c.etag.as_deref().map(|v| (IF_NONE_MATCH, v));
    let modified = c.last_modified.as_deref().map(|v| (IF_MODIFIED_SINCE, v));
    etag.into_iter().chain(modified).collect()
}

/// `ETOO_LARGE` for a document of `size` over the `max_bytes` cap.
fn too_large(url: &str, max_bytes: u64, size: String) -> StageError {
    StageError::TooLarge {
        url: clip(url),
        limit: Limit::Document,
        reason: format!("the package document is {size}, over the {max_bytes}-byte cap"),
    }
}

/// What a (possibly conditional) document fetch gave.
#[derive(Debug)]
pub enum Fetched {
    /// 304: the cached copy is current.
    NotModified,
    Body {
        body: Vec<u8>,
        validators: CacheValidators,
    },
}

/// The DER of each certificate of a `ca` PEM text, read by the verifier's PEM reader. A block
/// that decodes but holds no X.509 certificate is refused here: reqwest accepts it and the TLS
/// backend only fails when the client is built, which would blame the machine, not the option.
fn ca_der(pem: &str) -> Result<Vec<Vec<u8>>> {
    runtime_stager_provenance::pem_certificates(pem.as_bytes()).map_err(|e| {
        StageError::InvalidOption {
            name: "ca",
            reason: e.to_string(),
        }
    })
}

/// The errors behind `e`, nearest first.
fn sources(e: &dyn std::error::Error) -> impl Iterator<Item = &(dyn std::error::Error + 'static)> {
    std::iter::successors(e.source(), |s| s.source())
}

/// An error's message followed by its sources' ("builder error: invalid peer certificate ...").
fn with_sources(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    for s in sources(e) {
        message.push_str(": ");
        message.push_str(&s.to_string());
    }
    message
}

/// The options every client shares: timeouts, user agent, no implicit proxy, no extra encoding.
fn base_builder(net: &NetConfig) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(net.connect_timeout)
        .read_timeout(net.idle_timeout)
        .user_agent(net.user_agent.clone())
        // Tarballs are already gzip; asking for more encoding only costs CPU.
        .no_gzip()
        // Proxies come from our own configuration only (read in one place), never implicitly.
        .no_proxy()
}

fn build(b: reqwest::ClientBuilder) -> Result<reqwest::Client> {
    b.build().map_err(|e| StageError::HttpClient {
        reason: with_sources(&e),
    })
}

/// The `ca` option's certificates, each read by the verifier's PEM reader and checked as X.509.
fn ca_certificates(net: &NetConfig) -> Result<Vec<reqwest::Certificate>> {
    let mut out = Vec::new();
    for pem in &net.ca {
        for der in ca_der(pem)? {
            out.push(reqwest::Certificate::from_der(&der).map_err(|e| {
                StageError::InvalidOption {
                    name: "ca",
                    reason: format!("a certificate is not usable: {e}"),
                }
            })?);
        }
    }
    Ok(out)
}

/// The plain client's policy: as [`redirect_policy`], but it stops (the response is returned)
/// at a redirect to https, which only the TLS client can follow.
fn plain_redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        if attempt.url().scheme() != "http" {
            attempt.stop()
        } else if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error("too many redirects")
        } else {
            attempt.follow()
        }
    })
}

/// Whether the plain client stopped at `resp`, a redirect whose target is not plain http.
fn redirects_to_https(resp: &reqwest::Response) -> bool {
    resp.status().is_redirection()
        && resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| resp.url().join(l).ok())
            .is_some_and(|to| to.scheme() != "http")
}

/// Redirects followed per request, as many as reqwest's default policy follows.
const MAX_REDIRECTS: usize = 10;

/// reqwest's default policy (at most [`MAX_REDIRECTS`]) that also refuses a redirect from https
/// to plain http, whatever the request: the document, the keys, an attestation or the tarball.
/// Credentials stay where they were: reqwest drops `Authorization` on a redirect to another host.
fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        // `previous` holds the request's URL and each one it was redirected to since.
        let from = attempt.previous().last();
        if let Some(from) = from.filter(|from| is_downgrade(from, attempt.url())) {
            let refused = Downgrade {
                location: attempt.url().to_string(),
                from: from.to_string(),
            };
            attempt.error(refused)
        } else if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error("too many redirects")
        } else {
            attempt.follow()
        }
    })
}

/// Whether going from `from` to `to` drops TLS.
fn is_downgrade(from: &reqwest::Url, to: &reqwest::Url) -> bool {
    from.scheme() == "https" && to.scheme() == "http"
}

/// The redirect policy's refusal of a redirect from https to http, found again in the error
/// reqwest returns.
#[derive(Debug)]
struct Downgrade {
    from: String,
    location: String,
}

impl std::fmt::Display for Downgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "redirect from {} to plain http", self.from)
    }
}

impl std::error::Error for Downgrade {}

/// The refused downgrade behind `e`, if that is what failed.
fn downgrade_of(e: &reqwest::Error) -> Option<&Downgrade> {
    sources(e).find_map(|s| s.downcast_ref::<Downgrade>())
}

/// Maps a transport failure to `EINSECURE_REDIRECT` (a redirect from https to http),
/// `ETIMEDOUT` (connect or idle timeout) or `ENETWORK`.
pub(super) fn transport_error(
    url: &str,
    phase: Phase,
    e: &reqwest::Error,
    net: &NetConfig,
) -> StageError {
    if let Some(d) = downgrade_of(e) {
        return StageError::InsecureRedirect {
            url: url.into(),
            location: d.location.clone(),
        };
    }
    if e.is_timeout() {
        let (budget, ms) = if e.is_connect() {
            (Budget::Connect, net.connect_timeout)
        } else {
            (Budget::Idle, net.idle_timeout)
        };
        return StageError::Timeout {
            url: url.into(),
            phase,
            budget,
            ms: ms.as_millis() as u64,
        };
    }
    // The chain holds the useful part ("connection refused", "unexpected EOF").
    let message = with_sources(e);
    StageError::Network {
        url: url.into(),
        phase,
        message,
    }
}

/// The proxies to use: the explicit option, else the environment's.
fn proxies(net: &NetConfig) -> Result<Vec<reqwest::Proxy>> {
    let invalid = |e: reqwest::Error, what: &str| StageError::InvalidOption {
        name: "proxy",
        reason: format!("{what}: {e}"),
    };
    if let Some(opt) = &net.proxy {
        return match parse_proxy_option(opt)? {
            Some(url) => Ok(vec![
                reqwest::Proxy::all(&url).map_err(|e| invalid(e, &url))?
            ]),
            None => Ok(Vec::new()),
        };
    }
    let no_proxy = net
        .env_proxy
        .no_proxy
        .as_deref()
        .and_then(reqwest::NoProxy::from_string);
    let mut out = Vec::new();
    if let Some(url) = &net.env_proxy.https {
        out.push(
            reqwest::Proxy::https(url)
                .map_err(|e| invalid(e, url))?
                .no_proxy(no_proxy.clone()),
        );
    }
    if let Some(url) = &net.env_proxy.http {
        out.push(
            reqwest::Proxy::http(url)
                .map_err(|e| invalid(e, url))?
                .no_proxy(no_proxy.clone()),
        );
    }
    Ok(out)
}

/// Accepts a proxy URL (`http://host:port`) or what Electron's `session.resolveProxy()` returns
/// (`PROXY host:port; DIRECT`): the first usable entry wins, `DIRECT` means no proxy.
pub(super) fn parse_proxy_option(opt: &str) -> Result<Option<String>> {
    let opt = opt.trim();
    if opt.is_empty() {
        return Ok(None);
    }
    if opt.contains("://") {
        return Ok(Some(opt.to_string()));
    }
    for rule in opt.split(';').map(str::trim).filter(|r| !r.is_empty()) {
        let mut words = rule.split_whitespace();
        let kind = words.next().unwrap_or("").to_ascii_uppercase();
        let host = words.next();
        match (kind.as_str(), host) {
            ("DIRECT", _) => return Ok(None),
            ("PROXY", Some(h)) | ("HTTP", Some(h)) => return Ok(Some(format!("http://{h}"))),
            ("HTTPS", Some(h)) => return Ok(Some(format!("https://{h}"))),
            _ => continue,
        }
    }
    Err(StageError::InvalidOption {
        name: "proxy",
        reason: format!(
            "`{}` is neither a proxy URL nor a PAC result with PROXY or DIRECT",
            mask_bare_userinfo(opt)
        ),
    })
}

/// `opt` with the userinfo of each `user:pw@host` in it masked, scheme or not: a proxy is often
/// written without one (`user:pw@proxy:3128`, as `HTTPS_PROXY` takes it), which URL masking
/// does not recognise.
fn mask_bare_userinfo(opt: &str) -> String {
    opt.split(' ')
        .map(|word| match word.rfind('@') {
            Some(at) => {
                let start = word.find("://").map_or(0, |i| i + 3);
                if start <= at {
                    format!("{}***{}", &word[..start], &word[at..])
                } else {
                    word.to_string()
                }
            }
            None => word.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_proxy_option_never_shows_its_password() {
        for opt in ["user:s3cret@proxy:3128", "PROXY; user:s3cret@proxy:3128 x"] {
            let e = parse_proxy_option(opt).unwrap_err();
            assert_eq!(e.code(), "EINVALID_OPTION");
            assert!(!e.to_string().contains("s3cret"), "{e}");
            assert!(e.to_string().contains("***@proxy:3128"), "{e}");
        }
    }

    #[test]
    fn a_ca_block_that_is_no_certificate_is_an_invalid_ca() {
        // Valid base64 ("hello world"), not DER: the TLS backend would only fail at build time.
        let net = NetConfig {
            ca: vec![
                "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n".into(),
            ],
            ..NetConfig::default()
        };
        match Http::new(&net, "http://127.0.0.1:1/") {
            Err(StageError::InvalidOption { name, .. }) => assert_eq!(name, "ca"),
            Err(e) => panic!("expected EINVALID_OPTION for ca, got {} ({e})", e.code()),
            Ok(_) => panic!("expected EINVALID_OPTION for ca, got a client"),
        }
    }

    #[test]
    fn only_https_to_http_is_a_downgrade() {
        let u = |s: &str| reqwest::Url::parse(s).unwrap();
        assert!(is_downgrade(&u("https://r/a"), &u("http://r/a")));
        assert!(is_downgrade(&u("https://r/a"), &u("http://other:8080/b")));
        assert!(!is_downgrade(&u("http://r/a"), &u("https://r/a")));
        assert!(!is_downgrade(&u("http://r/a"), &u("http://other/a")));
        assert!(!is_downgrade(&u("https://r/a"), &u("https://cdn/a")));
    }

    #[test]
    fn proxy_option_forms() {
        assert_eq!(
            parse_proxy_option("http://p:8080").unwrap().as_deref(),
            Some("http://p:8080")
        );
        assert_eq!(
            parse_proxy_option("PROXY p:3128; DIRECT")
                .unwrap()
                .as_deref(),
            Some("http://p:3128")
        );
        assert_eq!(
            parse_proxy_option("SOCKS5 s:1; HTTPS q:443")
                .unwrap()
                .as_deref(),
            Some("https://q:443")
        );
        assert_eq!(parse_proxy_option("DIRECT").unwrap(), None);
        assert_eq!(parse_proxy_option("").unwrap(), None);
        assert_eq!(
            parse_proxy_option("SOCKS5 s:1").unwrap_err().code(),
            "EINVALID_OPTION"
        );
    }
}
