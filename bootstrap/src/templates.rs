//! `clairon templates export|check`: the built-in templates written out for editing, and every
//! template (the built-in set, a directory's files in place of the built-in ones) rendered
//! against the sample contexts, as the server does at start-up.

use std::fs;
use std::path::Path;

use anyhow::Context as _;
use clairon_adapters::templates::{built_in_files, check_set, TemplateProblem, TemplateSet};
use clairon_domain::Locale;

/// Writes every file compiled in from `templates/` (the templates and their README) into `dir`,
/// created with its parents, keeping the layout; returns how many files were written.
///
/// # Errors
/// When a file of that name already exists in `dir` and `overwrite` is false (then nothing is
/// written: an export never half-replaces edited templates), or on an I/O error, naming the path.
pub fn export(dir: &Path, overwrite: bool) -> anyhow::Result<usize> {
    let files = built_in_files();
    if !overwrite {
        let existing: Vec<String> = files
            .iter()
            .map(|(name, _)| dir.join(name))
            .filter(|path| path.exists())
            .map(|path| path.display().to_string())
            .collect();
        if !existing.is_empty() {
            anyhow::bail!(
                "{} already exist{} (first: {}); nothing written. Pass --force to overwrite",
                existing.len(),
                if existing.len() == 1 { "s" } else { "" },
                existing[0]
            );
        }
    }
    for (name, bytes) in &files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(files.len())
}

/// The set the server would load (the built-in templates, with `overrides`' files in their
/// place when given) and its problems: empty when every template loads and renders against the
/// sample contexts in every locale, on every channel.
///
/// # Errors
/// When `overrides` cannot be read.
pub fn check(
    overrides: Option<&Path>,
    default_locale: Locale,
) -> anyhow::Result<(TemplateSet, Vec<TemplateProblem>)> {
    let set = match overrides {
        Some(dir) => TemplateSet::built_in_overridden_by(dir)?,
        None => TemplateSet::built_in(),
    };
    let problems = check_set(&set, default_locale);
    Ok((set, problems))
}
