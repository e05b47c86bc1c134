//! [`Client`] and its builder: credentials, account, base URL, timeouts, retries.

use crate::auth::Credentials;
use crate::error::{Error, Result};
use crate::retry::RetryPolicy;
use reqwest::header::{HeaderMap, HeaderValue};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use url::{Host, Url};

/// The default API root.
pub const DEFAULT_BASE_URL: &str = "https://api.cloudflare.com/client/v4";

const USER_AGENT: &str = concat!("cloudflare-queues/", env!("CARGO_PKG_VERSION"), " (rust)");

/// A Cloudflare Queues API client for one account.
///
/// Cheap to clone (an `Arc`), `Send + Sync`; share one per process so that connections
/// are pooled. Handles such as [`Client::queue`] own a clone, so they can be stored and
/// moved into tasks freely.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) http: reqwest::Client,
    pub(crate) base_url: Url,
    pub(crate) account_id: String,
    pub(crate) credentials: Credentials,
    pub(crate) auth_headers: HeaderMap,
    pub(crate) user_agent: HeaderValue,
    pub(crate) retry: RetryPolicy,
    pub(crate) timeout: Option<Duration>,
    pub(crate) total_timeout: Option<Duration>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("Client")
            .field("base_url", &i.base_url.as_str())
            .field("account_id", &i.account_id)
            .field("credentials", &i.credentials)
            .field("retry", &i.retry)
            .field("timeout", &i.timeout)
            .field("total_timeout", &i.total_timeout)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A builder; [`ClientBuilder::build`] checks the configuration.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client configured from the environment variables the official SDKs and
    /// wrangler read: `CLOUDFLARE_API_TOKEN` (or `CLOUDFLARE_EMAIL` + `CLOUDFLARE_API_KEY`),
    /// `CLOUDFLARE_ACCOUNT_ID` and, optionally, `CLOUDFLARE_BASE_URL`.
    pub fn from_env() -> Result<Client> {
        ClientBuilder::default().from_env().build()
    }

    /// The account this client works on.
    pub fn account_id(&self) -> &str {
        &self.inner.account_id
    }

    /// The API root requests are sent to.
    pub fn base_url(&self) -> &Url {
        &self.inner.base_url
    }

    /// The client-wide retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.retry
    }

    /// The client-wide timeout of each attempt, if any (see [`ClientBuilder::timeout`]).
    pub fn timeout(&self) -> Option<Duration> {
        self.inner.timeout
    }

    /// The client-wide total timeout of a call, if any (see
    /// [`ClientBuilder::total_timeout`]).
    pub fn total_timeout(&self) -> Option<Duration> {
        self.inner.total_timeout
    }
}

/// Builds a [`Client`]. Explicit setters win over [`ClientBuilder::from_env`], whatever
/// the order of the calls.
#[derive(Default)]
pub struct ClientBuilder {
    credentials: Option<Credentials>,
    account_id: Option<String>,
    base_url: Option<String>,
    allow_http: bool,
    timeout: Option<Option<Duration>>,
    total_timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    user_agent_suffix: Option<String>,
    http: Option<reqwest::Client>,
    retry: Option<RetryPolicy>,
    env: Env,
}

/// Values read from the environment; used only where no setter gave one.
#[derive(Default)]
struct Env {
    credentials: Option<Credentials>,
    account_id: Option<String>,
    base_url: Option<String>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field(
                "credentials",
                &self.credentials.as_ref().or(self.env.credentials.as_ref()),
            )
            .field(
                "account_id",
                &self.account_id.as_ref().or(self.env.account_id.as_ref()),
            )
            .field(
                "base_url",
                &self.base_url.as_ref().or(self.env.base_url.as_ref()),
            )
            .field("allow_http", &self.allow_http)
            .field("timeout", &self.timeout)
            .field("total_timeout", &self.total_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// Authenticates with an API token (`Authorization: Bearer`).
    #[must_use]
    pub fn api_token(self, token: impl Into<crate::Secret>) -> Self {
        self.credentials(Credentials::api_token(token))
    }

    /// Authenticates with the legacy email + global API key.
    #[must_use]
    pub fn api_key(self, email: impl Into<String>, key: impl Into<crate::Secret>) -> Self {
        self.credentials(Credentials::api_key(email, key))
    }

    /// Sets the credentials.
    #[must_use]
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// The account every request is made for.
    #[must_use]
    pub fn account_id(mut self, account_id: impl Into<String>) -> Self {
        self.account_id = Some(account_id.into());
        self
    }

    /// The API root (default `https://api.cloudflare.com/client/v4`). A path prefix such
    /// as `/client/v4` is kept. Plain `http://` is refused unless the host is loopback
    /// (the local emulator) or [`ClientBuilder::allow_insecure_http`] is set.
    #[must_use]
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// Allows a plain `http://` base URL on a non-loopback host. Credentials then travel
    /// unencrypted; use it only on a trusted network.
    #[must_use]
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }

    /// Timeout of each attempt, from sending the request to reading the whole body
    /// (default 60 s; `None` disables it). Applies to a caller-supplied HTTP client too.
    ///
    /// An attempt that times out is retried like a lost connection: reads, pulls, acks,
    /// updates and deletes are, publishes and creates are not (the server may have
    /// applied them). Each retry gets the full timeout again, so a call can take up to
    /// `max_attempts` times this plus the backoff sleeps; bound the whole call with
    /// [`total_timeout`](Self::total_timeout). Request builders override it per call
    /// with their `timeout` setter.
    #[must_use]
    pub fn timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.timeout = Some(timeout.into());
        self
    }

    /// Deadline of a whole call: every attempt and every backoff sleep between them
    /// (default: none; `None` removes it). When it runs out the call fails with
    /// [`Error::TotalTimeout`]; an attempt in flight is abandoned. A retry whose backoff
    /// (or server-requested `Retry-After`) would end at or past the deadline is not
    /// waited for: the call fails at once, with the last attempt's error as the source.
    ///
    /// With the per-attempt [`timeout`](Self::timeout) and the
    /// [`RetryPolicy`], it bounds a call three ways: each attempt, the number of attempts,
    /// and the total. Request builders override it per call with their `total_timeout`
    /// setter. A call that makes several requests (`send_batch` in chunks,
    /// `find_by_name` through pages) shares one deadline; a list stream has one per page.
    #[must_use]
    pub fn total_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.total_timeout = timeout.into();
        self
    }

    /// Timeout for opening a connection (default 10 s). Cannot be combined with
    /// [`ClientBuilder::http_client`]: configure that client instead.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Text appended to the `User-Agent` (`cloudflare-queues/<version> (rust) <text>`),
    /// e.g. your application's name and version.
    #[must_use]
    pub fn user_agent_suffix(mut self, suffix: impl Into<String>) -> Self {
        self.user_agent_suffix = Some(suffix.into());
        self
    }

    /// Uses a caller-configured `reqwest::Client` (proxies, TLS roots, pool settings).
    /// Authentication, the user agent and the per-attempt timeout are still set per
    /// request by this crate.
    ///
    /// Build it with `.redirect(reqwest::redirect::Policy::none())`, as this crate does
    /// for the client it builds: the Cloudflare API never redirects, and reqwest's default
    /// policy would forward the `X-Auth-Email` / `X-Auth-Key` headers of the legacy
    /// credentials to wherever a redirect points.
    #[must_use]
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// The client-wide retry policy (see [`RetryPolicy`]).
    #[must_use]
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// Reads `CLOUDFLARE_API_TOKEN`, `CLOUDFLARE_API_KEY` + `CLOUDFLARE_EMAIL`,
    /// `CLOUDFLARE_ACCOUNT_ID` and `CLOUDFLARE_BASE_URL`. Values given through setters
    /// win. A token wins over a key pair. Empty variables count as unset.
    #[must_use]
    pub fn from_env(self) -> Self {
        self.from_vars(|name| std::env::var(name).ok())
    }

    /// Like [`ClientBuilder::from_env`], but reads variables through `lookup`, which
    /// makes configuration testable without touching the process environment.
    #[must_use]
    pub fn from_vars(mut self, lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        self.env.credentials = match (
            get("CLOUDFLARE_API_TOKEN"),
            get("CLOUDFLARE_EMAIL"),
            get("CLOUDFLARE_API_KEY"),
        ) {
            (Some(token), _, _) => Some(Credentials::api_token(token)),
            (None, Some(email), Some(key)) => Some(Credentials::api_key(email, key)),
            _ => None,
        };
        self.env.account_id = get("CLOUDFLARE_ACCOUNT_ID");
        self.env.base_url = get("CLOUDFLARE_BASE_URL");
        self
    }

    /// Checks the configuration and builds the client.
    pub fn build(self) -> Result<Client> {
        let credentials = self.credentials.or(self.env.credentials).ok_or_else(|| {
            Error::Config(
                "no credentials: set an API token (CLOUDFLARE_API_TOKEN) or an email + global API key".into(),
            )
        })?;
        let auth_headers = credentials.headers()?;
        let account_id = self
            .account_id
            .or(self.env.account_id)
            .map(|a| a.trim().to_owned())
            .filter(|a| !a.is_empty())
            .ok_or_else(|| {
                Error::Config("no account id: set one (CLOUDFLARE_ACCOUNT_ID)".into())
            })?;
        let raw_url = self
            .base_url
            .or(self.env.base_url)
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
        let base_url = parse_base_url(&raw_url, self.allow_http)?;

        let mut agent = USER_AGENT.to_owned();
        if let Some(suffix) = self.user_agent_suffix.filter(|s| !s.trim().is_empty()) {
            agent.push(' ');
            agent.push_str(suffix.trim());
        }
        let user_agent = HeaderValue::from_str(&agent).map_err(|_| {
            Error::Config("the user agent suffix is not a valid header value".into())
        })?;

        let http = match (self.http, self.connect_timeout) {
            (Some(_), Some(_)) => {
                return Err(Error::Config(
                    "connect_timeout has no effect on a caller-supplied http_client; set it on that client".into(),
                ));
            }
            (Some(http), None) => http,
            (None, connect) => reqwest::Client::builder()
                // The Cloudflare API never redirects. Following one would send the
                // credentials to wherever it points (reqwest strips `Authorization` on
                // a cross-origin hop, but not `X-Auth-Key`), so a 3xx is returned as an
                // error instead.
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(connect.unwrap_or(Duration::from_secs(10)))
                .pool_idle_timeout(Duration::from_secs(90))
                .build()
                .map_err(|e| Error::Config(format!("could not build the HTTP client: {e}")))?,
        };

        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base_url,
                account_id,
                credentials,
                auth_headers,
                user_agent,
                retry: self.retry.unwrap_or_default(),
                timeout: self.timeout.unwrap_or(Some(Duration::from_secs(60))),
                total_timeout: self.total_timeout,
            }),
        })
    }
}

/// Parses and checks a base URL; the result ends in `/` so that joining keeps the prefix.
fn parse_base_url(raw: &str, allow_http: bool) -> Result<Url> {
    // The raw text is never echoed: it may carry a password.
    let mut url = Url::parse(raw.trim())
        .map_err(|e| Error::Config(format!("the base URL is not a URL: {e}")))?;
    if !url.username().is_empty() || url.password().is_some() {
        // Credentials in a URL end up in logs, proxies and error messages; Cloudflare
        // authenticates with headers only.
        return Err(Error::Config(
            "the base URL must not contain a user name or password (`user:password@`); \
             set credentials with api_token or api_key"
                .into(),
        ));
    }
    match url.scheme() {
        "https" => {}
        "http" if allow_http || is_loopback(&url) => {}
        "http" => {
            return Err(Error::Config(format!(
                "base URL `{url}` uses plain http on a non-loopback host; credentials would travel unencrypted \
                 (use https, or allow_insecure_http(true) on a trusted network)"
            )));
        }
        other => {
            return Err(Error::Config(format!(
                "base URL scheme `{other}` is not http or https"
            )));
        }
    }
    if url.cannot_be_a_base() || url.host().is_none() {
        return Err(Error::Config(format!("base URL `{url}` has no host")));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::Config(format!(
            "base URL `{url}` must not have a query or fragment"
        )));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn env_supplies_what_setters_do_not() {
        let env = vars(&[
            ("CLOUDFLARE_API_TOKEN", "env-token"),
            ("CLOUDFLARE_ACCOUNT_ID", "env-account"),
            ("CLOUDFLARE_BASE_URL", "http://127.0.0.1:9/client/v4"),
        ]);
        let c = Client::builder()
            .account_id("explicit")
            .from_vars(&env)
            .build()
            .unwrap();
        assert_eq!(
            c.account_id(),
            "explicit",
            "a setter wins even when called first"
        );
        assert_eq!(c.base_url().as_str(), "http://127.0.0.1:9/client/v4/");
        assert!(matches!(c.inner.credentials, Credentials::ApiToken(_)));
        let c = Client::builder()
            .from_vars(&env)
            .account_id("later")
            .build()
            .unwrap();
        assert_eq!(c.account_id(), "later");
    }

    #[test]
    fn env_key_pair_and_missing_values() {
        let env = vars(&[
            ("CLOUDFLARE_EMAIL", "a@b.c"),
            ("CLOUDFLARE_API_KEY", "k"),
            ("CLOUDFLARE_ACCOUNT_ID", "acc"),
        ]);
        let c = Client::builder().from_vars(env).build().unwrap();
        assert!(matches!(c.inner.credentials, Credentials::ApiKey { .. }));

        let err = Client::builder()
            .from_vars(vars(&[("CLOUDFLARE_ACCOUNT_ID", "acc")]))
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("no credentials"), "{err}");
        let err = Client::builder()
            .from_vars(vars(&[
                ("CLOUDFLARE_API_TOKEN", "t"),
                ("CLOUDFLARE_ACCOUNT_ID", " "),
            ]))
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("no account id"), "{err}");
    }

    #[test]
    fn base_urls_are_checked() {
        let ok = |u: &str| parse_base_url(u, false).map(|u| u.to_string());
        assert_eq!(
            ok("https://api.cloudflare.com/client/v4").unwrap(),
            "https://api.cloudflare.com/client/v4/"
        );
        assert_eq!(
            ok("http://localhost:8787").unwrap(),
            "http://localhost:8787/"
        );
        assert!(ok("http://[::1]:8787/x").is_ok());
        assert!(ok("http://127.0.0.2:1").is_ok());
        let err = ok("http://example.com/client/v4").unwrap_err().to_string();
        assert!(err.contains("plain http"), "{err}");
        assert!(parse_base_url("http://example.com", true).is_ok());
        assert!(ok("ftp://example.com").is_err());
        assert!(ok("https://example.com/?a=b").is_err());
        assert!(ok("not a url").is_err());
    }

    #[test]
    fn base_url_with_credentials_is_refused_without_echoing_them() {
        for url in [
            "https://user:hunter2@api.cloudflare.com/client/v4",
            "https://hunter2@api.cloudflare.com/client/v4",
            "http://admin:hunter2@127.0.0.1:8787",
            "https://user:hunter2@bad host/",
        ] {
            let err = parse_base_url(url, true).unwrap_err();
            assert!(matches!(err, Error::Config(_)), "{url}: {err:?}");
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains("hunter2"), "{shown}");
        }
    }

    #[test]
    fn connect_timeout_with_own_client_is_refused() {
        let err = Client::builder()
            .api_token("t")
            .account_id("a")
            .http_client(reqwest::Client::new())
            .connect_timeout(Duration::from_secs(1))
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::Config(_)));
    }

    #[test]
    fn debug_output_hides_the_token() {
        let b = Client::builder()
            .api_token("super-secret-token")
            .account_id("acc");
        assert!(!format!("{b:?}").contains("super-secret-token"));
        let c = b.build().unwrap();
        let shown = format!("{c:?} {c:#?}");
        assert!(!shown.contains("super-secret-token"), "{shown}");
        assert!(shown.contains("acc"));
    }
}
