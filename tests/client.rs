//! Credentials, headers, base URL handling and secret hygiene.

mod common;

use cloudflare_queues::{Client, Error};
use common::*;
use serde_json::json;
use wiremock::matchers::{header, header_exists, method, path as path_is};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

#[tokio::test]
async fn api_token_is_sent_as_bearer_with_standard_headers() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_is(path(&format!("/queues/{QUEUE}/messages/pull"))))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("content-type", "application/json"))
        .and(header("accept", "application/json"))
        .respond_with(ok(json!({"messages": []})))
        .expect(1)
        .mount(&server)
        .await;

    client(&server).queue(QUEUE).pull().await.unwrap();

    let req = &server.received_requests().await.unwrap()[0];
    let agent = req.headers.get("user-agent").unwrap().to_str().unwrap();
    assert!(
        agent.starts_with(concat!("cloudflare-queues/", env!("CARGO_PKG_VERSION"))),
        "{agent}"
    );
    assert!(req.headers.get("x-auth-key").is_none());
}

#[tokio::test]
async fn legacy_key_sends_email_and_key_and_no_bearer() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(header("x-auth-email", "ops@example.com"))
        .and(header("x-auth-key", "global-key-123"))
        .respond_with(ok(json!({"messages": []})))
        .expect(1)
        .mount(&server)
        .await;
    let client = Client::builder()
        .api_key("ops@example.com", "global-key-123")
        .account_id(ACCOUNT)
        .base_url(format!("{}{PREFIX}", server.uri()))
        .build()
        .unwrap();
    client.queue(QUEUE).pull().await.unwrap();
    let req = &server.received_requests().await.unwrap()[0];
    assert!(req.headers.get("authorization").is_none());
    assert!(!format!("{client:?}").contains("global-key-123"));
}

#[tokio::test]
async fn user_agent_suffix_and_base_url_without_prefix() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_is(format!(
            "/accounts/{ACCOUNT}/queues/{QUEUE}/messages/pull"
        )))
        .respond_with(ok(json!({"messages": []})))
        .expect(1)
        .mount(&server)
        .await;
    let client = Client::builder()
        .api_token(TOKEN)
        .account_id(ACCOUNT)
        .base_url(server.uri())
        .user_agent_suffix("gpu-worker/2.1")
        .build()
        .unwrap();
    client.queue(QUEUE).pull().await.unwrap();
    let req = &server.received_requests().await.unwrap()[0];
    assert!(
        req.headers["user-agent"]
            .to_str()
            .unwrap()
            .ends_with(" gpu-worker/2.1")
    );
}

#[tokio::test]
async fn ids_are_encoded_as_one_path_segment() {
    let server = MockServer::start().await;
    Mock::given(header_exists("authorization"))
        .respond_with(ok(json!({"messages": []})))
        .mount(&server)
        .await;
    client(&server).queue("a/../b?c").pull().await.unwrap();
    let req = &server.received_requests().await.unwrap()[0];
    assert_eq!(req.url.path(), path("/queues/a%2F..%2Fb%3Fc/messages/pull"));

    let err = client(&server).queue("").pull().await.unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput { field, .. } if field == "queue_id"),
        "{err}"
    );
}

#[tokio::test]
async fn the_token_never_appears_in_debug_or_errors() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(|req: &Request| {
            // Echo the auth header back in the body, the worst case for leaking.
            let auth = req.headers["authorization"].to_str().unwrap().to_owned();
            ResponseTemplate::new(401).set_body_string(format!("<html>denied</html>{}", auth.len()))
        })
        .mount(&server)
        .await;
    let builder = Client::builder()
        .api_token(TOKEN)
        .account_id(ACCOUNT)
        .base_url(server.uri());
    assert!(!format!("{builder:?}").contains(TOKEN));
    let client = builder.build().unwrap();
    for shown in [
        format!("{client:?}"),
        format!("{client:#?}"),
        format!("{:?}", client.queue(QUEUE)),
    ] {
        assert!(!shown.contains(TOKEN), "{shown}");
    }

    let err = client.queue(QUEUE).pull().await.unwrap_err();
    assert_eq!(err.status(), Some(401));
    for shown in [format!("{err:?}"), format!("{err:#?}"), err.to_string()] {
        assert!(!shown.contains(TOKEN), "{shown}");
    }

    // A transport failure (nothing listening) must not leak it either.
    let closed = closed_port_url();
    let client = Client::builder()
        .api_token(TOKEN)
        .account_id(ACCOUNT)
        .base_url(closed)
        .build()
        .unwrap();
    let err = client
        .queue(QUEUE)
        .pull()
        .retry_policy(fast_retry(1))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    for shown in [format!("{err:?}"), err.to_string()] {
        assert!(!shown.contains(TOKEN), "{shown}");
    }
}

#[tokio::test]
async fn redirects_are_not_followed_so_credentials_stay_home() {
    // A redirect to another port (another origin). reqwest's default policy strips the
    // bearer token on such a hop but forwards X-Auth-Email / X-Auth-Key.
    let elsewhere = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ok(json!({"messages": []})))
        .expect(0)
        .mount(&elsewhere)
        .await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(307)
                .insert_header("location", format!("{}/stolen", elsewhere.uri()).as_str()),
        )
        .expect(1)
        .mount(&server)
        .await;
    let client = Client::builder()
        .api_key("ops@example.com", "global-key-123")
        .account_id(ACCOUNT)
        .base_url(format!("{}{PREFIX}", server.uri()))
        .build()
        .unwrap();

    let e = client.queue(QUEUE).pull().await.unwrap_err();
    assert_eq!(e.status(), Some(307), "{e:?}");
    assert!(!e.is_retryable());
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains("global-key-123"), "{shown}");
    assert!(
        elsewhere.received_requests().await.unwrap().is_empty(),
        "the redirect target must see no request"
    );
}

#[test]
fn base_url_with_user_and_password_is_refused() {
    let e = Client::builder()
        .api_token(TOKEN)
        .account_id(ACCOUNT)
        .base_url("https://ops:pa55word@api.cloudflare.com/client/v4")
        .build()
        .unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    assert!(e.to_string().contains("user name or password"), "{e}");
    assert!(!format!("{e} {e:?}").contains("pa55word"));
}

#[test]
fn try_queue_refuses_what_cannot_be_a_queue_id() {
    let client = Client::builder()
        .api_token(TOKEN)
        .account_id(ACCOUNT)
        .build()
        .unwrap();
    let good = client.try_queue(QUEUE).expect("32 hex characters");
    assert_eq!(good.id(), QUEUE);
    assert!(client.try_queue(QUEUE.to_uppercase()).is_ok());
    for (bad, says) in [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("orders", "find_by_name"),
        ("b01b5594f784d016/c2985833f5660dd", "`/`"),
        ("b01b5594f784d0165c2985833f5660d ", "whitespace"),
        ("b01b5594f784d0165c2985833f5660dé", "ASCII"),
        ("b01b5594f784d0165c2985833f5660", "30 characters"),
        ("b01b5594f784d0165c2985833f5660dd00", "34 characters"),
        ("../queues", "`/`"),
    ] {
        let e = client.try_queue(bad).expect_err(bad);
        let Error::InvalidInput { field, reason } = &e else {
            panic!("{bad:?}: {e:?}")
        };
        assert_eq!(field, "queue_id");
        assert!(reason.contains(says), "{bad:?}: {reason}");
    }
    // The infallible handle takes anything and checks nothing.
    assert_eq!(client.queue("orders").id(), "orders");
}
