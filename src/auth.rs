//! Credentials, kept out of every `Debug`, `Display`, log line and error.

use crate::error::{Error, Result};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use std::fmt;

/// A secret string. `Debug` prints `"***"`; there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself. Named loudly so that reading it is a visible choice.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

/// How requests are authenticated.
///
/// An API token is preferred. A pull consumer's token needs the account permission
/// *Queues: Edit* (read and write): pulling and acking change the queue's state.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Credentials {
    /// `Authorization: Bearer <token>`.
    ApiToken(Secret),
    /// Legacy global API key: `X-Auth-Email` + `X-Auth-Key`.
    ApiKey {
        /// The account's email address.
        email: String,
        /// The global API key.
        key: Secret,
    },
}

impl Credentials {
    /// An API token.
    pub fn api_token(token: impl Into<Secret>) -> Self {
        Credentials::ApiToken(token.into())
    }

    /// A legacy email + global API key pair.
    pub fn api_key(email: impl Into<String>, key: impl Into<Secret>) -> Self {
        Credentials::ApiKey {
            email: email.into(),
            key: key.into(),
        }
    }

    /// The headers that carry these credentials, marked sensitive so that the HTTP
    /// stack never prints them. Fails, without echoing the value, when a credential
    /// cannot be a header value.
    pub(crate) fn headers(&self) -> Result<HeaderMap> {
        fn value(v: &str, what: &str) -> Result<HeaderValue> {
            let mut hv = HeaderValue::from_str(v).map_err(|_| {
                Error::Config(format!(
                    "the {what} contains characters not allowed in an HTTP header"
                ))
            })?;
            hv.set_sensitive(true);
            Ok(hv)
        }
        let mut headers = HeaderMap::new();
        match self {
            Credentials::ApiToken(token) => {
                if token.0.trim().is_empty() {
                    return Err(Error::Config("the API token is empty".into()));
                }
                headers.insert(
                    AUTHORIZATION,
                    value(&format!("Bearer {}", token.0.trim()), "API token")?,
                );
            }
            Credentials::ApiKey { email, key } => {
                if email.trim().is_empty() || key.0.trim().is_empty() {
                    return Err(Error::Config(
                        "the email and the API key must both be set".into(),
                    ));
                }
                headers.insert(
                    HeaderName::from_static("x-auth-email"),
                    value(email.trim(), "email")?,
                );
                headers.insert(
                    HeaderName::from_static("x-auth-key"),
                    value(key.0.trim(), "API key")?,
                );
            }
        }
        Ok(headers)
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::ApiToken(_) => f.write_str("ApiToken(\"***\")"),
            Credentials::ApiKey { email, .. } => f
                .debug_struct("ApiKey")
                .field("email", email)
                .field("key", &"***")
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let token = Credentials::api_token("tok-very-secret");
        let key = Credentials::api_key("me@example.com", "key-very-secret");
        for c in [&token, &key] {
            let shown = format!("{c:?} {c:#?}");
            assert!(!shown.contains("very-secret"), "{shown}");
        }
        assert!(format!("{key:?}").contains("me@example.com"));
    }

    #[test]
    fn header_errors_do_not_echo_the_value() {
        let err = Credentials::api_token("bad\nsecret-value")
            .headers()
            .unwrap_err();
        assert!(!err.to_string().contains("secret-value"));
        assert!(Credentials::api_token("  ").headers().is_err());
        assert!(Credentials::api_key("", "k").headers().is_err());
    }

    #[test]
    fn headers_are_sensitive() {
        let h = Credentials::api_token("t").headers().unwrap();
        assert!(h[AUTHORIZATION].is_sensitive());
        assert_eq!(h[AUTHORIZATION], "Bearer t");
    }
}
