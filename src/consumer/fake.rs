//! Tests: an in-memory queue behind the [`Backend`] seam, scriptable per request, so
//! the consumer's loops run under tokio's paused clock without sockets.

use super::backend::Backend;
use crate::error::{ApiError, Error, ErrorCode, ErrorDetail, RequestLabel, Result};
use crate::models::{
    AckRequest, AckResult, ExtendRequest, ExtendResult, PullResult, PulledMessage,
};
use futures::future::BoxFuture;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// What the fake does with one request.
#[derive(Debug)]
pub(crate) enum Step {
    /// Answers as a queue would.
    Normal,
    /// Fails with this error (nothing applied).
    Fail(Error),
    /// Panics inside the request future.
    Panic,
    /// Never answers.
    Hang,
    /// Answers normally after this long.
    Delay(Duration),
}

/// Makes a step for each request past the scripted ones.
type StepFn = Arc<dyn Fn() -> Step + Send + Sync>;

#[derive(Default)]
struct State {
    available: VecDeque<(String, String)>,
    next_lease: u64,
    /// Lease id -> (message id, body).
    leased: HashMap<String, (String, String)>,
    /// Deliveries so far, by message id.
    attempts: HashMap<String, u32>,
    acked: Vec<String>,
    retried: Vec<(String, Option<Duration>)>,
    ack_requests: u64,
    pull_steps: VecDeque<Step>,
    /// Used once the scripted steps run out.
    pull_default: Option<StepFn>,
    ack_steps: VecDeque<Step>,
    ack_default: Option<StepFn>,
    extend_steps: VecDeque<Step>,
    extend_default: Option<StepFn>,
    /// Extension requests received: the lease ids of each.
    extends: Vec<Vec<String>>,
    /// Answer extensions without naming new lease ids.
    extend_without_ids: bool,
    /// Extra messages returned beyond what each pull asks for.
    over_deliver: usize,
    /// Raw entries appended to the next pull's `rejected` list.
    rejected: Vec<crate::models::RejectedMessage>,
}

/// The fake queue; clones share it.
#[derive(Clone, Default)]
pub(crate) struct Fake(Arc<Mutex<State>>);

impl std::fmt::Debug for Fake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fake")
    }
}

impl Fake {
    fn state(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn with_messages(n: usize) -> Self {
        let fake = Fake::default();
        fake.publish(n);
        fake
    }

    pub(crate) fn publish(&self, n: usize) {
        let mut s = self.state();
        let start = s.available.len() + s.leased.len() + s.acked.len();
        for i in start..start + n {
            s.available
                .push_back((format!("m{i}"), format!("body {i}")));
        }
    }

    pub(crate) fn script_acks(&self, steps: impl IntoIterator<Item = Step>) {
        self.state().ack_steps.extend(steps);
    }

    /// Every ack request after the scripted ones takes this step.
    pub(crate) fn acks_always(&self, step: impl Fn() -> Step + Send + Sync + 'static) {
        self.state().ack_default = Some(Arc::new(step));
    }

    /// Every pull after the scripted ones takes this step.
    pub(crate) fn pulls_always(&self, step: impl Fn() -> Step + Send + Sync + 'static) {
        self.state().pull_default = Some(Arc::new(step));
    }

    pub(crate) fn script_extends(&self, steps: impl IntoIterator<Item = Step>) {
        self.state().extend_steps.extend(steps);
    }

    /// Every extension request after the scripted ones takes this step.
    pub(crate) fn extends_always(&self, step: impl Fn() -> Step + Send + Sync + 'static) {
        self.state().extend_default = Some(Arc::new(step));
    }

    /// Answers extensions with a bare count, no new lease ids.
    pub(crate) fn extend_without_ids(&self) {
        self.state().extend_without_ids = true;
    }

    /// The lease ids of each extension request so far.
    pub(crate) fn extends(&self) -> Vec<Vec<String>> {
        self.state().extends.clone()
    }

    pub(crate) fn over_deliver(&self, extra: usize) {
        self.state().over_deliver = extra;
    }

    pub(crate) fn reject_next(&self, r: crate::models::RejectedMessage) {
        self.state().rejected.push(r);
    }

    pub(crate) fn acked(&self) -> Vec<String> {
        self.state().acked.clone()
    }

    pub(crate) fn retried(&self) -> Vec<(String, Option<Duration>)> {
        self.state().retried.clone()
    }

    pub(crate) fn ack_requests(&self) -> u64 {
        self.state().ack_requests
    }

    fn pull_now(&self, batch_size: u32) -> PullResult {
        let mut s = self.state();
        let want = batch_size as usize + s.over_deliver;
        let mut result = PullResult::default();
        while result.messages.len() < want {
            let Some((id, body)) = s.available.pop_front() else {
                break;
            };
            s.next_lease += 1;
            let lease_id = format!("lease-{}", s.next_lease);
            s.leased
                .insert(lease_id.clone(), (id.clone(), body.clone()));
            let attempts = {
                let n = s.attempts.entry(id.clone()).or_insert(0);
                *n += 1;
                *n
            };
            let metadata = crate::models::MessageMetadata::new(crate::models::ContentType::Text);
            result.messages.push(PulledMessage {
                id,
                lease_id,
                attempts,
                body,
                metadata,
                timestamp_ms: 1,
            });
        }
        result.rejected = std::mem::take(&mut s.rejected);
        result
    }

    fn ack_now(&self, request: &AckRequest) -> AckResult {
        let mut s = self.state();
        for a in &request.acks {
            s.leased.remove(&a.lease_id);
            s.acked.push(a.lease_id.clone());
        }
        for r in &request.retries {
            if let Some(message) = s.leased.remove(&r.lease_id) {
                s.available.push_back(message);
            }
            s.retried.push((r.lease_id.clone(), r.delay));
        }
        AckResult {
            ack_count: Some(request.acks.len() as u64),
            retry_count: Some(request.retries.len() as u64),
            ..AckResult::default()
        }
    }
}

impl Fake {
    fn extend_now(&self, request: &ExtendRequest) -> ExtendResult {
        let mut s = self.state();
        let mut entries = Vec::new();
        let mut warnings = serde_json::Map::new();
        for e in &request.extend {
            match s.leased.remove(&e.lease_id) {
                Some(message) => {
                    s.next_lease += 1;
                    let new = format!("lease-{}", s.next_lease);
                    entries.push(serde_json::json!({"id": message.0, "lease_id": new}));
                    s.leased.insert(new, message);
                }
                None => {
                    warnings.insert(e.lease_id.clone(), "unknown lease id".into());
                }
            }
        }
        let count = entries.len();
        let raw = if s.extend_without_ids {
            serde_json::json!({ "extendCount": count })
        } else {
            serde_json::json!({ "messages": entries, "extendCount": count, "warnings": warnings })
        };
        ExtendResult::read(raw)
    }
}

async fn play<T>(step: Step, answer: impl FnOnce() -> T) -> Result<T> {
    match step {
        Step::Normal => Ok(answer()),
        Step::Fail(err) => Err(err),
        Step::Panic => panic!("the fake server panicked"),
        Step::Hang => std::future::pending().await,
        Step::Delay(d) => {
            tokio::time::sleep(d).await;
            Ok(answer())
        }
    }
}

impl Backend for Fake {
    fn pull(&self, batch_size: u32, _: Duration) -> BoxFuture<'static, Result<PullResult>> {
        let step = {
            let mut s = self.state();
            let default = s.pull_default.clone();
            s.pull_steps
                .pop_front()
                .or_else(|| default.map(|f| f()))
                .unwrap_or(Step::Normal)
        };
        let fake = self.clone();
        Box::pin(async move { play(step, || fake.pull_now(batch_size)).await })
    }

    fn ack(&self, request: AckRequest) -> BoxFuture<'static, Result<AckResult>> {
        let step = {
            let mut s = self.state();
            s.ack_requests += 1;
            let default = s.ack_default.clone();
            s.ack_steps
                .pop_front()
                .or_else(|| default.map(|f| f()))
                .unwrap_or(Step::Normal)
        };
        let fake = self.clone();
        Box::pin(async move { play(step, || fake.ack_now(&request)).await })
    }

    fn extend(&self, request: ExtendRequest) -> BoxFuture<'static, Result<ExtendResult>> {
        let step = {
            let mut s = self.state();
            s.extends
                .push(request.extend.iter().map(|e| e.lease_id.clone()).collect());
            let default = s.extend_default.clone();
            s.extend_steps
                .pop_front()
                .or_else(|| default.map(|f| f()))
                .unwrap_or(Step::Normal)
        };
        let fake = self.clone();
        Box::pin(async move { play(step, || fake.extend_now(&request)).await })
    }
}

/// An API error as the transport would return it.
pub(crate) fn api_error(status: u16, code: u32, retry_after: Option<Duration>) -> Error {
    Error::Api(Box::new(ApiError {
        status,
        errors: vec![ErrorDetail::new(ErrorCode::from_u32(code), "scripted")],
        messages: Vec::new(),
        ray_id: None,
        retry_after,
        raw_body: None,
        request: RequestLabel {
            method: reqwest::Method::POST,
            path: "/fake",
            ids: Vec::new(),
        },
        attempts: 1,
    }))
}
