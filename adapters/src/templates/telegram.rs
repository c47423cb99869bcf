//! A check of rendered Telegram text against the HTML parse mode of the Bot API
//! (<https://core.telegram.org/bots/api#html-style>), so that a template mistake (a `<br>`, a
//! value marked `safe`, an unclosed `<b>`) fails at start-up in `check_all` rather than as a
//! `400 Bad Request: can't parse entities` at delivery time.
//!
//! It escapes nothing: escaping is Tera's autoescape. It only reads, and accepts a subset of what
//! Telegram accepts: the tags `b i u s a code pre blockquote`, the named entities
//! `&lt; &gt; &amp; &quot;` and numeric entities.

/// Tags Clairon's Telegram templates may use.
const ALLOWED_TAGS: [&str; 8] = ["b", "i", "u", "s", "a", "code", "pre", "blockquote"];

/// Named entities Telegram accepts.
const ALLOWED_ENTITIES: [&str; 4] = ["lt", "gt", "amp", "quot"];

/// Longest entity looked for after a `&` (`#x10FFFF` is 8 characters).
const MAX_ENTITY_LEN: usize = 10;

/// Checks `html`: only allowed tags, properly nested and closed; only allowed entities; no bare
/// `<`, `>` or `&`.
///
/// # Errors
/// What is wrong, quoting the offending piece.
pub(super) fn check(html: &str) -> Result<(), String> {
    let mut open: Vec<&str> = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find(['<', '>', '&']) {
        let (mark, after) = (&rest[at..=at], &rest[at + 1..]);
        rest = match mark {
            ">" => return Err("bare `>` outside a tag".to_owned()),
            "&" => {
                let end = after
                    .char_indices()
                    .take(MAX_ENTITY_LEN + 1)
                    .find(|(_, c)| *c == ';')
                    .map(|(i, _)| i)
                    .ok_or_else(|| format!("bare `&` before {:?}", preview(after)))?;
                check_entity(&after[..end])?;
                &after[end + 1..]
            }
            _ => {
                let end = after
                    .find('>')
                    .ok_or_else(|| format!("unclosed tag `<{}`", preview(after)))?;
                let tag = &after[..end];
                check_tag(tag, &mut open)?;
                &after[end + 1..]
            }
        };
    }
    match open.pop() {
        Some(tag) => Err(format!("`<{tag}>` is never closed")),
        None => Ok(()),
    }
}

fn check_entity(entity: &str) -> Result<(), String> {
    let numeric = match entity.strip_prefix('#') {
        Some(hex) if hex.starts_with(['x', 'X']) => {
            hex.len() > 1 && hex[1..].chars().all(|c| c.is_ascii_hexdigit())
        }
        Some(decimal) => !decimal.is_empty() && decimal.chars().all(|c| c.is_ascii_digit()),
        None => false,
    };
    if numeric || ALLOWED_ENTITIES.contains(&entity) {
        Ok(())
    } else {
        Err(format!("entity `&{entity};` is not one Telegram accepts"))
    }
}

fn check_tag<'a>(tag: &'a str, open: &mut Vec<&'a str>) -> Result<(), String> {
    let (closing, inner) = match tag.strip_prefix('/') {
        Some(inner) => (true, inner),
        None => (false, tag),
    };
    let name = inner
        .split(|c: char| c.is_whitespace())
        .next()
        .unwrap_or_default();
    if !ALLOWED_TAGS.contains(&name) {
        return Err(format!("tag `<{tag}>` is not allowed in Telegram HTML"));
    }
    if closing {
        match open.pop() {
            Some(last) if last == name => Ok(()),
            Some(last) => Err(format!("`</{name}>` closes `<{last}>`")),
            None => Err(format!("`</{name}>` closes nothing")),
        }
    } else {
        let attributes = inner[name.len()..].trim();
        let allowed = match name {
            "a" => attributes.starts_with("href=\""),
            "pre" | "blockquote" | "code" => {
                attributes.is_empty()
                    || attributes.starts_with("class=\"")
                    || attributes == "expandable"
            }
            _ => attributes.is_empty(),
        };
        if !allowed {
            return Err(format!(
                "tag `<{tag}>` has attributes Telegram does not accept"
            ));
        }
        open.push(name);
        Ok(())
    }
}

fn preview(text: &str) -> String {
    text.chars().take(20).collect()
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn allowed_tags_and_escaped_values_pass() {
        assert_eq!(
            check("<b>Salle &lt;Jazz&gt; &amp; Co</b>\nO&#x27;Brien <a href=\"https:&#x2F;&#x2F;x\">x</a>"),
            Ok(())
        );
    }

    #[test]
    fn a_line_break_tag_is_refused() {
        assert!(check("a<br>b").unwrap_err().contains("<br>"));
    }

    #[test]
    fn a_bare_ampersand_or_a_named_entity_telegram_lacks_is_refused() {
        assert!(check("Salle & Co").is_err());
        assert!(check("a&nbsp;b").is_err());
    }

    #[test]
    fn tags_must_nest_and_close() {
        assert!(check("<b><i>x</b></i>").is_err());
        assert!(check("<b>x").is_err());
        assert!(check("x</b>").is_err());
    }
}
