//! The one validation error of the domain: a field that does not hold a valid value.

/// A value refused by a self-validating constructor.
///
/// `field` is the JSON name of the offending field as an API client sends it (for example
/// `email` or `planning.starts_at`), so the HTTP adapter can name it in an RFC 7807 answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// Dotted path of the field in the request body (`planning.location.name`).
    pub field: String,
    /// Human-readable reason, in English.
    pub message: String,
}

impl ValidationError {
    /// Builds an error for `field` with `message`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Returns the same error with `prefix.` put before its field (`location` → `planning.location`).
    #[must_use]
    pub fn within(mut self, prefix: &str) -> Self {
        self.field = format!("{prefix}.{}", self.field);
        self
    }
}

/// Why a text holding U+0000 is refused, for every field that refuses it.
pub const NUL_REFUSED: &str = "must not contain the NUL character (U+0000): it cannot be stored";

/// Checks that a trimmed string is non-empty, holds no NUL character and is at most `max`
/// characters (Unicode scalar values).
///
/// # Errors
/// [`ValidationError`] naming `field` when the value is blank, holds U+0000 (PostgreSQL `text`
/// cannot store it, so one engine would refuse what the other keeps), or is too long.
pub(crate) fn bounded_text(field: &str, raw: &str, max: usize) -> Result<String, ValidationError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(ValidationError::new(field, "must not be blank"));
    }
    if trimmed.contains('\0') {
        return Err(ValidationError::new(field, NUL_REFUSED));
    }
    if trimmed.chars().count() > max {
        return Err(ValidationError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// Like [`bounded_text`], for a value that must stay on one line because it may reach a message
/// header: an email's `To` display name or its `Subject` (RFC 5322 §2.2: a header field body holds
/// no CR or LF of its own; RFC 5322 §3.2.5 phrases hold no control characters). Also refuses every
/// control character (Unicode category `Cc`: C0 controls, line breaks and tabs included, DEL, C1
/// controls).
///
/// # Errors
/// [`ValidationError`] naming `field` when the value is blank, too long, or holds a control
/// character.
pub(crate) fn single_line_text(
    field: &str,
    raw: &str,
    max: usize,
) -> Result<String, ValidationError> {
    let text = bounded_text(field, raw, max)?;
    if text.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            "must not hold control characters (line breaks, tabs, ...)",
        ));
    }
    Ok(text)
}

/// `raw` with every control character replaced by a space: how a value stored before
/// [`single_line_text`] refused them is read back, so an old row stays readable (and never
/// reaches a header with a line break in it).
pub(crate) fn flatten_controls(raw: &str) -> String {
    raw.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_holding_a_nul_character_is_refused_naming_its_field() {
        let refused = bounded_text("title", "Salle\0B", 200).unwrap_err();
        assert_eq!(refused.field, "title", "the field is named");
        assert!(refused.message.contains("NUL"), "{}", refused.message);
        assert_eq!(
            bounded_text("title", " Salle B ", 200).unwrap(),
            "Salle B",
            "other texts are trimmed and kept"
        );
    }

    #[test]
    fn a_single_line_value_refuses_every_control_character_and_names_its_field() {
        for raw in [
            "Eve\nX",
            "Eve\rX",
            "Eve\tX",
            "Eve\u{0}X",
            "Eve\u{7f}X",
            "Eve\u{85}X",
        ] {
            let err = single_line_text("name", raw, 200).unwrap_err();
            assert_eq!(err.field, "name", "{raw:?}");
            assert!(
                err.message.contains("control characters") || err.message.contains("NUL"),
                "{raw:?}: {err}"
            );
        }
        assert_eq!(
            single_line_text("name", "  Zoé Tremblay ", 200).unwrap(),
            "Zoé Tremblay",
            "an ordinary name is trimmed and kept"
        );
    }

    #[test]
    fn flattening_turns_each_control_character_into_a_space() {
        assert_eq!(flatten_controls("Eve\nX\r\n"), "Eve X  ");
        assert_eq!(flatten_controls("Zoé"), "Zoé");
    }
}
