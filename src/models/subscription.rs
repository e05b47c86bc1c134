//! Handwritten additions to the event-subscription models: constructors for the
//! sources that name a resource, and the destination queue.

use super::{
    EventDestination, EventSource, EventSubscription, QueueDestination, WorkersAiModelSource,
    WorkersBuildsWorkerSource, WorkersScriptSource, WorkflowsWorkflowSource,
};

impl EventSource {
    /// Batch events of one Workers AI model (`workersAi.model`).
    pub fn workers_ai_model(model_name: impl Into<String>) -> Self {
        EventSource::WorkersAiModel(WorkersAiModelSource {
            model_name: Some(model_name.into()),
        })
    }

    /// Build events of one Worker (`workersBuilds.worker`).
    pub fn workers_builds_worker(worker_name: impl Into<String>) -> Self {
        EventSource::WorkersBuildsWorker(WorkersBuildsWorkerSource {
            worker_name: Some(worker_name.into()),
        })
    }

    /// Instance events of one Workflow (`workflows.workflow`).
    pub fn workflow(workflow_name: impl Into<String>) -> Self {
        EventSource::WorkflowsWorkflow(WorkflowsWorkflowSource {
            workflow_name: Some(workflow_name.into()),
        })
    }

    /// Events of one Worker script, by its tag (`workers.script`).
    pub fn workers_script(script_tag: impl Into<String>) -> Self {
        EventSource::WorkersScript(WorkersScriptSource {
            script_tag: Some(script_tag.into()),
        })
    }
}

impl EventDestination {
    /// The queue with this id.
    pub fn queue(queue_id: impl Into<String>) -> Self {
        EventDestination::Queue(QueueDestination {
            queue_id: queue_id.into(),
        })
    }

    /// The receiving queue's id, for a queue destination.
    pub fn queue_id(&self) -> Option<&str> {
        match self {
            EventDestination::Queue(q) => Some(&q.queue_id),
            EventDestination::Unknown(raw) => raw.get("queue_id").and_then(|v| v.as_str()),
        }
    }
}

impl EventSubscription {
    /// The id of the queue that receives the events.
    pub fn destination_queue_id(&self) -> Option<&str> {
        self.destination.queue_id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn constructed_sources_serialise_as_documented() {
        assert_eq!(
            serde_json::to_value(EventSource::workflow("checkout")).unwrap(),
            json!({"type": "workflows.workflow", "workflow_name": "checkout"})
        );
        assert_eq!(
            serde_json::to_value(EventSource::workers_ai_model("@cf/m")).unwrap(),
            json!({"type": "workersAi.model", "model_name": "@cf/m"})
        );
        assert_eq!(
            serde_json::to_value(EventSource::R2).unwrap(),
            json!({"type": "r2"})
        );
        assert_eq!(
            serde_json::to_value(EventDestination::queue("q1")).unwrap(),
            json!({"type": "queues.queue", "queue_id": "q1"})
        );
    }
}
