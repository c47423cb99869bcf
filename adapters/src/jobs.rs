//! The scheduled jobs' outside world: [`ReqwestHttpJobClient`] calls a `CLAIRON_JOBS_FILE`
//! job's endpoint. (`job.failed` alerts are domain events: `clairon_application::alerts`.)

use async_trait::async_trait;
use clairon_application::ports::{HttpJobClient, HttpJobOutcome, HttpJobRequest};

/// The most of a job's answer body read, in bytes: what is kept as stats or error details.
pub const MAX_JOB_BODY_BYTES: usize = 1 << 20;

/// [`HttpJobClient`] on reqwest: one pooled client, the request's own timeout per call.
#[derive(Debug, Clone)]
pub struct ReqwestHttpJobClient {
    client: reqwest::Client,
}

impl Default for ReqwestHttpJobClient {
    fn default() -> Self {
        Self::new()
    }
}

impl ReqwestHttpJobClient {
    /// A client that follows no redirect (a job's URL is the one configured).
    pub fn new() -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!(
                "clairon/",
                env!("CARGO_PKG_VERSION"),
                " (job scheduler)"
            ))
            .build()
            .unwrap_or_default();
        Self { client }
    }
}

#[async_trait]
impl HttpJobClient for ReqwestHttpJobClient {
    async fn call(&self, request: &HttpJobRequest) -> HttpJobOutcome {
        let method = match reqwest::Method::from_bytes(request.method.as_bytes()) {
            Ok(m) => m,
            Err(_) => return HttpJobOutcome::Failed(format!("bad method {:?}", request.method)),
        };
        let call = async {
            let mut response = self
                .client
                .request(method, &request.url)
                .header(reqwest::header::ACCEPT, "application/json")
                .send()
                .await?;
            let status = response.status().as_u16();
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await? {
                let room = MAX_JOB_BODY_BYTES.saturating_sub(body.len());
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if room <= chunk.len() {
                    break;
                }
            }
            Ok::<_, reqwest::Error>((status, String::from_utf8_lossy(&body).into_owned()))
        };
        match tokio::time::timeout(request.timeout, call).await {
            Ok(Ok((status, body))) => HttpJobOutcome::Answered { status, body },
            Ok(Err(e)) => HttpJobOutcome::Failed(format!(
                "{} {}: {}",
                request.method,
                request.url,
                error_chain(&e)
            )),
            Err(_) => HttpJobOutcome::Failed(format!(
                "{} {}: no answer within {} s",
                request.method,
                request.url,
                request.timeout.as_secs_f64()
            )),
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
