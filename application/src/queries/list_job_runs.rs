//! `ListJobRuns`: the record of background job runs, newest first.

use std::sync::Arc;

use crate::ports::{JobRunPage, JobRunQuery, JobRunRepository, RepositoryError};

/// Handles [`JobRunQuery`] (limits already checked by the caller: 1–100).
pub struct ListJobRunsHandler {
    runs: Arc<dyn JobRunRepository>,
}

impl ListJobRunsHandler {
    /// Builds the handler on its port.
    pub fn new(runs: Arc<dyn JobRunRepository>) -> Self {
        Self { runs }
    }

    /// One page of runs.
    ///
    /// # Errors
    /// [`RepositoryError`] when the database fails.
    pub async fn execute(&self, query: &JobRunQuery) -> Result<JobRunPage, RepositoryError> {
        self.runs.list(query).await
    }
}
