//! Tera implementation of the `TemplateRenderer` port: turns a notification's context into the
//! in-app, email and Telegram texts, from the templates of the `templates/` directory.
//!
//! Layout of the directory, loaded once at start-up:
//!
//! ```text
//! templates/
//!   _layouts/email.html                   locale-neutral frame of every HTML email
//!   {locale}/_layouts/email.{html,txt}    that frame in one language (greeting, button, footer)
//!   {locale}/_macros/planning.tera        building blocks shared by the planning families
//!   {locale}/{event_type}/{part}          one family: the six parts below
//! ```
//!
//! A family is an event type (`planning.assigned`, `custom`, `test`, ...) and has six parts:
//! `in_app.title.txt`, `in_app.body.txt`, `email.subject.txt`, `email.txt`, `email.html` and
//! `telegram.html`. Directories whose name starts with `_` hold shared templates, not families.
//!
//! `.html` templates are HTML-escaped with `html-escape`'s double-quoted-attribute escaper
//! (`&amp; &lt; &gt; &quot;`: safe in text and in `"`-quoted attributes, and exactly the named
//! entities Telegram's HTML parse mode accepts, so URLs in `href`s stay readable); `.txt`
//! templates are not escaped at all. This module knows Tera and the file system, nothing of the channels that send
//! what it renders.

mod sample;
mod telegram;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use clairon_application::ports::{
    EmailContent, InAppContent, TelegramContent, TemplateError, TemplateRenderer,
};
use clairon_domain::{EventType, Locale};
use serde_json::Value;
use tera::{Context, Tera};

/// The parts every family must have, file names inside `{locale}/{event_type}/`.
pub const PARTS: [&str; 6] = [
    IN_APP_TITLE,
    IN_APP_BODY,
    EMAIL_SUBJECT,
    EMAIL_TEXT,
    EMAIL_HTML,
    TELEGRAM_HTML,
];

/// The families Clairon itself emits; [`TeraTemplateRenderer::check_all`] requires each of them
/// in the default locale. `custom` is also the fallback of event types without templates.
pub const BUILT_IN_FAMILIES: [&str; 6] = [
    "planning.assigned",
    "planning.modified",
    "planning.cancelled",
    "planning.reminder",
    EventType::CUSTOM,
    EventType::TEST,
];

const IN_APP_TITLE: &str = "in_app.title.txt";
const IN_APP_BODY: &str = "in_app.body.txt";
const EMAIL_SUBJECT: &str = "email.subject.txt";
const EMAIL_TEXT: &str = "email.txt";
const EMAIL_HTML: &str = "email.html";
const TELEGRAM_HTML: &str = "telegram.html";

/// Extensions of the files loaded as templates; anything else (a README, `.gitkeep`) is ignored.
const TEMPLATE_EXTENSIONS: [&str; 3] = ["txt", "html", "tera"];

/// Why the template directory could not be loaded. Every variant names the offending path.
#[derive(Debug, thiserror::Error)]
pub enum TemplateLoadError {
    /// A directory or file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The directory or file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A template does not parse.
    #[error("template {path} has a syntax error: {reason}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// Tera's message, with its cause chain.
        reason: String,
    },
    /// Templates parse one by one but not together: an `extends`, `include` or `import` names a
    /// template that does not exist, or inheritance loops.
    #[error("templates in {dir} do not fit together: {reason}")]
    Links {
        /// The template directory.
        dir: PathBuf,
        /// Tera's message (it names the template), with its cause chain.
        reason: String,
    },
    /// A file or directory sits where the layout has no place for it: a locale directory that is
    /// not `fr` or `en`, a family directory that is not an event type, an unknown part.
    #[error("unexpected {path}: {reason}")]
    Unexpected {
        /// The file or directory.
        path: PathBuf,
        /// What was expected instead.
        reason: String,
    },
    /// A family lacks parts: in a locale where it exists, or in the default locale, where every
    /// family must exist so that any locale can fall back to it.
    #[error("template family {locale}/{family} lacks {}", .missing.join(", "))]
    IncompleteFamily {
        /// The locale directory.
        locale: Locale,
        /// The event type.
        family: String,
        /// File names of the missing parts.
        missing: Vec<String>,
    },
}

/// Renders notifications with Tera templates loaded once from a directory.
///
/// Lookup of a family for `(event_type, locale)`: `{locale}/{event_type}`, else
/// `{default_locale}/{event_type}`, else `{locale}/custom`, else `{default_locale}/custom`, else
/// [`TemplateError::Missing`].
#[derive(Debug)]
pub struct TeraTemplateRenderer {
    tera: Tera,
    default_locale: Locale,
    /// Complete families of each locale.
    families: HashMap<Locale, BTreeSet<String>>,
}

/// A family in one locale, as lookup found it.
#[derive(Debug, Clone, Copy)]
struct Family<'a> {
    locale: Locale,
    event_type: &'a str,
}

impl Family<'_> {
    fn template(&self, part: &str) -> String {
        format!("{}/{}/{part}", self.locale, self.event_type)
    }
}

impl TeraTemplateRenderer {
    /// Loads every template under `dir` (see the module docs for the layout) and checks that each
    /// family is complete: all six [`PARTS`] in every locale where it exists, and present in
    /// `default_locale`.
    ///
    /// It does not render anything: call [`TeraTemplateRenderer::check_all`] for that.
    ///
    /// # Errors
    /// [`TemplateLoadError`], naming the file: unreadable, a syntax error, a broken
    /// `extends`/`include`/`import`, a file out of place, or an incomplete family.
    pub fn from_dir(dir: &Path, default_locale: Locale) -> Result<Self, TemplateLoadError> {
        let mut files = Vec::new();
        collect_files(dir, dir, &mut files)?;
        files.sort();

        let mut sources = Vec::with_capacity(files.len());
        // Keyed by the locale's name so that errors come out in a stable order.
        let mut parts: BTreeMap<(&str, String), (Locale, BTreeSet<String>)> = BTreeMap::new();
        for (name, path) in files {
            if let Some((locale, family, part)) = classify(&name, &path)? {
                parts
                    .entry((locale.as_str(), family))
                    .or_insert_with(|| (locale, BTreeSet::new()))
                    .1
                    .insert(part);
            }
            let text = fs::read_to_string(&path).map_err(|source| TemplateLoadError::Io {
                path: path.clone(),
                source,
            })?;
            // Parsed alone first so that a syntax error names its file; together (below) Tera
            // only reports the first error by template name.
            tera::Template::new(&name, None, &text).map_err(|e| TemplateLoadError::Syntax {
                path: path.clone(),
                reason: error_chain(&e),
            })?;
            sources.push((name, text));
        }

        let mut tera = Tera::default();
        tera.autoescape_on(vec![".html"]);
        tera.set_escape_fn(escape_html);
        tera.add_raw_templates(sources)
            .map_err(|e| TemplateLoadError::Links {
                dir: dir.to_path_buf(),
                reason: error_chain(&e),
            })?;

        let mut families: HashMap<Locale, BTreeSet<String>> = HashMap::new();
        for ((_, family), (locale, present)) in &parts {
            let locale = *locale;
            let missing = missing_parts(present);
            if !missing.is_empty() {
                return Err(TemplateLoadError::IncompleteFamily {
                    locale,
                    family: family.clone(),
                    missing,
                });
            }
            families.entry(locale).or_default().insert(family.clone());
        }
        for (_, family) in parts.keys() {
            if !parts.contains_key(&(default_locale.as_str(), family.clone())) {
                return Err(TemplateLoadError::IncompleteFamily {
                    locale: default_locale,
                    family: family.clone(),
                    missing: PARTS.iter().map(|p| (*p).to_owned()).collect(),
                });
            }
        }

        Ok(Self {
            tera,
            default_locale,
            families,
        })
    }

    /// The locale used when a recipient's has no template for a family.
    pub fn default_locale(&self) -> Locale {
        self.default_locale
    }

    /// The event types that have templates in `locale`, sorted.
    pub fn families(&self, locale: Locale) -> Vec<&str> {
        self.families
            .get(&locale)
            .map(|f| f.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// Renders every family of every locale on every channel against sample contexts shaped like
    /// the real ones, so that a template error shows at start-up rather than at the first
    /// delivery. Planning families are rendered for each audience, with and without the
    /// contact's phone and email, with and without a call to action; `modified` with a change of
    /// every field. Telegram output is also checked against the tags and entities Telegram's
    /// HTML parse mode accepts.
    ///
    /// # Errors
    /// The first failure: [`TemplateError::Missing`] when one of [`BUILT_IN_FAMILIES`] has no
    /// template in the default locale; [`TemplateError::Render`] naming the template otherwise.
    pub fn check_all(&self) -> Result<(), TemplateError> {
        for family in BUILT_IN_FAMILIES {
            if !self.has(self.default_locale, family) {
                return Err(TemplateError::Missing(format!(
                    "{}/{family}",
                    self.default_locale
                )));
            }
        }
        for locale in Locale::ALL {
            for event_type in self.families(locale) {
                let family = Family { locale, event_type };
                for sample in sample::contexts(event_type, locale) {
                    let in_app = self.in_app(family, &sample.in_app)?;
                    let dispatch = sample.at_dispatch(&in_app);
                    self.email(family, &dispatch)?;
                    self.telegram(family, &dispatch)?;
                }
            }
        }
        Ok(())
    }

    fn has(&self, locale: Locale, event_type: &str) -> bool {
        self.families
            .get(&locale)
            .is_some_and(|f| f.contains(event_type))
    }

    fn resolve<'a>(
        &self,
        event_type: &'a EventType,
        locale: Locale,
    ) -> Result<Family<'a>, TemplateError> {
        let wanted = event_type.as_str();
        [
            (locale, wanted),
            (self.default_locale, wanted),
            (locale, EventType::CUSTOM),
            (self.default_locale, EventType::CUSTOM),
        ]
        .into_iter()
        .find(|(l, e)| self.has(*l, e))
        .map(|(locale, event_type)| Family { locale, event_type })
        .ok_or_else(|| TemplateError::Missing(format!("{locale}/{wanted}")))
    }

    fn render(
        &self,
        family: Family<'_>,
        part: &str,
        context: &Context,
    ) -> Result<String, TemplateError> {
        let name = family.template(part);
        self.tera
            .render(&name, context)
            .map_err(|e| TemplateError::Render {
                reason: error_chain(&e),
                name,
            })
    }

    fn in_app(&self, family: Family<'_>, context: &Value) -> Result<InAppContent, TemplateError> {
        let context = tera_context(family, IN_APP_TITLE, context)?;
        Ok(InAppContent {
            title: self.one_line(family, IN_APP_TITLE, &context)?,
            body: tidy_text(&self.render(family, IN_APP_BODY, &context)?),
        })
    }

    fn email(&self, family: Family<'_>, context: &Value) -> Result<EmailContent, TemplateError> {
        let context = tera_context(family, EMAIL_SUBJECT, context)?;
        Ok(EmailContent {
            subject: self.one_line(family, EMAIL_SUBJECT, &context)?,
            text: tidy_text(&self.render(family, EMAIL_TEXT, &context)?),
            html: self.render(family, EMAIL_HTML, &context)?.trim().to_owned(),
        })
    }

    fn telegram(
        &self,
        family: Family<'_>,
        context: &Value,
    ) -> Result<TelegramContent, TemplateError> {
        let context = tera_context(family, TELEGRAM_HTML, context)?;
        let html = tidy_text(&self.render(family, TELEGRAM_HTML, &context)?);
        telegram::check(&html).map_err(|reason| TemplateError::Render {
            name: family.template(TELEGRAM_HTML),
            reason: format!("output is not Telegram HTML: {reason}"),
        })?;
        Ok(TelegramContent { html })
    }

    /// Renders a part that must be one line (a title, a subject): whitespace runs, newlines
    /// included, collapse to one space; an empty result is an error.
    fn one_line(
        &self,
        family: Family<'_>,
        part: &str,
        context: &Context,
    ) -> Result<String, TemplateError> {
        let line = one_line(&self.render(family, part, context)?);
        if line.is_empty() {
            return Err(TemplateError::Render {
                name: family.template(part),
                reason: "rendered an empty line".to_owned(),
            });
        }
        Ok(line)
    }
}

impl TemplateRenderer for TeraTemplateRenderer {
    fn render_in_app(
        &self,
        event_type: &EventType,
        locale: Locale,
        context: &Value,
    ) -> Result<InAppContent, TemplateError> {
        self.in_app(self.resolve(event_type, locale)?, context)
    }

    fn render_email(
        &self,
        event_type: &EventType,
        locale: Locale,
        context: &Value,
    ) -> Result<EmailContent, TemplateError> {
        self.email(self.resolve(event_type, locale)?, context)
    }

    fn render_telegram(
        &self,
        event_type: &EventType,
        locale: Locale,
        context: &Value,
    ) -> Result<TelegramContent, TemplateError> {
        self.telegram(self.resolve(event_type, locale)?, context)
    }
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
        let is_template = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| TEMPLATE_EXTENSIONS.contains(&e));
        if !is_template {
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

/// Which family part a template is, if any: `Some((locale, event_type, part))` for
/// `{locale}/{event_type}/{part}`, `None` for shared templates (any path segment starting with
/// `_`).
///
/// # Errors
/// [`TemplateLoadError::Unexpected`] for anything else.
fn classify(
    name: &str,
    path: &Path,
) -> Result<Option<(Locale, String, String)>, TemplateLoadError> {
    let segments: Vec<&str> = name.split('/').collect();
    if segments.iter().any(|s| s.starts_with('_')) {
        return Ok(None);
    }
    let unexpected = |reason: String| TemplateLoadError::Unexpected {
        path: path.to_path_buf(),
        reason,
    };
    let [locale_dir, family, part] = segments[..] else {
        return Err(unexpected(
            "templates go in {locale}/{event_type}/{part}, shared ones under a `_` directory"
                .to_owned(),
        ));
    };
    let locale = Locale::ALL
        .into_iter()
        .find(|l| l.as_str() == locale_dir)
        .ok_or_else(|| {
            unexpected(format!(
                "{locale_dir:?} is not a locale Clairon writes in ({})",
                Locale::ALL.map(Locale::as_str).join(", ")
            ))
        })?;
    EventType::parse(family)
        .map_err(|e| unexpected(format!("{family:?} is not an event type: {e}")))?;
    if !PARTS.contains(&part) {
        return Err(unexpected(format!(
            "{part:?} is not a template part ({})",
            PARTS.join(", ")
        )));
    }
    Ok(Some((locale, family.to_owned(), part.to_owned())))
}

fn missing_parts(present: &BTreeSet<String>) -> Vec<String> {
    PARTS
        .iter()
        .filter(|p| !present.contains(**p))
        .map(|p| (*p).to_owned())
        .collect()
}

fn tera_context(family: Family<'_>, part: &str, context: &Value) -> Result<Context, TemplateError> {
    Context::from_value(context.clone()).map_err(|e| TemplateError::Render {
        name: family.template(part),
        reason: format!("the context must be a JSON object: {}", error_chain(&e)),
    })
}

/// `error` and its causes, outermost first, joined by `: `. Tera keeps the useful part (the
/// missing variable, the line of a syntax error) in `source()`, not in `Display`.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut chain = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push(cause.to_string());
        source = cause.source();
    }
    chain.join(": ")
}

/// Collapses every run of whitespace, newlines included, into one space and trims both ends.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Trims trailing spaces off each line, keeps at most one blank line in a row and drops blank
/// lines at both ends, so templates can be laid out for their readers without leaking their
/// layout into the message.
fn tidy_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank_run = 0;
    for line in text.lines().map(str::trim_end) {
        if line.is_empty() {
            blank_run += 1;
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
            if blank_run > 0 {
                out.push('\n');
            }
        }
        blank_run = 0;
        out.push_str(line);
    }
    out
}

/// Escapes `& < > "`: enough for text and `"`-quoted attributes (every attribute in the
/// templates is double-quoted), and only entities Telegram accepts.
fn escape_html(raw: &str) -> String {
    html_escape::encode_double_quoted_attribute(raw).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_title_keeps_one_line_whatever_the_template_layout() {
        assert_eq!(one_line("\n  Rappel :\tdemain \n\n"), "Rappel : demain");
    }

    #[test]
    fn tidy_text_keeps_single_blank_lines_and_drops_layout_whitespace() {
        assert_eq!(tidy_text("\n\nA  \nB\n\n\n\nC\n  \n"), "A\nB\n\nC");
    }

    #[test]
    fn an_error_chain_lists_every_cause() {
        let tera_error = tera::Error::chain("outer", tera::Error::msg("inner"));
        assert_eq!(error_chain(&tera_error), "outer: inner");
    }

    #[test]
    fn a_family_part_is_told_from_a_shared_template() {
        let path = Path::new("x");
        assert_eq!(
            classify("fr/planning.assigned/email.html", path).unwrap(),
            Some((
                Locale::Fr,
                "planning.assigned".to_owned(),
                "email.html".to_owned()
            ))
        );
        assert_eq!(classify("fr/_macros/planning.tera", path).unwrap(), None);
        assert_eq!(classify("_layouts/email.html", path).unwrap(), None);
        assert!(classify("de/custom/email.html", path).is_err());
        assert!(classify("fr/custom/emial.html", path).is_err());
        assert!(classify("fr/email.html", path).is_err());
    }
}
