//! Tera implementation of the `TemplateRenderer` port: turns a notification's context into the
//! in-app, email and Telegram texts, from a [`TemplateSet`]: the templates compiled into the
//! binary from the repository's `templates/` directory, where an operator's directory
//! (`CLAIRON_TEMPLATES_DIR`) may replace any file.
//!
//! Layout of a template set, loaded once at start-up:
//!
//! ```text
//! templates/
//!   _layouts/email.html                   locale-neutral frame of every HTML email
//!   {locale}/_layouts/email.{html,txt}    that frame in one language (greeting, button, footer)
//!   {locale}/_macros/planning.tera        building blocks shared by the planning families
//!   {locale}/{event_type}/{part}          one family: the parts below
//! ```
//!
//! A family is an event type (`planning.assigned`, `custom`, `test`, ...) and has these parts:
//! `in_app.title.txt`, `in_app.body.txt`, `email.subject.txt`, `email.txt`, `email.html` and
//! `telegram.html`, and `sms.txt` (SMS and WhatsApp), and `slack.txt` (Slack `mrkdwn`: rendered
//! with every string of its context escaped for Slack, `&amp; &lt; &gt;`, and not HTML-escaped).
//! Directories whose name starts with `_` hold shared templates, not families.
//!
//! `.html` templates are HTML-escaped with `html-escape`'s double-quoted-attribute escaper
//! (`&amp; &lt; &gt; &quot;`: safe in text and in `"`-quoted attributes, and exactly the named
//! entities Telegram's HTML parse mode accepts, so URLs in `href`s stay readable); `.txt`
//! templates are not escaped at all. This module knows Tera and the file system, nothing of the channels that send
//! what it renders.

mod sample;
mod source;
mod telegram;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use clairon_application::ports::SlackContent;
use clairon_application::ports::SmsContent;
use clairon_application::ports::{
    EmailContent, InAppContent, TelegramContent, TemplateError, TemplateRenderer,
};
use clairon_domain::{EventType, Locale};
use serde_json::Value;
use tera::{Context, Tera};

pub use source::{built_in_files, Origin, TemplateFile, TemplateSet};

/// The parts every family must have, file names inside `{locale}/{event_type}/`.
pub const PARTS: [&str; 8] = [
    IN_APP_TITLE,
    IN_APP_BODY,
    EMAIL_SUBJECT,
    EMAIL_TEXT,
    EMAIL_HTML,
    TELEGRAM_HTML,
    SMS_TEXT,
    SLACK_TEXT,
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
const SMS_TEXT: &str = "sms.txt";
const SLACK_TEXT: &str = "slack.txt";

/// Why a template set could not be loaded. Every variant names the offending path.
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
    #[error("template {} has a syntax error{}: {reason}", path.display(), line.map(|l| format!(" on line {l}")).unwrap_or_default())]
    Syntax {
        /// The file (`templates/{name}` for a built-in template).
        path: PathBuf,
        /// The line of the error (1-based), when Tera's parser gives it.
        line: Option<usize>,
        /// Tera's message, with its cause chain.
        reason: String,
    },
    /// Templates parse one by one but not together: an `extends`, `include` or `import` names a
    /// template that does not exist, or inheritance loops.
    #[error("templates ({set}) do not fit together: {reason}")]
    Links {
        /// What the set was made from ([`TemplateSet::description`]).
        set: String,
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

/// One thing wrong with a template set, as `clairon templates check` reports it: the file to
/// fix, the line when it can be told, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateProblem {
    /// The file (`templates/{name}` for a built-in template; a family's directory when parts
    /// are missing; the template name when the file does not exist).
    pub path: PathBuf,
    /// The line (1-based): where Tera's parser stopped for a syntax error, else the first line
    /// of the template (or of a layout or macro file it pulls in) that holds the name the error
    /// is about: the unknown variable, filter or template, the tag Telegram refuses.
    pub line: Option<usize>,
    /// What is wrong, on one line.
    pub message: String,
}

impl fmt::Display for TemplateProblem {
    /// `path:line: message`, the form editors and terminals link to a file position.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.path.display(), self.message),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

/// Loads `set` and renders every family of every locale on every channel against the sample
/// contexts, as the server does at start-up, but reports every problem instead of the first:
/// every file out of place and every syntax error (nothing is rendered then), else the broken
/// `extends`/`include`/`import`, else every incomplete family, else every failed render.
/// Empty when the set is fine.
pub fn check_set(set: &TemplateSet, default_locale: Locale) -> Vec<TemplateProblem> {
    TeraTemplateRenderer::load_checked(set, default_locale)
        .err()
        .unwrap_or_default()
}

fn load_problem(set: &TemplateSet, error: &TemplateLoadError) -> TemplateProblem {
    match error {
        TemplateLoadError::Io { path, source } => TemplateProblem {
            path: path.clone(),
            line: None,
            message: format!("cannot read: {source}"),
        },
        TemplateLoadError::Syntax { path, line, reason } => TemplateProblem {
            path: path.clone(),
            line: *line,
            message: syntax_message(reason),
        },
        TemplateLoadError::Links { reason, .. } => {
            let (path, line) = locate(set, None, reason);
            TemplateProblem {
                path,
                line,
                message: reason.clone(),
            }
        }
        TemplateLoadError::Unexpected { path, reason } => TemplateProblem {
            path: path.clone(),
            line: None,
            message: reason.clone(),
        },
        TemplateLoadError::IncompleteFamily { locale, family, .. } => {
            let prefix = format!("{locale}/{family}/");
            // The directory where the parts go: beside a part that exists, if any.
            let path = set
                .files()
                .find(|f| f.name.starts_with(&prefix))
                .and_then(|f| f.path().parent().map(Path::to_path_buf))
                .unwrap_or_else(|| PathBuf::from(prefix.trim_end_matches('/')));
            TemplateProblem {
                path,
                line: None,
                message: error.to_string(),
            }
        }
    }
}

fn render_problem(set: &TemplateSet, error: &TemplateError) -> TemplateProblem {
    match error {
        TemplateError::Missing(family) => TemplateProblem {
            path: PathBuf::from(family),
            line: None,
            message: format!(
                "no template family {family}: every built-in family must exist in the default locale"
            ),
        },
        TemplateError::Render { name, reason } => {
            let (path, line) = locate(set, Some(name), reason);
            TemplateProblem {
                path,
                line,
                message: reason.clone(),
            }
        }
    }
}

/// The file and line an error of Tera (or of the Telegram check) is about.
///
/// Tera names templates in quotes (`'fr/custom/email.html'`, `` `fr/_macros/planning.tera` ``),
/// the innermost last, and the faulty name in backticks or quotes (`` `planning.venue` ``,
/// `'nofilter'`, `'fr/_layouts/nowhere.html'`); it gives no line for render errors. So the file
/// is the innermost template named (else `name`), and the line the first that holds one of the
/// other quoted names, innermost cause first, looked for in that template and then in the
/// layouts and macro files it names (a variable missing in a layout is reported by Tera as
/// missing in the template that extends it).
fn locate(set: &TemplateSet, name: Option<&str>, reason: &str) -> (PathBuf, Option<usize>) {
    let quoted = quoted_tokens(reason);
    let mut templates: Vec<&str> = quoted
        .iter()
        .rev()
        .copied()
        .filter(|t| set.get(t).is_some())
        .collect();
    if let Some(name) = name.filter(|n| !templates.contains(n)) {
        templates.push(name);
    }
    let needles: Vec<&str> = quoted
        .iter()
        .rev()
        .copied()
        .filter(|t| set.get(t).is_none() && !t.is_empty())
        .collect();
    let Some(first) = templates.first().copied() else {
        return (PathBuf::from(name.unwrap_or_default()), None);
    };
    let shown = set
        .get(first)
        .map_or_else(|| PathBuf::from(first), TemplateFile::path);
    // Breadth first through what the templates pull in, each file once.
    let mut queue: std::collections::VecDeque<&str> = templates.iter().copied().collect();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    while let Some(candidate) = queue.pop_front() {
        if !seen.insert(candidate) {
            continue;
        }
        let Some(file) = set.get(candidate) else {
            continue;
        };
        for needle in &needles {
            if let Some(index) = file.text.lines().position(|l| l.contains(needle)) {
                return (file.path(), Some(index + 1));
            }
        }
        for pulled_in in quoted_tokens(&file.text) {
            if set.get(pulled_in).is_some() {
                queue.push_back(pulled_in);
            }
        }
    }
    (shown, None)
}

/// The substrings of `text` between `'…'`, `` `…` `` or `"…"` on one line, in order.
fn quoted_tokens(text: &str) -> Vec<&str> {
    let mut tokens = Vec::new();
    for line in text.lines() {
        let mut rest = line;
        while let Some(start) = rest.find(['\'', '`', '"']) {
            let quote = rest[start..].chars().next().unwrap_or('"');
            let after = &rest[start + 1..];
            match after.find(quote) {
                Some(end) => {
                    tokens.push(&after[..end]);
                    rest = &after[end + 1..];
                }
                None => break,
            }
        }
    }
    tokens
}

/// The line of a syntax error in Tera's message (its parser writes ` --> 4:1`).
fn syntax_error_line(reason: &str) -> Option<usize> {
    let position = reason.split("--> ").nth(1)?;
    position.split(':').next()?.trim().parse().ok()
}

/// The parser's expectation (`= expected …`) out of Tera's multi-line message.
fn syntax_message(reason: &str) -> String {
    reason
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("= "))
        .map_or_else(
            || one_line(reason),
            |expected| format!("syntax error: {expected}"),
        )
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
    /// Loads every template under `dir` alone (no built-in template), as
    /// [`TeraTemplateRenderer::from_set`] does.
    ///
    /// # Errors
    /// As [`TemplateSet::from_dir`] and [`TeraTemplateRenderer::from_set`].
    pub fn from_dir(dir: &Path, default_locale: Locale) -> Result<Self, TemplateLoadError> {
        Self::from_set(&TemplateSet::from_dir(dir)?, default_locale)
    }

    /// The templates compiled into the binary, with each file of `overrides` (when given) in
    /// place of the built-in one of the same path.
    ///
    /// # Errors
    /// As [`TemplateSet::built_in_overridden_by`] (the directory cannot be read) and
    /// [`TeraTemplateRenderer::from_set`].
    pub fn built_in(
        overrides: Option<&Path>,
        default_locale: Locale,
    ) -> Result<Self, TemplateLoadError> {
        let set = match overrides {
            Some(dir) => TemplateSet::built_in_overridden_by(dir)?,
            None => TemplateSet::built_in(),
        };
        Self::from_set(&set, default_locale)
    }

    /// Loads `set` (see the module docs for the layout) and checks that each family is
    /// complete: all [`PARTS`] in every locale where it exists, and present in
    /// `default_locale`.
    ///
    /// It does not render anything: call [`TeraTemplateRenderer::check_all`] for that.
    ///
    /// # Errors
    /// The first [`TemplateLoadError`], naming the file: a syntax error, a broken
    /// `extends`/`include`/`import`, a file out of place, or an incomplete family
    /// ([`check_set`] lists every one).
    pub fn from_set(set: &TemplateSet, default_locale: Locale) -> Result<Self, TemplateLoadError> {
        Self::load(set, default_locale).map_err(|mut errors| errors.swap_remove(0))
    }

    /// [`TeraTemplateRenderer::from_set`] then [`TeraTemplateRenderer::check_all`], as the
    /// server starts: the renderer when every template loads and renders against the sample
    /// contexts.
    ///
    /// # Errors
    /// Every problem, as [`check_set`] lists them (never an empty list).
    pub fn load_checked(
        set: &TemplateSet,
        default_locale: Locale,
    ) -> Result<Self, Vec<TemplateProblem>> {
        let renderer = Self::load(set, default_locale).map_err(|errors| {
            errors
                .iter()
                .map(|e| load_problem(set, e))
                .collect::<Vec<_>>()
        })?;
        let problems: Vec<TemplateProblem> = renderer
            .check_each()
            .iter()
            .map(|e| render_problem(set, e))
            .collect();
        if problems.is_empty() {
            Ok(renderer)
        } else {
            Err(problems)
        }
    }

    /// [`TeraTemplateRenderer::from_set`], with every error of the failing stage: every file
    /// out of place and every syntax error, else the broken link, else every incomplete family.
    /// Never an empty `Err`.
    fn load(set: &TemplateSet, default_locale: Locale) -> Result<Self, Vec<TemplateLoadError>> {
        let mut errors = Vec::new();
        let mut sources = Vec::with_capacity(set.len());
        // Keyed by the locale's name so that errors come out in a stable order.
        let mut parts: BTreeMap<(&str, String), (Locale, BTreeSet<String>)> = BTreeMap::new();
        for file in set.files() {
            match classify(&file.name, &file.path()) {
                Ok(Some((locale, family, part))) => {
                    parts
                        .entry((locale.as_str(), family))
                        .or_insert_with(|| (locale, BTreeSet::new()))
                        .1
                        .insert(part);
                }
                Ok(None) => {}
                Err(e) => errors.push(e),
            }
            // Parsed alone first so that a syntax error names its file; together (below) Tera
            // only reports the first error by template name.
            if let Err(e) = tera::Template::new(&file.name, None, &file.text) {
                let reason = error_chain(&e);
                errors.push(TemplateLoadError::Syntax {
                    path: file.path(),
                    line: syntax_error_line(&reason),
                    reason,
                });
            }
            sources.push((file.name.as_str(), file.text.as_str()));
        }
        if !errors.is_empty() {
            return Err(errors);
        }

        let mut tera = Tera::default();
        tera.autoescape_on(vec![".html"]);
        tera.set_escape_fn(escape_html);
        tera.add_raw_templates(sources).map_err(|e| {
            vec![TemplateLoadError::Links {
                set: set.description().to_owned(),
                reason: error_chain(&e),
            }]
        })?;

        let mut families: HashMap<Locale, BTreeSet<String>> = HashMap::new();
        for ((_, family), (locale, present)) in &parts {
            let locale = *locale;
            let missing = missing_parts(present);
            if !missing.is_empty() {
                errors.push(TemplateLoadError::IncompleteFamily {
                    locale,
                    family: family.clone(),
                    missing,
                });
                continue;
            }
            families.entry(locale).or_default().insert(family.clone());
        }
        for (_, family) in parts.keys() {
            let in_default = (default_locale.as_str(), family.clone());
            if !parts.contains_key(&in_default) {
                errors.push(TemplateLoadError::IncompleteFamily {
                    locale: default_locale,
                    family: family.clone(),
                    missing: PARTS.iter().map(|p| (*p).to_owned()).collect(),
                });
            }
        }
        if !errors.is_empty() {
            return Err(errors);
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
    /// template in the default locale; [`TemplateError::Render`] naming the template otherwise
    /// ([`TeraTemplateRenderer::check_each`] gives every one).
    pub fn check_all(&self) -> Result<(), TemplateError> {
        match self.check_each().into_iter().next() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Every failure [`TeraTemplateRenderer::check_all`] looks for, each once, in a stable
    /// order (missing built-in families first, then by locale and family); empty when every
    /// template renders.
    pub fn check_each(&self) -> Vec<TemplateError> {
        let mut errors = Vec::new();
        for family in BUILT_IN_FAMILIES {
            if !self.has(self.default_locale, family) {
                errors.push(TemplateError::Missing(format!(
                    "{}/{family}",
                    self.default_locale
                )));
            }
        }
        let mut push = |error: TemplateError| {
            if !errors.contains(&error) {
                errors.push(error);
            }
        };
        for locale in Locale::ALL {
            for event_type in self.families(locale) {
                let family = Family { locale, event_type };
                for sample in sample::contexts(event_type, locale) {
                    // Email and Telegram parts get the in-app render in their context: without
                    // it they cannot be rendered, but each is checked on its own.
                    let in_app = match self.in_app(family, &sample.in_app) {
                        Ok(in_app) => in_app,
                        Err(e) => {
                            push(e);
                            continue;
                        }
                    };
                    let dispatch = sample.at_dispatch(&in_app);
                    if let Err(e) = self.email(family, &dispatch) {
                        push(e);
                    }
                    if let Err(e) = self.telegram(family, &dispatch) {
                        push(e);
                    }
                    if let Err(e) = self.sms(family, &dispatch) {
                        push(e);
                    }
                    if let Err(e) = self.slack(family, &dispatch) {
                        push(e);
                    }
                }
            }
        }
        errors
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

    /// The SMS text: plain, blank-line runs tidied; an empty text is an error (an SMS cannot
    /// be empty).
    fn sms(&self, family: Family<'_>, context: &Value) -> Result<SmsContent, TemplateError> {
        let context = tera_context(family, SMS_TEXT, context)?;
        let text = tidy_text(&self.render(family, SMS_TEXT, &context)?)
            .trim()
            .to_owned();
        if text.is_empty() {
            return Err(TemplateError::Render {
                name: family.template(SMS_TEXT),
                reason: "rendered an empty text".to_owned(),
            });
        }
        Ok(SmsContent { text })
    }

    /// The Slack section text: `slack.txt` rendered with every string of `context` escaped for
    /// `mrkdwn` ([`clairon_domain::slack::escape_mrkdwn`]: the template's own markup stays, the
    /// values cannot add any), blank-line runs tidied; an empty text is an error (Slack refuses
    /// an empty section).
    fn slack(&self, family: Family<'_>, context: &Value) -> Result<SlackContent, TemplateError> {
        let context = tera_context(family, SLACK_TEXT, &escape_strings(context))?;
        let mrkdwn = tidy_text(&self.render(family, SLACK_TEXT, &context)?)
            .trim()
            .to_owned();
        if mrkdwn.is_empty() {
            return Err(TemplateError::Render {
                name: family.template(SLACK_TEXT),
                reason: "rendered an empty text".to_owned(),
            });
        }
        Ok(SlackContent { mrkdwn })
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

    fn render_sms(
        &self,
        event_type: &EventType,
        locale: Locale,
        context: &Value,
    ) -> Result<SmsContent, TemplateError> {
        self.sms(self.resolve(event_type, locale)?, context)
    }

    fn render_slack(
        &self,
        event_type: &EventType,
        locale: Locale,
        context: &Value,
    ) -> Result<SlackContent, TemplateError> {
        self.slack(self.resolve(event_type, locale)?, context)
    }
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

/// `value` with every string in it (object values and array items, at any depth; keys are
/// left alone) escaped for Slack's `mrkdwn`.
fn escape_strings(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(clairon_domain::slack::escape_mrkdwn(s)),
        Value::Array(items) => Value::Array(items.iter().map(escape_strings).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), escape_strings(v)))
                .collect(),
        ),
        other => other.clone(),
    }
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
