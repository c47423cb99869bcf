//! `CLAIRON_JOBS_FILE`: scheduled HTTP jobs in TOML (issue 13, "Scheduled jobs and chaining").
//!
//! ```toml
//! [[job]]
//! name = "sync-gazelle"
//! schedule = "0 1 * * *"          # cron, 5 fields
//! timezone = "America/Montreal"   # IANA; UTC by default
//! task_type = "sync"              # sync, report, chain, backup, other (default)
//! request = { method = "POST", url = "http://127.0.0.1:9000/sync", timeout_s = 600 }
//!
//! [[job]]
//! name = "timeline-report"
//! after = "sync-gazelle"           # runs when that job succeeds, skipped when it fails
//! request = { method = "POST", url = "http://127.0.0.1:9000/report", timeout_s = 300 }
//! ```
//!
//! Every problem is one line naming the file, the job and the field; the binary exits 2 on it
//! before it opens the database.

use std::path::Path;
use std::time::Duration;

use clairon_application::ports::{HttpJobRequest, Job, TaskType};
use clairon_application::scheduler::{JobCatalog, JobDefinition, JobTiming, JobWork};
use clairon_domain::jobs::{CronSchedule, JobName};
use clairon_domain::TimeZone;

/// An HTTP job's timeout when `timeout_s` is not given, in seconds.
pub const DEFAULT_TIMEOUT_SECS: u64 = 60;
/// The longest `timeout_s` accepted: a day.
pub const MAX_TIMEOUT_SECS: u64 = 24 * 3600;

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];
const JOB_KEYS: [&str; 6] = [
    "name",
    "schedule",
    "timezone",
    "after",
    "task_type",
    "request",
];
const REQUEST_KEYS: [&str; 3] = ["method", "url", "timeout_s"];

/// The built-in jobs on `intervals`, then the jobs of `file` (when given), checked together.
///
/// # Errors
/// One line, `CLAIRON_JOBS_FILE <path>: …`, naming the job and the field: the file cannot be
/// read or is not TOML, a field is missing, unknown or invalid, two jobs share a name (a
/// built-in one's included), or `after` names an unknown job or makes a cycle.
pub fn catalog(file: Option<&Path>, intervals: &[(Job, Duration)]) -> anyhow::Result<JobCatalog> {
    let mut jobs = JobCatalog::builtin(intervals);
    if let Some(path) = file {
        let fail = |what: String| anyhow::anyhow!("CLAIRON_JOBS_FILE {}: {what}", path.display());
        let text =
            std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
        jobs.extend(parse(&text).map_err(fail)?);
        return JobCatalog::new(jobs).map_err(|e| fail(e.to_string()));
    }
    JobCatalog::new(jobs).map_err(|e| anyhow::anyhow!("built-in jobs: {e}"))
}

/// The jobs of a jobs file's text.
///
/// # Errors
/// The first problem, naming the job (`job "sync"` or `job #2` before its name is known) and
/// the field.
pub fn parse(text: &str) -> Result<Vec<JobDefinition>, String> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| format!("not TOML: {}", one_line(&e.to_string())))?;
    for key in table.keys() {
        if key != "job" {
            return Err(format!("{key}: unknown; jobs are [[job]] tables"));
        }
    }
    let Some(entries) = table.get("job") else {
        return Ok(Vec::new());
    };
    let entries = entries
        .as_array()
        .ok_or_else(|| "job: must be [[job]] tables".to_owned())?;
    entries
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let job = entry
                .as_table()
                .ok_or_else(|| format!("job #{}: must be a table", i + 1))?;
            definition(i, job)
        })
        .collect()
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn text<'a>(table: &'a toml::Table, key: &str, at: &str) -> Result<Option<&'a str>, String> {
    match table.get(key) {
        None => Ok(None),
        Some(toml::Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("{at}: {key}: must be a string")),
    }
}

fn definition(index: usize, job: &toml::Table) -> Result<JobDefinition, String> {
    let unnamed = format!("job #{}", index + 1);
    let raw_name =
        text(job, "name", &unnamed)?.ok_or_else(|| format!("{unnamed}: name: missing"))?;
    let name = JobName::parse(raw_name).map_err(|e| format!("{unnamed}: name: {}", e.message))?;
    let at = format!("job {:?}", name.as_str());
    for key in job.keys() {
        if !JOB_KEYS.contains(&key.as_str()) {
            return Err(format!(
                "{at}: {key}: unknown field (known: {})",
                JOB_KEYS.join(", ")
            ));
        }
    }
    let schedule = text(job, "schedule", &at)?;
    let after = text(job, "after", &at)?;
    let zone = match text(job, "timezone", &at)? {
        None => TimeZone::parse("UTC").map_err(|e| e.message)?,
        Some(raw) => {
            if schedule.is_none() {
                return Err(format!(
                    "{at}: timezone: only a job with a schedule has one"
                ));
            }
            TimeZone::parse(raw).map_err(|e| format!("{at}: timezone: {}", e.message))?
        }
    };
    let timing = match (schedule, after) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "{at}: after: a chained job runs after its parent and has no schedule of its own"
            ))
        }
        (None, None) => {
            return Err(format!(
                "{at}: schedule: missing (a cron schedule, or `after` a job)"
            ))
        }
        (Some(raw), None) => JobTiming::Cron(Box::new(
            CronSchedule::parse(raw, zone).map_err(|e| format!("{at}: schedule: {}", e.message))?,
        )),
        (None, Some(raw)) => JobTiming::After(
            JobName::parse(raw).map_err(|e| format!("{at}: after: {}", e.message))?,
        ),
    };
    let task_type = match text(job, "task_type", &at)? {
        None => TaskType::Other,
        Some(raw) => TaskType::parse(raw).ok_or_else(|| {
            format!("{at}: task_type: must be sync, report, chain, backup or other")
        })?,
    };
    let request = match job.get("request") {
        None => return Err(format!("{at}: request: missing")),
        Some(toml::Value::Table(request)) => http_request(request, &at)?,
        Some(_) => {
            return Err(format!(
                "{at}: request: must be a table {{method, url, timeout_s}}"
            ))
        }
    };
    Ok(JobDefinition {
        name,
        work: JobWork::Http(request),
        timing,
        task_type,
    })
}

fn http_request(request: &toml::Table, at: &str) -> Result<HttpJobRequest, String> {
    for key in request.keys() {
        if !REQUEST_KEYS.contains(&key.as_str()) {
            return Err(format!(
                "{at}: request.{key}: unknown field (known: {})",
                REQUEST_KEYS.join(", ")
            ));
        }
    }
    let request_at = format!("{at}: request");
    let method = text(request, "method", &request_at)?
        .unwrap_or("POST")
        .to_ascii_uppercase();
    if !METHODS.contains(&method.as_str()) {
        return Err(format!(
            "{at}: request.method: must be one of {}",
            METHODS.join(", ")
        ));
    }
    let url =
        text(request, "url", &request_at)?.ok_or_else(|| format!("{at}: request.url: missing"))?;
    let parsed = url::Url::parse(url).map_err(|e| format!("{at}: request.url: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "{at}: request.url: must be an http:// or https:// URL"
        ));
    }
    let timeout = match request.get("timeout_s") {
        None => DEFAULT_TIMEOUT_SECS,
        Some(toml::Value::Integer(n)) if (1..=MAX_TIMEOUT_SECS as i64).contains(n) => *n as u64,
        Some(_) => {
            return Err(format!(
                "{at}: request.timeout_s: must be an integer from 1 to {MAX_TIMEOUT_SECS}"
            ))
        }
    };
    Ok(HttpJobRequest {
        method,
        url: url.to_owned(),
        timeout: Duration::from_secs(timeout),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const ISSUE_EXAMPLE: &str = r#"
[[job]]
name = "sync-gazelle"
schedule = "0 1 * * *"          # cron, 5 fields
timezone = "America/Montreal"
request = { method = "POST", url = "http://127.0.0.1:9000/sync", timeout_s = 600 }

[[job]]
name = "timeline-report"
after = "sync-gazelle"           # runs when that job succeeds, never when it fails
request = { method = "POST", url = "http://127.0.0.1:9000/report", timeout_s = 300 }
"#;

    #[test]
    fn the_issues_example_is_two_jobs_the_second_chained_after_the_first() {
        let jobs = parse(ISSUE_EXAMPLE).unwrap();
        assert_eq!(jobs.len(), 2);
        assert!(
            matches!(&jobs[0].timing, JobTiming::Cron(c) if c.zone().name() == "America/Montreal")
        );
        assert!(matches!(&jobs[1].timing, JobTiming::After(p) if p.as_str() == "sync-gazelle"));
        let JobWork::Http(request) = &jobs[1].work else {
            panic!("an HTTP job")
        };
        assert_eq!(request.timeout, Duration::from_secs(300));
    }

    #[rstest]
    #[case::bad_cron(
        "[[job]]\nname = \"a\"\nschedule = \"0 1 * *\"\nrequest = { url = \"http://x\" }",
        "job \"a\": schedule:"
    )]
    #[case::bad_zone("[[job]]\nname = \"a\"\nschedule = \"0 1 * * *\"\ntimezone = \"Mars/Olympus\"\nrequest = { url = \"http://x\" }", "job \"a\": timezone:")]
    #[case::no_url(
        "[[job]]\nname = \"a\"\nschedule = \"0 1 * * *\"\nrequest = { method = \"POST\" }",
        "job \"a\": request.url: missing"
    )]
    #[case::bad_method("[[job]]\nname = \"a\"\nschedule = \"0 1 * * *\"\nrequest = { method = \"FETCH\", url = \"http://x\" }", "job \"a\": request.method:")]
    #[case::typo(
        "[[job]]\nname = \"a\"\nschedul = \"0 1 * * *\"\nrequest = { url = \"http://x\" }",
        "job \"a\": schedul: unknown field"
    )]
    #[case::no_name(
        "[[job]]\nschedule = \"0 1 * * *\"\nrequest = { url = \"http://x\" }",
        "job #1: name: missing"
    )]
    #[case::zero_timeout("[[job]]\nname = \"a\"\nschedule = \"0 1 * * *\"\nrequest = { url = \"http://x\", timeout_s = 0 }", "job \"a\": request.timeout_s:")]
    #[case::both("[[job]]\nname = \"a\"\nschedule = \"0 1 * * *\"\nafter = \"b\"\nrequest = { url = \"http://x\" }", "job \"a\": after:")]
    #[case::not_toml("[[job]\nname = ", "not TOML")]
    fn a_bad_job_is_refused_naming_the_job_and_the_field(
        #[case] text: &str,
        #[case] expected: &str,
    ) {
        let err = parse(text).unwrap_err();
        assert!(err.starts_with(expected), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }

    #[test]
    fn a_chain_to_an_unknown_job_or_a_cycle_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.toml");
        std::fs::write(
            &path,
            "[[job]]\nname = \"report\"\nafter = \"sync\"\nrequest = { url = \"http://x\" }\n",
        )
        .unwrap();
        let err = catalog(Some(&path), &[]).unwrap_err().to_string();
        assert!(err.starts_with("CLAIRON_JOBS_FILE "), "{err}");
        assert!(err.contains("jobs.toml"), "{err}");
        assert!(
            err.contains("job \"report\": after = \"sync\" names no job"),
            "{err}"
        );

        std::fs::write(
            &path,
            "[[job]]\nname = \"a\"\nafter = \"b\"\nrequest = { url = \"http://x\" }\n[[job]]\nname = \"b\"\nafter = \"a\"\nrequest = { url = \"http://x\" }\n",
        )
        .unwrap();
        let err = catalog(Some(&path), &[]).unwrap_err().to_string();
        assert!(err.contains("cycle"), "{err}");
    }

    #[test]
    fn a_file_job_cannot_take_a_built_in_jobs_name() {
        let jobs = parse("[[job]]\nname = \"retention\"\nschedule = \"0 1 * * *\"\nrequest = { url = \"http://x\" }").unwrap();
        let mut all = JobCatalog::builtin(&[]);
        all.extend(jobs);
        assert!(JobCatalog::new(all).is_err());
    }
}
