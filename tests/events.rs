//! Event message bodies: every example payload of Cloudflare's "Events & schemas" page
//! (re-typed as fixtures under `tests/fixtures/events/`) decodes to its typed variant
//! with the documented values; unknown types and fields are kept; R2 notifications.

mod common;

use cloudflare_queues::events::{
    DOCUMENTED_EVENT_TYPES, Event, EventPayload, R2Action, R2Notification,
};
use common::fixture;
use serde_json::{Value, json};

const SOURCES: [&str; 9] = [
    "access",
    "artifacts",
    "r2",
    "super_slurper",
    "vectorize",
    "workers_ai",
    "workers_builds",
    "kv",
    "workflows",
];

/// The documented examples of one source, as raw JSON.
fn raw_examples(source: &str) -> Vec<Value> {
    match fixture(&format!("events/{source}.json")) {
        Value::Array(items) => items,
        other => panic!("events/{source}.json is not an array: {other}"),
    }
}

/// The documented examples of one source, decoded.
fn examples(source: &str) -> Vec<Event> {
    raw_examples(source)
        .into_iter()
        .map(|raw| serde_json::from_value(raw).unwrap())
        .collect()
}

/// The example whose `type` is `event_type`.
fn example(source: &str, event_type: &str) -> Event {
    examples(source)
        .into_iter()
        .find(|e| e.event_type == event_type)
        .unwrap_or_else(|| panic!("no {event_type} in {source}"))
}

const ACCOUNT: &str = "f9f79265f388666de8122cfb508d7776";
const SUBSCRIPTION: &str = "1830c4bb612e43c3af7f4cada31fbf3f";

#[test]
fn every_documented_event_type_has_one_example_and_decodes_typed() {
    let all: Vec<Event> = SOURCES.iter().flat_map(|s| examples(s)).collect();
    let types: Vec<&str> = all.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types.len(), 36, "the page documents 36 event types");
    assert_eq!(types, DOCUMENTED_EVENT_TYPES, "same types, same order");
    for event in &all {
        assert!(
            event.is_typed(),
            "{} fell back to Unknown",
            event.event_type
        );
        assert_eq!(event.payload.event_type(), Some(event.event_type.as_str()));
        assert_eq!(event.metadata.account_id.as_deref(), Some(ACCOUNT));
        assert_eq!(event.metadata.event_schema_version, Some(1));
        assert!(event.metadata.event_timestamp.is_some());
        assert!(event.metadata.event_subscription_id.is_some());
        assert!(
            event.extra.is_empty() && event.source.extra.is_empty(),
            "{}: every documented field has a name",
            event.event_type
        );
        // The event's type is `cf.<source kind>.<event>`.
        let kind = &event.source.kind;
        assert!(
            event.event_type.starts_with(&format!("cf.{kind}."))
                || (kind == "artifacts" && event.event_type.starts_with("cf.artifacts.repo.")),
            "{} from {kind}",
            event.event_type
        );
    }
}

#[test]
fn decoding_then_encoding_gives_the_documented_json_back() {
    for source in SOURCES {
        for raw in raw_examples(source) {
            let event: Event = serde_json::from_value(raw.clone()).unwrap();
            let written = serde_json::to_value(&event).unwrap();
            assert_eq!(
                written,
                without_nulls(&raw),
                "{} (fields sent as null are left out)",
                event.event_type
            );
        }
    }
}

fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

#[test]
fn access_events() {
    for (event_type, created) in [
        ("cf.access.application.created", true),
        ("cf.access.application.deleted", false),
    ] {
        let e = example("access", event_type);
        assert_eq!(e.source.kind, "access");
        let app = match (&e.payload, created) {
            (EventPayload::AccessApplicationCreated(app), true) => app,
            (EventPayload::AccessApplicationDeleted(app), false) => app,
            (other, _) => panic!("{event_type}: {other:?}"),
        };
        assert_eq!(
            app.id.as_deref(),
            Some("app-12345678-90ab-cdef-1234-567890abcdef")
        );
        assert_eq!(app.name.as_deref(), Some("My Application"));
        assert_eq!(
            e.metadata.event_subscription_id.as_deref(),
            Some(SUBSCRIPTION)
        );
        assert_eq!(
            e.metadata.event_timestamp.as_deref(),
            Some("2025-05-01T02:48:57.132Z")
        );
    }
}

#[test]
fn artifacts_account_level_events() {
    let e = example("artifacts", "cf.artifacts.repo.created");
    assert_eq!(e.source.kind, "artifacts");
    assert_eq!(e.source.namespace.as_deref(), Some("my-namespace"));
    assert_eq!(e.source.repo_name.as_deref(), Some("my-repo"));
    let EventPayload::ArtifactsRepoCreated(repo) = &e.payload else {
        panic!("{:?}", e.payload)
    };
    assert_eq!(repo.repo_id.as_deref(), Some("0tvugavnogssnwzk"));
    assert_eq!(repo.default_branch.as_deref(), Some("main"));
    assert_eq!(repo.description.as_deref(), Some("My Artifacts repository"));
    assert_eq!(repo.read_only, Some(false));
    assert_eq!(repo.created_at.as_deref(), Some("2026-05-18T15:53:46.833Z"));
    assert_eq!(repo.updated_at.as_deref(), Some("2026-05-18T15:53:46.833Z"));
    assert_eq!(repo.last_push_at, None, "null");
    assert_eq!(
        e.metadata.event_timestamp.as_deref(),
        Some("2026-05-18T15:53:48.187Z")
    );

    let e = example("artifacts", "cf.artifacts.repo.deleted");
    let EventPayload::ArtifactsRepoDeleted(repo) = &e.payload else {
        panic!("{:?}", e.payload)
    };
    assert_eq!(repo.repo_id.as_deref(), Some("0tvugavnogssnwzk"));
    assert_eq!(
        e.metadata.event_timestamp.as_deref(),
        Some("2026-05-18T15:53:59.914Z")
    );

    let e = example("artifacts", "cf.artifacts.repo.forked");
    assert_eq!(e.source.namespace.as_deref(), Some("source-namespace"));
    assert_eq!(e.source.repo_name.as_deref(), Some("source-repo"));
    let EventPayload::ArtifactsRepoForked(fork) = &e.payload else {
        panic!("{:?}", e.payload)
    };
    assert_eq!(fork.namespace.as_deref(), Some("target-namespace"));
    assert_eq!(fork.repo_name.as_deref(), Some("target-repo"));
    assert_eq!(fork.repo_id.as_deref(), Some("5ankv1vhl4xnw7wq"));
    assert_eq!(fork.description.as_deref(), Some("Fork of source-repo"));
    assert_eq!(fork.updated_at.as_deref(), Some("2026-05-18T15:53:54.579Z"));
    assert_eq!(fork.read_only, Some(false));
    assert_eq!(fork.last_push_at, None);

    let e = example("artifacts", "cf.artifacts.repo.imported");
    let EventPayload::ArtifactsRepoImported(import) = &e.payload else {
        panic!("{:?}", e.payload)
    };
    assert_eq!(import.repo_id.as_deref(), Some("d7nd72k964cv9kub"));
    assert_eq!(import.description, None, "null");
    assert_eq!(
        import.source_url.as_deref(),
        Some("https://github.com/example/repo.git")
    );
    assert_eq!(import.branch.as_deref(), Some("main"));
    assert_eq!(
        import.created_at.as_deref(),
        Some("2026-05-18T15:53:54.864Z")
    );
}

#[test]
fn artifacts_repository_level_events() {
    let e = example("artifacts", "cf.artifacts.repo.pushed");
    assert_eq!(e.source.kind, "artifacts.repo");
    let EventPayload::ArtifactsRepoPushed(push) = &e.payload else {
        panic!("{:?}", e.payload)
    };
    assert_eq!(push.git_ref.as_deref(), Some("refs/heads/main"));
    assert_eq!(
        push.before.as_deref(),
        Some("abc123def456abc123def456abc123def456abc1")
    );
    assert_eq!(
        push.after.as_deref(),
        Some("def789ghi012def789ghi012def789ghi012def7")
    );
    assert_eq!(push.total_commits_count, Some(1));
    assert_eq!(push.commits_truncated, Some(false));
    let [commit] = &push.commits[..] else {
        panic!("{:?}", push.commits)
    };
    assert_eq!(commit.id, push.after);
    assert_eq!(commit.message.as_deref(), Some("Fix bug in authentication"));
    assert_eq!(commit.message_truncated, Some(false));
    assert_eq!(
        commit.timestamp.as_deref(),
        Some("2025-05-01T02:48:57.000Z")
    );
    let author = commit.author.as_ref().unwrap();
    assert_eq!(author.name.as_deref(), Some("Developer Name"));
    assert_eq!(author.email.as_deref(), Some("developer@example.com"));
    assert_eq!(commit.committer, commit.author);
    assert_eq!(commit.parents, [push.before.clone().unwrap()]);

    for (event_type, cloned) in [
        ("cf.artifacts.repo.cloned", true),
        ("cf.artifacts.repo.fetched", false),
    ] {
        let e = example("artifacts", event_type);
        let empty = match (&e.payload, cloned) {
            (EventPayload::ArtifactsRepoCloned(p), true) => p,
            (EventPayload::ArtifactsRepoFetched(p), false) => p,
            (other, _) => panic!("{event_type}: {other:?}"),
        };
        assert!(empty.extra.is_empty());
        assert_eq!(
            e.metadata.event_subscription_id.as_deref(),
            Some("0ab4c7b45a39491ba5da2973f3d093a6")
        );
    }

    let e = example("artifacts", "cf.artifacts.repo.token.created");
    assert_eq!(e.source.namespace.as_deref(), Some("default"));
    assert_eq!(e.source.repo_name.as_deref(), Some("token-evt-repo"));
    let EventPayload::ArtifactsTokenCreated(token) = &e.payload else {
        panic!("{:?}", e.payload)
    };
    assert_eq!(token.token_id.as_deref(), Some("7ngdf3ww3u84t33x"));
    assert_eq!(token.scope.as_deref(), Some("read"));
    assert_eq!(
        token.expires_at.as_deref(),
        Some("2026-05-20T16:58:14.548Z")
    );

    let e = example("artifacts", "cf.artifacts.repo.token.revoked");
    let EventPayload::ArtifactsTokenRevoked(token) = &e.payload else {
        panic!("{:?}", e.payload)
    };
    assert_eq!(token.token_id.as_deref(), Some("7ngdf3ww3u84t33x"));
}

#[test]
fn r2_events() {
    let e = example("r2", "cf.r2.bucket.created");
    assert_eq!(e.source.kind, "r2");
    let EventPayload::R2BucketCreated(bucket) = &e.payload else {
        panic!("{:?}", e.payload)
    };
    assert_eq!(bucket.name.as_deref(), Some("my-bucket"));
    assert_eq!(bucket.jurisdiction.as_deref(), Some("default"));
    assert_eq!(bucket.location.as_deref(), Some("WNAM"));
    assert_eq!(bucket.storage_class.as_deref(), Some("Standard"));

    let e = example("r2", "cf.r2.bucket.deleted");
    let EventPayload::R2BucketDeleted(bucket) = &e.payload else {
        panic!("{:?}", e.payload)
    };
    assert_eq!(bucket.name.as_deref(), Some("my-bucket"));
    assert_eq!(bucket.jurisdiction.as_deref(), Some("default"));
}

#[test]
fn super_slurper_events() {
    const JOB: &str = "job-12345678-90ab-cdef-1234-567890abcdef";
    let e = example("super_slurper", "cf.superSlurper.job.started");
    assert_eq!(e.source.kind, "superSlurper");
    let EventPayload::SlurperJobStarted(job) = &e.payload else {
        panic!("{:?}", e.payload)
    };
    assert_eq!(job.id.as_deref(), Some(JOB));
    assert_eq!(job.created_at.as_deref(), Some("2025-05-01T02:48:57.132Z"));
    assert_eq!(job.overwrite, Some(true));
    assert_eq!(job.path_prefix.as_deref(), Some("migrations/"));
    let from = job.source.as_ref().unwrap();
    assert_eq!(
        (
            from.provider.as_deref(),
            from.bucket.as_deref(),
            from.region.as_deref(),
            from.endpoint.as_deref()
        ),
        (
            Some("s3"),
            Some("source-bucket"),
            Some("us-east-1"),
            Some("s3.amazonaws.com")
        )
    );
    let to = job.destination.as_ref().unwrap();
    assert_eq!(
        (
            to.provider.as_deref(),
            to.bucket.as_deref(),
            to.jurisdiction.as_deref()
        ),
        (Some("r2"), Some("destination-bucket"), Some("default"))
    );

    for event_type in ["cf.superSlurper.job.paused", "cf.superSlurper.job.resumed"] {
        let e = example("super_slurper", event_type);
        let job = match &e.payload {
            EventPayload::SlurperJobPaused(job) if event_type.ends_with("paused") => job,
            EventPayload::SlurperJobResumed(job) if event_type.ends_with("resumed") => job,
            other => panic!("{event_type}: {other:?}"),
        };
        assert_eq!(job.id.as_deref(), Some(JOB));
    }

    let e = example("super_slurper", "cf.superSlurper.job.completed");
    let EventPayload::SlurperJobCompleted(done) = &e.payload else {
        panic!("{:?}", e.payload)
    };
    assert_eq!(
        (
            done.total_objects_count,
            done.skipped_objects_count,
            done.migrated_objects_count,
            done.failed_objects_count
        ),
        (Some(1000), Some(10), Some(980), Some(10))
    );
    let e = example("super_slurper", "cf.superSlurper.job.aborted");
    let EventPayload::SlurperJobAborted(aborted) = &e.payload else {
        panic!("{:?}", e.payload)
    };
    assert_eq!(aborted.id.as_deref(), Some(JOB));
    assert_eq!(
        (
            aborted.total_objects_count,
            aborted.skipped_objects_count,
            aborted.migrated_objects_count,
            aborted.failed_objects_count
        ),
        (Some(1000), Some(100), Some(500), Some(50))
    );

    let e = example("super_slurper", "cf.superSlurper.job.object.migrated");
    assert_eq!(e.source.kind, "superSlurper.job");
    assert_eq!(e.source.job_id.as_deref(), Some(JOB));
    let EventPayload::SlurperObjectMigrated(object) = &e.payload else {
        panic!("{:?}", e.payload)
    };
    assert_eq!(object.key.as_deref(), Some("migrations/file.txt"));
}

#[test]
fn vectorize_events() {
    let e = example("vectorize", "cf.vectorize.index.created");
    let EventPayload::VectorizeIndexCreated(index) = &e.payload else {
        panic!("{:?}", e.payload)
    };
    assert_eq!(index.name.as_deref(), Some("my-vector-index"));
    assert_eq!(index.description.as_deref(), Some("Index for embeddings"));
    assert_eq!(
        index.created_at.as_deref(),
        Some("2025-05-01T02:48:57.132Z")
    );
    assert_eq!(
        index.modified_at.as_deref(),
        Some("2025-05-01T02:48:57.132Z")
    );
    assert_eq!(index.dimensions, Some(1536));
    assert_eq!(index.metric.as_deref(), Some("cosine"));

    let e = example("vectorize", "cf.vectorize.index.deleted");
    let EventPayload::VectorizeIndexDeleted(index) = &e.payload else {
        panic!("{:?}", e.payload)
    };
    assert_eq!(index.name.as_deref(), Some("my-vector-index"));
}

#[test]
fn workers_ai_events() {
    const REQUEST: &str = "req-12345678-90ab-cdef-1234-567890abcdef";
    for event_type in [
        "cf.workersAi.model.batch.queued",
        "cf.workersAi.model.batch.succeeded",
    ] {
        let e = example("workers_ai", event_type);
        assert_eq!(e.source.kind, "workersAi.model");
        assert_eq!(
            e.source.model_name.as_deref(),
            Some("@cf/baai/bge-base-en-v1.5")
        );
        let batch = match &e.payload {
            EventPayload::AiBatchQueued(b) if event_type.ends_with("queued") => b,
            EventPayload::AiBatchSucceeded(b) if event_type.ends_with("succeeded") => b,
            other => panic!("{event_type}: {other:?}"),
        };
        assert_eq!(batch.request_id.as_deref(), Some(REQUEST));
    }
    let e = example("workers_ai", "cf.workersAi.model.batch.failed");
    let EventPayload::AiBatchFailed(failed) = &e.payload else {
        panic!("{:?}", e.payload)
    };
    assert_eq!(failed.request_id.as_deref(), Some(REQUEST));
    assert_eq!(failed.message.as_deref(), Some("Model execution failed"));
    assert_eq!(failed.internal_code, Some(5001));
    assert_eq!(failed.http_code, Some(500));
}

#[test]
fn workers_builds_events() {
    let cases = [
        (
            "cf.workersBuilds.worker.build.started",
            "running",
            None,
            None,
        ),
        (
            "cf.workersBuilds.worker.build.failed",
            "failed",
            Some("failure"),
            Some("2025-05-01T02:50:00.132Z"),
        ),
        (
            "cf.workersBuilds.worker.build.canceled",
            "canceled",
            Some("canceled"),
            Some("2025-05-01T02:49:30.132Z"),
        ),
        (
            "cf.workersBuilds.worker.build.succeeded",
            "success",
            Some("success"),
            Some("2025-05-01T02:50:15.132Z"),
        ),
    ];
    for (event_type, status, outcome, stopped) in cases {
        let e = example("workers_builds", event_type);
        assert_eq!(e.source.kind, "workersBuilds.worker");
        assert_eq!(e.source.worker_name.as_deref(), Some("my-worker"));
        let build = match &e.payload {
            EventPayload::WorkersBuildStarted(b) if status == "running" => b,
            EventPayload::WorkersBuildFailed(b) if status == "failed" => b,
            EventPayload::WorkersBuildCanceled(b) if status == "canceled" => b,
            EventPayload::WorkersBuildSucceeded(b) if status == "success" => b,
            other => panic!("{event_type}: {other:?}"),
        };
        assert_eq!(
            build.build_uuid.as_deref(),
            Some("build-12345678-90ab-cdef-1234-567890abcdef")
        );
        assert_eq!(build.status.as_deref(), Some(status));
        assert_eq!(build.build_outcome.as_deref(), outcome);
        assert_eq!(build.stopped_at.as_deref(), stopped);
        assert_eq!(
            build.created_at.as_deref(),
            Some("2025-05-01T02:48:57.132Z")
        );
        assert_eq!(
            build.initializing_at.as_deref(),
            Some("2025-05-01T02:48:58.132Z")
        );
        assert_eq!(
            build.running_at.as_deref(),
            Some("2025-05-01T02:48:59.132Z")
        );
        let trigger = build.build_trigger_metadata.as_ref().unwrap();
        assert_eq!(trigger.build_trigger_source.as_deref(), Some("push_event"));
        assert_eq!(trigger.branch.as_deref(), Some("main"));
        assert_eq!(trigger.commit_hash.as_deref(), Some("abc123def456"));
        assert_eq!(
            trigger.commit_message.as_deref(),
            Some("Fix bug in authentication")
        );
        assert_eq!(trigger.author.as_deref(), Some("developer@example.com"));
        assert_eq!(trigger.build_command.as_deref(), Some("npm run build"));
        assert_eq!(trigger.deploy_command.as_deref(), Some("wrangler deploy"));
        assert_eq!(trigger.root_directory.as_deref(), Some("/"));
        assert_eq!(trigger.repo_name.as_deref(), Some("my-worker-repo"));
        assert_eq!(
            trigger.provider_account_name.as_deref(),
            Some("github-user")
        );
        assert_eq!(trigger.provider_type.as_deref(), Some("github"));
    }
}

#[test]
fn kv_events() {
    for event_type in ["cf.kv.namespace.created", "cf.kv.namespace.deleted"] {
        let e = example("kv", event_type);
        assert_eq!(e.source.kind, "kv");
        let ns = match &e.payload {
            EventPayload::KvNamespaceCreated(ns) if event_type.ends_with("created") => ns,
            EventPayload::KvNamespaceDeleted(ns) if event_type.ends_with("deleted") => ns,
            other => panic!("{event_type}: {other:?}"),
        };
        assert_eq!(
            ns.id.as_deref(),
            Some("ns-12345678-90ab-cdef-1234-567890abcdef")
        );
        assert_eq!(ns.name.as_deref(), Some("my-kv-namespace"));
    }
}

#[test]
fn workflows_events() {
    for e in examples("workflows") {
        assert_eq!(e.source.kind, "workflows.workflow");
        assert_eq!(e.source.workflow_name.as_deref(), Some("my-workflow"));
        let state = e.event_type.rsplit('.').next().unwrap().to_owned();
        let instance = match (&e.payload, state.as_str()) {
            (EventPayload::WorkflowInstanceQueued(i), "queued")
            | (EventPayload::WorkflowInstanceStarted(i), "started")
            | (EventPayload::WorkflowInstancePaused(i), "paused")
            | (EventPayload::WorkflowInstanceErrored(i), "errored")
            | (EventPayload::WorkflowInstanceTerminated(i), "terminated")
            | (EventPayload::WorkflowInstanceCompleted(i), "completed") => i,
            (other, _) => panic!("{}: {other:?}", e.event_type),
        };
        assert_eq!(instance.version_id.as_deref(), Some("v1"));
        assert_eq!(
            instance.instance_id.as_deref(),
            Some("inst-12345678-90ab-cdef-1234-567890abcdef")
        );
    }
}

#[test]
fn an_unknown_event_type_is_kept_whole() {
    let raw = json!({
        "type": "cf.images.image.uploaded",
        "source": {"type": "images", "variantId": "v-9"},
        "payload": {"imageId": "img-1", "sizes": [1, 2]},
        "metadata": {"accountId": ACCOUNT, "eventSchemaVersion": 2, "eventTimestamp": "2027-01-01T00:00:00Z"},
        "deliveryAttempt": 3
    });
    let event: Event = serde_json::from_value(raw.clone()).unwrap();
    assert!(!event.is_typed());
    assert_eq!(event.event_type, "cf.images.image.uploaded");
    assert_eq!(event.payload, EventPayload::Unknown(raw["payload"].clone()));
    assert_eq!(event.payload.event_type(), None);
    assert_eq!(event.source.kind, "images");
    assert_eq!(event.source.extra["variantId"], "v-9");
    assert_eq!(event.metadata.event_schema_version, Some(2));
    assert_eq!(event.extra["deliveryAttempt"], 3);
    assert_eq!(serde_json::to_value(&event).unwrap(), raw, "nothing lost");
}

#[test]
fn unknown_fields_are_kept_at_every_level() {
    let mut raw = raw_examples("artifacts")
        .into_iter()
        .find(|e| e["type"] == "cf.artifacts.repo.pushed")
        .unwrap();
    raw["traceId"] = json!("t-1");
    raw["source"]["region"] = json!("weur");
    raw["payload"]["forced"] = json!(true);
    raw["payload"]["commits"][0]["signed"] = json!({"by": "key-7"});
    raw["payload"]["commits"][0]["author"]["username"] = json!("dev");
    raw["metadata"]["retry"] = json!(0);

    let event: Event = serde_json::from_value(raw.clone()).unwrap();
    let EventPayload::ArtifactsRepoPushed(push) = &event.payload else {
        panic!("{:?}", event.payload)
    };
    assert_eq!(event.extra["traceId"], "t-1");
    assert_eq!(event.source.extra["region"], "weur");
    assert_eq!(push.extra["forced"], true);
    assert_eq!(push.commits[0].extra["signed"]["by"], "key-7");
    assert_eq!(
        push.commits[0].author.as_ref().unwrap().extra["username"],
        "dev"
    );
    assert_eq!(event.metadata.extra["retry"], 0);
    assert_eq!(serde_json::to_value(&event).unwrap(), raw);
}

#[test]
fn a_payload_of_another_shape_is_kept_raw_not_refused() {
    // A documented type whose payload changed shape (a number became an object).
    let raw = json!({
        "type": "cf.vectorize.index.created",
        "source": {"type": "vectorize"},
        "payload": {"name": "idx", "dimensions": {"width": 1536}},
        "metadata": {"accountId": ACCOUNT}
    });
    let event: Event = serde_json::from_value(raw.clone()).unwrap();
    assert_eq!(event.payload, EventPayload::Unknown(raw["payload"].clone()));
    assert_eq!(event.metadata.account_id.as_deref(), Some(ACCOUNT));

    // A source or metadata that is not an object is kept in `extra`, under its key.
    let raw = json!({"type": "cf.kv.namespace.created", "source": "kv", "metadata": [1], "payload": {"id": "n"}});
    let event: Event = serde_json::from_value(raw.clone()).unwrap();
    assert!(matches!(event.payload, EventPayload::KvNamespaceCreated(_)));
    assert_eq!(event.source.kind, "");
    assert_eq!(event.extra["source"], "kv");
    assert_eq!(event.extra["metadata"], json!([1]));
    assert_eq!(serde_json::to_value(&event).unwrap(), raw);

    // No payload at all: kept as absent.
    let event: Event = serde_json::from_value(json!({"type": "cf.kv.namespace.deleted"})).unwrap();
    assert_eq!(event.payload, EventPayload::Unknown(Value::Null));
    assert_eq!(
        serde_json::to_value(&event).unwrap(),
        json!({"type": "cf.kv.namespace.deleted", "source": {"type": ""}, "metadata": {}})
    );
}

#[test]
fn bodies_that_are_not_events_are_errors_not_panics() {
    for body in [
        json!("cf.r2.bucket.created"),
        json!([1, 2]),
        json!({"payload": {}}),
        json!({"type": 7}),
        // An R2 notification is not an event (no `type`): try R2Notification instead.
        fixture("events/r2_notifications.json")[0].clone(),
    ] {
        assert!(
            serde_json::from_value::<Event>(body.clone()).is_err(),
            "{body}"
        );
    }
}

#[test]
fn r2_notifications_decode_as_documented() {
    let [copy, put]: [R2Notification; 2] =
        serde_json::from_value(fixture("events/r2_notifications.json")).unwrap();

    assert_eq!(copy.account, "3f4b7e3dcab231cbfdaa90a6a28bd548");
    assert_eq!(copy.action, R2Action::CopyObject);
    assert!(copy.action.is_object_create() && !copy.action.is_object_delete());
    assert_eq!(copy.bucket, "my-bucket");
    assert_eq!(copy.object.key, "my-new-object");
    assert_eq!(copy.object.size, Some(65536));
    assert_eq!(
        copy.object.e_tag.as_deref(),
        Some("c846ff7a18f28c2e262116d6e8719ef0")
    );
    assert_eq!(copy.event_time.as_deref(), Some("2024-05-24T19:36:44.379Z"));
    let from = copy.copy_source.as_ref().unwrap();
    assert_eq!(from.bucket.as_deref(), Some("my-bucket"));
    assert_eq!(from.object.as_deref(), Some("my-original-object"));

    assert_eq!(put.action, R2Action::PutObject);
    assert_eq!(put.copy_source, None, "only copies name a source");
    assert_eq!(put.event_time, None, "older messages had no eventTime");
    assert_eq!(
        serde_json::to_value(&put).unwrap(),
        fixture("events/r2_notifications.json")[1]
    );
}

#[test]
fn r2_deletions_and_unknown_actions() {
    for (action, expected) in [
        ("DeleteObject", R2Action::DeleteObject),
        ("LifecycleDeletion", R2Action::LifecycleDeletion),
    ] {
        let note: R2Notification = serde_json::from_value(json!({
            "account": "3f4b7e3dcab231cbfdaa90a6a28bd548", "action": action, "bucket": "b",
            "object": {"key": "gone.txt"}, "eventTime": "2026-01-02T03:04:05.000Z"
        }))
        .unwrap();
        assert_eq!(note.action, expected);
        assert!(note.action.is_object_delete() && !note.action.is_object_create());
        assert_eq!((note.object.size, note.object.e_tag), (None, None));
    }
    for (action, create) in [
        ("PutObject", true),
        ("CompleteMultipartUpload", true),
        ("CopyObject", true),
    ] {
        assert_eq!(R2Action::from(action).is_object_create(), create);
        assert_eq!(R2Action::from(action).as_str(), action);
    }

    let raw = json!({
        "account": "a", "action": "RestoreObject", "bucket": "b",
        "object": {"key": "k", "size": 5.0, "versionId": "v2"}, "region": "weur"
    });
    let note: R2Notification = serde_json::from_value(raw.clone()).unwrap();
    assert_eq!(note.action, R2Action::Unknown("RestoreObject".into()));
    assert!(!note.action.is_object_create() && !note.action.is_object_delete());
    assert_eq!(note.object.size, Some(5), "5.0 reads as 5");
    assert_eq!(note.object.extra["versionId"], "v2");
    assert_eq!(note.extra["region"], "weur");

    // Without the fields every notification has, a body is not an R2 notification.
    for missing in ["action", "bucket", "object"] {
        let mut body = raw.clone();
        body.as_object_mut().unwrap().remove(missing);
        assert!(
            serde_json::from_value::<R2Notification>(body).is_err(),
            "{missing}"
        );
    }
    let mut body = raw;
    body["object"].as_object_mut().unwrap().remove("key");
    assert!(serde_json::from_value::<R2Notification>(body).is_err());
}

/// Seeds `bodies` as `json` messages into a new queue with an HTTP pull consumer.
async fn seeded_queue(
    emu: &cloudflare_queues::emulator::Emulator,
    bodies: &[Value],
) -> cloudflare_queues::QueueHandle {
    use cloudflare_queues::emulator::SeedMessage;
    let client = emu.client();
    let created = client.queues().create("events").await.unwrap();
    let queue = client.queue(created.queue_id.unwrap());
    queue.consumers().create_http_pull().await.unwrap();
    let seeds: Vec<_> = bodies
        .iter()
        .map(|b| SeedMessage::json(b).unwrap())
        .collect();
    emu.seed(queue.id(), seeds).unwrap();
    queue
}

#[tokio::test]
async fn pulled_messages_decode_as_events_and_notifications() {
    let emu = cloudflare_queues::emulator::Emulator::start()
        .await
        .unwrap();
    let bodies = [
        raw_examples("workers_builds")[1].clone(),
        json!({"type": "cf.stream.video.ready", "payload": {"uid": "v1"}}),
        fixture("events/r2_notifications.json")[0].clone(),
    ];
    let queue = seeded_queue(&emu, &bodies).await;
    let batch = queue.pull().batch_size(10).await.unwrap();
    assert_eq!(batch.messages.len(), 3);

    let build: Event = batch.messages[0].json().unwrap();
    let EventPayload::WorkersBuildFailed(b) = &build.payload else {
        panic!("{:?}", build.payload)
    };
    assert_eq!(b.build_outcome.as_deref(), Some("failure"));
    let unknown: Event = batch.messages[1].json().unwrap();
    assert_eq!(unknown.payload, EventPayload::Unknown(json!({"uid": "v1"})));
    // An R2 notification is not an event; it is an R2Notification.
    assert!(batch.messages[2].json::<Event>().is_err());
    let note: R2Notification = batch.messages[2].json().unwrap();
    assert_eq!(note.action, R2Action::CopyObject);
}

#[tokio::test]
async fn consumer_deliveries_decode_as_events() {
    use cloudflare_queues::consumer::ShutdownMode;
    use futures::StreamExt as _;
    use std::time::Duration;

    let emu = cloudflare_queues::emulator::Emulator::start()
        .await
        .unwrap();
    let queue = seeded_queue(&emu, &raw_examples("workflows")).await;
    let consumer = queue.pull_consumer().build().unwrap();
    let shutdown = consumer.shutdown_handle();
    let mut stream = consumer.stream();
    let mut instances = Vec::new();
    while instances.len() < 6 {
        let delivery = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("a delivery within 10 s")
            .expect("the stream goes on")
            .unwrap();
        let event: Event = delivery.json().unwrap();
        assert_eq!(event.source.workflow_name.as_deref(), Some("my-workflow"));
        instances.push(event.event_type.clone());
        let _ = delivery.ack();
    }
    instances.sort();
    let mut expected: Vec<_> = DOCUMENTED_EVENT_TYPES
        .iter()
        .filter(|t| t.starts_with("cf.workflows."))
        .map(|t| t.to_string())
        .collect();
    expected.sort();
    assert_eq!(instances, expected);
    let report = shutdown
        .shutdown(ShutdownMode::drain(Duration::from_secs(5)))
        .await;
    assert_eq!(report.acked, 6);
    assert_eq!(emu.acked_ids(queue.id()).len(), 6);
}
