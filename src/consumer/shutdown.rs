//! [`ShutdownHandle`]: stops a consumer from anywhere.

use super::config::ShutdownMode;
use super::engine::Engine;
use super::report::{ShutdownReport, Stats};
use std::sync::Arc;

/// Stops a consumer; cheap to clone, usable from any task.
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    pub(crate) engine: Arc<Engine>,
}

impl ShutdownHandle {
    /// Shuts down and waits until it is done. Calling it again (from anywhere) waits for
    /// the same shutdown and returns the same report.
    pub async fn shutdown(&self, mode: ShutdownMode) -> ShutdownReport {
        self.engine.shutdown(mode).await
    }

    /// Sends every pending settlement now and waits for the server's answers.
    pub async fn flush(&self) {
        self.engine.flush().await;
    }

    /// The counters now.
    pub fn stats(&self) -> Stats {
        self.engine.stats()
    }
}
