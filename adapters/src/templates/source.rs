//! Where the texts of the templates come from: the `templates/` directory of the repository,
//! compiled into the binary (so a binary copied alone anywhere has every locale and channel),
//! and an operator's directory whose files replace the built-in ones of the same path.
//!
//! This module reads files and knows the layout's file names; it knows nothing of Tera.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use rust_embed::RustEmbed;

use super::TemplateLoadError;

/// The repository's `templates/` directory, every file of it (the README too, so that an export
/// documents itself), embedded at compile time. `adapters/build.rs` makes Cargo rebuild when a
/// file is added there, not only when an embedded one changes.
#[derive(RustEmbed)]
#[folder = "../templates"]
struct BuiltIn;

/// Extensions of the files loaded as templates; anything else (a README, `.gitkeep`) is ignored.
const TEMPLATE_EXTENSIONS: [&str; 3] = ["txt", "html", "tera"];

/// Where one template's text was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Compiled into the binary from the repository's `templates/` directory.
    BuiltIn,
    /// Read from this file at start-up.
    File(PathBuf),
}

/// One template: its name (its path under the template root, `/`-separated:
/// `fr/planning.assigned/email.html`), where it came from, and its text.
#[derive(Debug, Clone)]
pub struct TemplateFile {
    /// The template's name, which `extends`, `include` and `import` use.
    pub name: String,
    /// Where the text was read.
    pub origin: Origin,
    /// The template's source.
    pub text: String,
}

impl TemplateFile {
    /// The path to show a person: the file's own path for a file, `templates/{name}` (its path
    /// in the repository the binary was built from) for a built-in template.
    pub fn path(&self) -> PathBuf {
        match &self.origin {
            Origin::BuiltIn => Path::new("templates").join(&self.name),
            Origin::File(path) => path.clone(),
        }
    }
}

/// A set of templates by name: the built-in set, a directory's, or the built-in set with a
/// directory's files in place of the built-in ones of the same name.
#[derive(Debug, Clone, Default)]
pub struct TemplateSet {
    files: BTreeMap<String, TemplateFile>,
    /// What the set was made from, for messages: `built-in templates`, a directory, or both.
    description: String,
}

impl TemplateSet {
    /// Every template compiled into the binary (files of the repository's `templates/` whose
    /// extension is `.txt`, `.html` or `.tera`). A built-in file that is not UTF-8 would be read
    /// with replacement characters, which `clairon templates check` shows.
    pub fn built_in() -> Self {
        let files = BuiltIn::iter()
            .filter(|name| is_template(Path::new(name.as_ref())))
            .filter_map(|name| {
                let bytes = BuiltIn::get(&name)?.data;
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let name = name.into_owned();
                Some((
                    name.clone(),
                    TemplateFile {
                        name,
                        origin: Origin::BuiltIn,
                        text,
                    },
                ))
            })
            .collect();
        Self {
            files,
            description: "built-in templates".to_owned(),
        }
    }

    /// Every template file under `dir` (see the module docs of `templates` for the layout);
    /// hidden files and files of other extensions are left out.
    ///
    /// # Errors
    /// [`TemplateLoadError::Io`] naming the directory or file that cannot be read;
    /// [`TemplateLoadError::Unexpected`] for a path that is not UTF-8.
    pub fn from_dir(dir: &Path) -> Result<Self, TemplateLoadError> {
        let mut found = Vec::new();
        collect_files(dir, dir, &mut found)?;
        let mut files = BTreeMap::new();
        for (name, path) in found {
            let text = fs::read_to_string(&path).map_err(|source| TemplateLoadError::Io {
                path: path.clone(),
                source,
            })?;
            files.insert(
                name.clone(),
                TemplateFile {
                    name,
                    origin: Origin::File(path),
                    text,
                },
            );
        }
        Ok(Self {
            files,
            description: dir.display().to_string(),
        })
    }

    /// The built-in set where every template file of `dir` replaces the built-in one of the
    /// same path; files of `dir` the built-in set lacks (a family for an event type of your
    /// own) are added. `dir` may hold any subset of the templates.
    ///
    /// # Errors
    /// As [`TemplateSet::from_dir`]: `dir` missing or unreadable.
    pub fn built_in_overridden_by(dir: &Path) -> Result<Self, TemplateLoadError> {
        let overrides = Self::from_dir(dir)?;
        let mut set = Self::built_in();
        set.files.extend(overrides.files);
        set.description = format!("built-in templates overridden by {}", dir.display());
        Ok(set)
    }

    /// The templates, by name.
    pub fn files(&self) -> impl Iterator<Item = &TemplateFile> {
        self.files.values()
    }

    /// The template named `name` (`fr/custom/email.html`), if the set has it.
    pub fn get(&self, name: &str) -> Option<&TemplateFile> {
        self.files.get(name)
    }

    /// How many templates the set has.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether the set has no template.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// What the set was made from, for messages.
    pub fn description(&self) -> &str {
        &self.description
    }
}

impl fmt::Display for TemplateSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.description)
    }
}

/// Every file compiled in from `templates/`, templates and documentation alike, as
/// `(path under templates/, bytes)`, sorted by path: what `clairon templates export` writes.
pub fn built_in_files() -> Vec<(String, Cow<'static, [u8]>)> {
    let mut files: Vec<_> = BuiltIn::iter()
        .filter_map(|name| {
            let data = BuiltIn::get(&name)?.data;
            Some((name.into_owned(), data))
        })
        .collect();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files
}

fn is_template(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| TEMPLATE_EXTENSIONS.contains(&e))
}

/// Collects `(template name, path)` of every template file under `dir`; names are paths
/// relative to `root` with `/` separators (`fr/planning.assigned/email.html`).
fn collect_files(
    root: &Path,
    dir: &Path,
    files: &mut Vec<(String, PathBuf)>,
) -> Result<(), TemplateLoadError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TemplateLoadError::Io { path, source }
    };
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if file_name.starts_with('.') {
            continue;
        }
        if fs::metadata(&path).map_err(io(&path))?.is_dir() {
            collect_files(root, &path, files)?;
            continue;
        }
        if !is_template(&path) {
            continue;
        }
        let relative = path.strip_prefix(root).unwrap_or(&path);
        let mut components = Vec::new();
        for component in relative.components() {
            let Some(text) = component.as_os_str().to_str() else {
                return Err(TemplateLoadError::Unexpected {
                    path: path.clone(),
                    reason: "template paths must be UTF-8".to_owned(),
                });
            };
            components.push(text);
        }
        files.push((components.join("/"), path));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_built_in_template_is_shown_with_its_path_in_the_repository() {
        let file = TemplateFile {
            name: "fr/custom/email.html".to_owned(),
            origin: Origin::BuiltIn,
            text: String::new(),
        };

        assert_eq!(
            file.path(),
            Path::new("templates/fr/custom/email.html"),
            "the repository path of a built-in template"
        );
    }

    #[test]
    fn the_readme_is_exported_but_not_loaded_as_a_template() {
        let exported: Vec<String> = built_in_files().into_iter().map(|(n, _)| n).collect();
        let loaded = TemplateSet::built_in();

        assert!(
            exported.iter().any(|n| n == "README.md"),
            "the export documents the layout: {exported:?}"
        );
        assert!(
            loaded.get("README.md").is_none(),
            "the README is not a template"
        );
    }
}
