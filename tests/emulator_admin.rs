//! Admin-plane fidelity of the emulator: it answers with the wire types the spec
//! declares (checked on the raw JSON, not only through the client, which is lenient), and
//! it keeps what a client gave it.

use cloudflare_queues::emulator::Emulator;
use cloudflare_queues::models::{Jurisdiction, MaxConcurrency};
use cloudflare_queues::ops;
use serde_json::{Value, json};

/// `GET` of `rest` (under the account) on the emulator, as raw JSON.
async fn raw_get(emu: &Emulator, rest: &str) -> Value {
    let resp = cloudflare_queues::reqwest::Client::new()
        .get(format!(
            "{}/accounts/{}{rest}",
            emu.base_url(),
            emu.account_id()
        ))
        .bearer_auth(emu.token())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "GET {rest}");
    resp.json().await.unwrap()
}

#[tokio::test]
async fn purge_status_completed_is_a_string_as_the_spec_types_it() {
    let emu = Emulator::start().await.unwrap();
    let client = emu.client();
    let id = client
        .queues()
        .create("purged")
        .await
        .unwrap()
        .queue_id
        .unwrap();
    let queue = client.queue(&id);
    queue.send("doomed").await.unwrap();

    let before = raw_get(&emu, &format!("/queues/{id}/purge")).await;
    assert_eq!(
        before["result"].get("completed"),
        None,
        "never purged: {before}"
    );
    assert!(!queue.purge_status().await.unwrap().is_completed());

    queue
        .purge()
        .delete_all_messages_permanently()
        .await
        .unwrap();
    let after = raw_get(&emu, &format!("/queues/{id}/purge")).await;
    assert_eq!(after["result"]["completed"], json!("true"), "{after}");
    assert!(after["result"]["started_at"].is_string(), "{after}");
    // The client reads the string (and would read a boolean as well).
    let status = queue.purge_status().await.unwrap();
    assert_eq!(status.completed, Some(true));
    assert!(status.is_completed());
}

#[tokio::test]
async fn jurisdiction_given_at_create_comes_back_on_create_get_and_list() {
    let emu = Emulator::start().await.unwrap();
    let queues = emu.client().queues();

    let created = queues
        .create("in-the-eu")
        .jurisdiction(Jurisdiction::Eu)
        .await
        .unwrap();
    assert_eq!(created.jurisdiction, Some(Jurisdiction::Eu));
    let id = created.queue_id.unwrap();
    let plain = queues.create("anywhere").await.unwrap();
    assert_eq!(plain.jurisdiction, None);

    let got = emu.client().queue(&id).get().await.unwrap();
    assert_eq!(got.jurisdiction, Some(Jurisdiction::Eu));

    let listed = queues.list().await.unwrap();
    let by_name = |name: &str| {
        listed
            .items
            .iter()
            .find(|q| q.queue_name.as_deref() == Some(name))
            .unwrap()
            .jurisdiction
            .clone()
    };
    assert_eq!(by_name("in-the-eu"), Some(Jurisdiction::Eu));
    assert_eq!(by_name("anywhere"), None);

    // On the wire: the spec's lowercase value, and no key for a queue without one.
    let raw = raw_get(&emu, &format!("/queues/{id}")).await;
    assert_eq!(raw["result"]["jurisdiction"], "eu");
    let raw = raw_get(&emu, &format!("/queues/{}", plain.queue_id.unwrap())).await;
    assert_eq!(raw["result"].get("jurisdiction"), None);

    // Renaming (PATCH) keeps it: it can only be set at create.
    let renamed = emu
        .client()
        .queue(&id)
        .edit()
        .name("still-in-the-eu")
        .await
        .unwrap();
    assert_eq!(renamed.jurisdiction, Some(Jurisdiction::Eu));
}

#[tokio::test]
async fn list_filters_by_name_and_find_by_name_is_one_request() {
    let emu = Emulator::start().await.unwrap();
    let queues = emu.client().queues();
    for name in ["alpha", "bravo", "charlie"] {
        queues.create(name).await.unwrap();
    }

    let page = queues.list().name("charlie").name("alpha").await.unwrap();
    let names: Vec<_> = page
        .items
        .iter()
        .map(|q| q.queue_name.as_deref().unwrap())
        .collect();
    assert_eq!(names, ["alpha", "charlie"]);
    assert_eq!(page.total_count(), Some(2));
    assert_eq!(
        queues.list().await.unwrap().items.len(),
        3,
        "no filter: all"
    );

    let before = emu.requests(&ops::LIST_QUEUES);
    let found = queues.find_by_name("bravo").await.unwrap().unwrap();
    assert_eq!(found.queue_name.as_deref(), Some("bravo"));
    assert_eq!(queues.find_by_name("delta").await.unwrap(), None);
    assert_eq!(
        emu.requests(&ops::LIST_QUEUES) - before,
        2,
        "one request per look-up"
    );
}

#[tokio::test]
async fn worker_consumer_null_concurrency_round_trips() {
    let emu = Emulator::start().await.unwrap();
    let client = emu.client();
    let id = client
        .queues()
        .create("worked")
        .await
        .unwrap()
        .queue_id
        .unwrap();
    let consumer = client
        .queue(&id)
        .consumers()
        .create_worker("consumer-script")
        .environment_name("production")
        .max_concurrency(MaxConcurrency::PlatformMaximum)
        .await
        .unwrap();
    assert_eq!(
        consumer.max_concurrency(),
        Some(MaxConcurrency::PlatformMaximum)
    );
    let raw = raw_get(&emu, &format!("/queues/{id}/consumers")).await;
    let settings = &raw["result"][0]["settings"];
    assert!(
        settings
            .as_object()
            .is_some_and(|s| s.get("max_concurrency") == Some(&Value::Null)),
        "{raw}"
    );
}
