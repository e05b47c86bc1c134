//! One payload type per documented event type, and [`EventPayload`], which picks the
//! type from the event's `type`.
//!
//! Every field is optional (a missing one reads as `None`), every struct keeps the
//! fields it does not name in `extra`, and counts accept `5` as well as `5.0`. Field
//! names are the wire's camelCase names in snake case.

use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

/// Fields a payload carried that this crate does not name, kept as sent.
pub type Extra = Map<String, Value>;

// ---- Access ---------------------------------------------------------------------------

/// An Access application (`cf.access.application.created` / `.deleted`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AccessApplication {
    /// The application's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The application's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Fields not named above.
    #[serde(flatten)]
    pub extra: Extra,
}

// ---- Artifacts ------------------------------------------------------------------------

/// An Artifacts repository as created or deleted (`cf.artifacts.repo.created` /
/// `.deleted`). The event's [`Source`](super::Source) names it (`namespace`,
/// `repo_name`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ArtifactsRepo {
    /// The repository's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo_id: Option<String>,
    /// Its default branch, such as `main`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_branch: Option<String>,
    /// Its description (`None` also when sent as `null`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether it is read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// Creation time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// Last change (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// Last push (RFC 3339); `None` when never pushed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_push_at: Option<String>,
    /// Fields not named above.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A fork (`cf.artifacts.repo.forked`): the event's source is the repository forked,
/// `namespace` and `repo_name` here name the new one.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ArtifactsRepoForked {
    /// Namespace of the new repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name of the new repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo_name: Option<String>,
    /// Id of the new repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo_id: Option<String>,
    /// Its default branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_branch: Option<String>,
    /// Its description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether it is read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// Creation time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// Last change (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// Last push (RFC 3339), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_push_at: Option<String>,
    /// Fields not named above.
    #[serde(flatten)]
    pub extra: Extra,
}

/// An import from an external Git remote (`cf.artifacts.repo.imported`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ArtifactsRepoImported {
    /// The repository's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo_id: Option<String>,
    /// Its default branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_branch: Option<String>,
    /// Its description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether it is read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// Creation time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// Last change (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// Last push (RFC 3339), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_push_at: Option<String>,
    /// The remote imported from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    /// The branch imported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Fields not named above.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A push to a repository (`cf.artifacts.repo.pushed`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ArtifactsPush {
    /// The ref pushed, such as `refs/heads/main` (`ref` on the wire).
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    /// The commit the ref pointed to before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// The commit it points to now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// The commits pushed (possibly not all of them: see `commits_truncated`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commits: Vec<ArtifactsCommit>,
    /// How many commits the push carried.
    #[serde(
        default,
        with = "crate::codec::opt_flex_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub total_commits_count: Option<u64>,
    /// Whether `commits` lists fewer than were pushed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commits_truncated: Option<bool>,
    /// Fields not named above.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One commit of an [`ArtifactsPush`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ArtifactsCommit {
    /// The commit hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The commit message (possibly shortened: see `message_truncated`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Whether `message` was shortened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_truncated: Option<bool>,
    /// Commit time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// Who wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<GitPerson>,
    /// Who committed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committer: Option<GitPerson>,
    /// Parent commit hashes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<String>,
    /// Fields not named above.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A commit's author or committer.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct GitPerson {
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Email address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Fields not named above.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A payload documented as empty (`cf.artifacts.repo.cloned`, `.fetched`): whatever is
/// sent is kept in `extra`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EmptyPayload {
    /// Any fields sent.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A repository-scoped token was created (`cf.artifacts.repo.token.created`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ArtifactsTokenCreated {
    /// The token's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
    /// What it may do, such as `read`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// When it expires (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Fields not named above.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A repository-scoped token was revoked (`cf.artifacts.repo.token.revoked`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ArtifactsTokenRevoked {
    /// The token's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
    /// Fields not named above.
    #[serde(flatten)]
    pub extra: Extra,
}

// ---- R2 -------------------------------------------------------------------------------

/// A bucket was created (`cf.r2.bucket.created`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct R2BucketCreated {
    /// The bucket's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its jurisdiction (`default` when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jurisdiction: Option<String>,
    /// Its location hint, such as `WNAM`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Its default storage class, such as `Standard`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    /// Fields not named above.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A bucket was deleted (`cf.r2.bucket.deleted`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct R2BucketDeleted {
    /// The bucket's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its jurisdiction (`default` when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jurisdiction: Option<String>,
    /// Fields not named above.
    #[serde(flatten)]
    pub extra: Extra,
}

// ---- Super Slurper --------------------------------------------------------------------

/// A migration job started (`cf.superSlurper.job.started`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct SlurperJobStarted {
    /// The job's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// When the job was created (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// Whether existing objects in the destination are overwritten.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overwrite: Option<bool>,
    /// Prefix the migrated keys get.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    /// Where objects come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SlurperBucket>,
    /// Where they go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<SlurperBucket>,
    /// Fields not named above.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One end of a migration.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct SlurperBucket {
    /// The storage provider, such as `s3` or `r2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// The provider's region (sources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The provider's endpoint (sources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The R2 jurisdiction (an R2 destination).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jurisdiction: Option<String>,
    /// Fields not named above.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A migration job, by id (`cf.superSlurper.job.paused`, `.resumed`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct SlurperJob {
    /// The job's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Fields not named above.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A migration job ended (`cf.superSlurper.job.completed`, `.aborted`), with its counts.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct SlurperJobEnded {
    /// The job's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Objects found in the source.
    #[serde(
        default,
        with = "crate::codec::opt_flex_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub total_objects_count: Option<u64>,
    /// Objects skipped.
    #[serde(
        default,
        with = "crate::codec::opt_flex_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub skipped_objects_count: Option<u64>,
    /// Objects migrated.
    #[serde(
        default,
        with = "crate::codec::opt_flex_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub migrated_objects_count: Option<u64>,
    /// Objects that failed to migrate.
    #[serde(
        default,
        with = "crate::codec::opt_flex_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub failed_objects_count: Option<u64>,
    /// Fields not named above.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One object was migrated (`cf.superSlurper.job.object.migrated`); the event's source
/// names the job (`job_id`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct SlurperObjectMigrated {
    /// The object's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Fields not named above.
    #[serde(flatten)]
    pub extra: Extra,
}

// ---- Vectorize ------------------------------------------------------------------------

/// An index was created (`cf.vectorize.index.created`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct VectorizeIndexCreated {
    /// The index's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Creation time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// Last change (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_at: Option<String>,
    /// Dimensions of its vectors.
    #[serde(
        default,
        with = "crate::codec::opt_flex_u32",
        skip_serializing_if = "Option::is_none"
    )]
    pub dimensions: Option<u32>,
    /// Distance metric, such as `cosine`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// Fields not named above.
    #[serde(flatten)]
    pub extra: Extra,
}

/// An index was deleted (`cf.vectorize.index.deleted`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct VectorizeIndexDeleted {
    /// The index's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Fields not named above.
    #[serde(flatten)]
    pub extra: Extra,
}

// ---- Workers AI -----------------------------------------------------------------------

/// A batch inference request (`cf.workersAi.model.batch.queued`, `.succeeded`); the
/// event's source names the model (`model_name`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AiBatch {
    /// The request's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Fields not named above.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A batch inference request failed (`cf.workersAi.model.batch.failed`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AiBatchFailed {
    /// The request's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// What went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Workers AI's own error code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_code: Option<i64>,
    /// The HTTP status the request ended with.
    #[serde(
        default,
        with = "crate::codec::opt_flex_u32",
        skip_serializing_if = "Option::is_none"
    )]
    pub http_code: Option<u32>,
    /// Fields not named above.
    #[serde(flatten)]
    pub extra: Extra,
}

// ---- Workers Builds -------------------------------------------------------------------

/// A build of a Worker (`cf.workersBuilds.worker.build.started`, `.failed`, `.canceled`,
/// `.succeeded`); the event's source names the Worker (`worker_name`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct WorkersBuild {
    /// The build's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_uuid: Option<String>,
    /// Its state, such as `running`, `failed`, `canceled`, `success`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// How it ended (`None` while it runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_outcome: Option<String>,
    /// When it was created (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// When it began initialising.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initializing_at: Option<String>,
    /// When it began running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_at: Option<String>,
    /// When it stopped (`None` while it runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<String>,
    /// What triggered it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_trigger_metadata: Option<BuildTrigger>,
    /// Fields not named above.
    #[serde(flatten)]
    pub extra: Extra,
}

/// What triggered a [`WorkersBuild`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct BuildTrigger {
    /// The trigger, such as `push_event`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_trigger_source: Option<String>,
    /// The branch built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// The commit built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_hash: Option<String>,
    /// Its message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_message: Option<String>,
    /// Its author.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// The build command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_command: Option<String>,
    /// The deploy command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy_command: Option<String>,
    /// The directory built from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_directory: Option<String>,
    /// The repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo_name: Option<String>,
    /// The account at the Git provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_account_name: Option<String>,
    /// The Git provider, such as `github`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_type: Option<String>,
    /// Fields not named above.
    #[serde(flatten)]
    pub extra: Extra,
}

// ---- Workers KV -----------------------------------------------------------------------

/// A KV namespace (`cf.kv.namespace.created`, `.deleted`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct KvNamespace {
    /// The namespace's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Fields not named above.
    #[serde(flatten)]
    pub extra: Extra,
}

// ---- Workflows ------------------------------------------------------------------------

/// A Workflow instance changed state (`cf.workflows.workflow.instance.*`); the event's
/// source names the Workflow (`workflow_name`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct WorkflowInstance {
    /// The Workflow version the instance runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// The instance's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// Fields not named above.
    #[serde(flatten)]
    pub extra: Extra,
}

// ---- the table ------------------------------------------------------------------------

/// Declares [`EventPayload`] from one line per documented event type, so the variant,
/// its wire `type` and its payload type are written once.
macro_rules! event_payloads {
    ($( $(#[$doc:meta])* $variant:ident($payload:ty) = $wire:literal, )*) => {
        /// The payload of an [`Event`](super::Event), typed by the event's `type`.
        ///
        /// One variant per event type Cloudflare documents; `Unknown` keeps the raw
        /// payload of any other type, and of a documented type whose payload does not
        /// have the documented shape (a field of another JSON type), so that decoding
        /// never fails because of the payload.
        #[derive(Debug, Clone, PartialEq)]
        #[non_exhaustive]
        pub enum EventPayload {
            $( $(#[$doc])* $variant($payload), )*
            /// An event type this crate does not type (or a payload it could not read),
            /// kept as sent.
            Unknown(Value),
        }

        /// Every event type Cloudflare documents (the Queues page "Events & schemas"),
        /// in the order of that page; each has its own [`EventPayload`] variant.
        pub const DOCUMENTED_EVENT_TYPES: &[&str] = &[$($wire),*];

        impl EventPayload {
            /// The event `type` this variant stands for; `None` for `Unknown`.
            pub fn event_type(&self) -> Option<&'static str> {
                match self {
                    $( Self::$variant(_) => Some($wire), )*
                    Self::Unknown(_) => None,
                }
            }

            /// Reads `payload` as the type documented for `event_type`.
            pub(crate) fn decode(event_type: &str, payload: Value) -> Self {
                match event_type {
                    $( $wire => match <$payload>::deserialize(&payload) {
                        Ok(typed) => Self::$variant(typed),
                        Err(_) => Self::Unknown(payload),
                    }, )*
                    _ => Self::Unknown(payload),
                }
            }
        }

        impl Serialize for EventPayload {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                match self {
                    $( Self::$variant(payload) => payload.serialize(serializer), )*
                    Self::Unknown(raw) => raw.serialize(serializer),
                }
            }
        }
    };
}

event_payloads! {
    /// `cf.access.application.created`
    AccessApplicationCreated(AccessApplication) = "cf.access.application.created",
    /// `cf.access.application.deleted`
    AccessApplicationDeleted(AccessApplication) = "cf.access.application.deleted",
    /// `cf.artifacts.repo.created` (source `artifacts`)
    ArtifactsRepoCreated(ArtifactsRepo) = "cf.artifacts.repo.created",
    /// `cf.artifacts.repo.deleted` (source `artifacts`)
    ArtifactsRepoDeleted(ArtifactsRepo) = "cf.artifacts.repo.deleted",
    /// `cf.artifacts.repo.forked` (source `artifacts`)
    ArtifactsRepoForked(ArtifactsRepoForked) = "cf.artifacts.repo.forked",
    /// `cf.artifacts.repo.imported` (source `artifacts`)
    ArtifactsRepoImported(ArtifactsRepoImported) = "cf.artifacts.repo.imported",
    /// `cf.artifacts.repo.pushed` (source `artifacts.repo`)
    ArtifactsRepoPushed(ArtifactsPush) = "cf.artifacts.repo.pushed",
    /// `cf.artifacts.repo.cloned` (source `artifacts.repo`)
    ArtifactsRepoCloned(EmptyPayload) = "cf.artifacts.repo.cloned",
    /// `cf.artifacts.repo.fetched` (source `artifacts.repo`)
    ArtifactsRepoFetched(EmptyPayload) = "cf.artifacts.repo.fetched",
    /// `cf.artifacts.repo.token.created` (source `artifacts.repo`)
    ArtifactsTokenCreated(ArtifactsTokenCreated) = "cf.artifacts.repo.token.created",
    /// `cf.artifacts.repo.token.revoked` (source `artifacts.repo`)
    ArtifactsTokenRevoked(ArtifactsTokenRevoked) = "cf.artifacts.repo.token.revoked",
    /// `cf.r2.bucket.created`
    R2BucketCreated(R2BucketCreated) = "cf.r2.bucket.created",
    /// `cf.r2.bucket.deleted`
    R2BucketDeleted(R2BucketDeleted) = "cf.r2.bucket.deleted",
    /// `cf.superSlurper.job.started`
    SlurperJobStarted(SlurperJobStarted) = "cf.superSlurper.job.started",
    /// `cf.superSlurper.job.paused`
    SlurperJobPaused(SlurperJob) = "cf.superSlurper.job.paused",
    /// `cf.superSlurper.job.resumed`
    SlurperJobResumed(SlurperJob) = "cf.superSlurper.job.resumed",
    /// `cf.superSlurper.job.completed`
    SlurperJobCompleted(SlurperJobEnded) = "cf.superSlurper.job.completed",
    /// `cf.superSlurper.job.aborted`
    SlurperJobAborted(SlurperJobEnded) = "cf.superSlurper.job.aborted",
    /// `cf.superSlurper.job.object.migrated` (source `superSlurper.job`)
    SlurperObjectMigrated(SlurperObjectMigrated) = "cf.superSlurper.job.object.migrated",
    /// `cf.vectorize.index.created`
    VectorizeIndexCreated(VectorizeIndexCreated) = "cf.vectorize.index.created",
    /// `cf.vectorize.index.deleted`
    VectorizeIndexDeleted(VectorizeIndexDeleted) = "cf.vectorize.index.deleted",
    /// `cf.workersAi.model.batch.queued`
    AiBatchQueued(AiBatch) = "cf.workersAi.model.batch.queued",
    /// `cf.workersAi.model.batch.succeeded`
    AiBatchSucceeded(AiBatch) = "cf.workersAi.model.batch.succeeded",
    /// `cf.workersAi.model.batch.failed`
    AiBatchFailed(AiBatchFailed) = "cf.workersAi.model.batch.failed",
    /// `cf.workersBuilds.worker.build.started`
    WorkersBuildStarted(WorkersBuild) = "cf.workersBuilds.worker.build.started",
    /// `cf.workersBuilds.worker.build.failed`
    WorkersBuildFailed(WorkersBuild) = "cf.workersBuilds.worker.build.failed",
    /// `cf.workersBuilds.worker.build.canceled`
    WorkersBuildCanceled(WorkersBuild) = "cf.workersBuilds.worker.build.canceled",
    /// `cf.workersBuilds.worker.build.succeeded`
    WorkersBuildSucceeded(WorkersBuild) = "cf.workersBuilds.worker.build.succeeded",
    /// `cf.kv.namespace.created`
    KvNamespaceCreated(KvNamespace) = "cf.kv.namespace.created",
    /// `cf.kv.namespace.deleted`
    KvNamespaceDeleted(KvNamespace) = "cf.kv.namespace.deleted",
    /// `cf.workflows.workflow.instance.queued`
    WorkflowInstanceQueued(WorkflowInstance) = "cf.workflows.workflow.instance.queued",
    /// `cf.workflows.workflow.instance.started`
    WorkflowInstanceStarted(WorkflowInstance) = "cf.workflows.workflow.instance.started",
    /// `cf.workflows.workflow.instance.paused`
    WorkflowInstancePaused(WorkflowInstance) = "cf.workflows.workflow.instance.paused",
    /// `cf.workflows.workflow.instance.errored`
    WorkflowInstanceErrored(WorkflowInstance) = "cf.workflows.workflow.instance.errored",
    /// `cf.workflows.workflow.instance.terminated`
    WorkflowInstanceTerminated(WorkflowInstance) = "cf.workflows.workflow.instance.terminated",
    /// `cf.workflows.workflow.instance.completed`
    WorkflowInstanceCompleted(WorkflowInstance) = "cf.workflows.workflow.instance.completed",
}

impl Default for EventPayload {
    /// An empty payload of no known type.
    fn default() -> Self {
        EventPayload::Unknown(Value::Object(Map::new()))
    }
}

impl EventPayload {
    /// Whether this payload has a typed variant (is not [`Unknown`](Self::Unknown)).
    pub fn is_typed(&self) -> bool {
        !matches!(self, EventPayload::Unknown(_))
    }
}
