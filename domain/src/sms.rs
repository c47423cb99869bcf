//! SMS length as carriers count it, and fitting a message into a number of segments.
//!
//! An SMS carries 140 octets of user data (3GPP TS 23.040 §9.2.3.24). A text written only with
//! the GSM 7-bit default alphabet (3GPP TS 23.038 §6.2.1) packs 160 septets in one message; a
//! character of the alphabet's extension table (`^ { } \ [ ~ ] | €` and form feed, §6.2.1.1)
//! takes two septets (an escape, then the character). Any other character makes the whole
//! message UCS-2 (TS 23.038 §5, the 16-bit alphabet): 70 UTF-16 code units in one message.
//! A longer text is sent as concatenated parts, each losing 6 octets to its User Data Header
//! (TS 23.040 §9.2.3.24.1): 153 septets or 67 code units per part. A part never ends in the
//! middle of an escape sequence or of a UTF-16 surrogate pair, as handsets would show garbage.

/// How a text travels over SMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsEncoding {
    /// The GSM 7-bit default alphabet and its extension table (3GPP TS 23.038 §6.2.1).
    Gsm7,
    /// UCS-2, counted in UTF-16 code units (3GPP TS 23.038 §5).
    Ucs2,
}

impl SmsEncoding {
    /// Units (septets for GSM-7, UTF-16 code units for UCS-2) a single-part message holds:
    /// 160 or 70.
    pub const fn single_part(self) -> usize {
        match self {
            Self::Gsm7 => 160,
            Self::Ucs2 => 70,
        }
    }

    /// Units each part of a concatenated message holds: 153 or 67.
    pub const fn per_part(self) -> usize {
        match self {
            Self::Gsm7 => 153,
            Self::Ucs2 => 67,
        }
    }
}

/// What a text costs over SMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmsLength {
    /// The encoding carriers will use for it.
    pub encoding: SmsEncoding,
    /// Its length in that encoding's units (septets, or UTF-16 code units).
    pub units: usize,
    /// How many messages (segments) it is sent as; 1 for an empty text.
    pub segments: usize,
}

/// The GSM 7-bit default alphabet, basic character set (3GPP TS 23.038 §6.2.1, table 1),
/// without the escape code 0x1B itself. One septet each.
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

/// The extension table reached through the escape code (3GPP TS 23.038 §6.2.1.1): two septets
/// each.
const GSM7_EXTENSION: &str = "\u{000C}^{}\\[~]|€";

/// Septets `c` takes in GSM-7 (1 or 2), `None` when it is not in the alphabet.
fn gsm7_septets(c: char) -> Option<usize> {
    if GSM7_BASIC.contains(c) {
        Some(1)
    } else if GSM7_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// The encoding carriers use for `text`: GSM-7 when every character is in its basic set or
/// extension table, else UCS-2.
pub fn sms_encoding(text: &str) -> SmsEncoding {
    if text.chars().all(|c| gsm7_septets(c).is_some()) {
        SmsEncoding::Gsm7
    } else {
        SmsEncoding::Ucs2
    }
}

/// Counts `text` as carriers do: its encoding, its length in units, and its segments (160/153
/// septets for GSM-7, 70/67 UTF-16 code units for UCS-2; a two-unit character, an escaped
/// GSM-7 one or a surrogate pair, is never split over two parts).
pub fn sms_length(text: &str) -> SmsLength {
    let encoding = sms_encoding(text);
    let cost = |c: char| match encoding {
        SmsEncoding::Gsm7 => gsm7_septets(c).unwrap_or(1),
        SmsEncoding::Ucs2 => c.len_utf16(),
    };
    let units: usize = text.chars().map(cost).sum();
    if units <= encoding.single_part() {
        return SmsLength {
            encoding,
            units,
            segments: 1,
        };
    }
    let per_part = encoding.per_part();
    let (mut segments, mut used) = (1, 0);
    for c in text.chars() {
        let n = cost(c);
        if used + n > per_part {
            segments += 1;
            used = 0;
        }
        used += n;
    }
    SmsLength {
        encoding,
        units,
        segments,
    }
}

/// The SMS text of `body` followed by `link` (on its own line), in at most `max_segments`
/// segments ([`sms_length`]). When the whole is longer, the body is cut (at a character
/// boundary, trailing spaces dropped) and ends with an ellipsis; the link is never cut, as a
/// cut link leads nowhere. The ellipsis is `…` when the text is UCS-2 anyway, and `...` when
/// it would otherwise be GSM-7: `…` is not in the GSM-7 alphabet (3GPP TS 23.038 §6.2.1) and
/// would halve what the segments hold. When even the link alone does not fit, the link alone
/// is returned: the recipient can still open it.
pub fn fit_sms(body: &str, link: Option<&str>, max_segments: usize) -> String {
    let max_segments = max_segments.max(1);
    let body = body.trim();
    let compose = |body: &str| match link {
        Some(link) if body.is_empty() => link.to_owned(),
        Some(link) => format!("{body}\n{link}"),
        None => body.to_owned(),
    };
    let fits = |text: &str| sms_length(text).segments <= max_segments;
    let whole = compose(body);
    if fits(&whole) {
        return whole;
    }
    // The longest cut body that fits: a shorter prefix never costs more segments (it holds
    // the same characters, and may lose the one that forced UCS-2), so a binary search over
    // the number of characters kept finds it.
    let boundaries: Vec<usize> = body.char_indices().map(|(i, _)| i).collect();
    let shortened = |kept: usize| {
        let prefix = body[..boundaries[kept]].trim_end();
        if prefix.is_empty() {
            return compose("");
        }
        let plain = compose(&format!("{prefix}..."));
        if sms_encoding(&plain) == SmsEncoding::Gsm7 {
            plain
        } else {
            compose(&format!("{prefix}…"))
        }
    };
    let (mut low, mut high) = (0, boundaries.len());
    // Invariant: shortened(low) fits or low == 0; shortened(high) does not fit or high is the
    // whole body (which does not fit).
    while high - low > 1 {
        let middle = low + (high - low) / 2;
        if fits(&shortened(middle)) {
            low = middle;
        } else {
            high = middle;
        }
    }
    shortened(low)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::empty("", SmsEncoding::Gsm7, 0, 1)]
    #[case::plain_ascii("Hello", SmsEncoding::Gsm7, 5, 1)]
    #[case::french_accents_of_the_basic_set("é è à ù", SmsEncoding::Gsm7, 7, 1)]
    #[case::extension_counts_two("{€}", SmsEncoding::Gsm7, 6, 1)]
    #[case::one_circumflex_makes_ucs2("fenêtre", SmsEncoding::Ucs2, 7, 1)]
    #[case::lowercase_cedilla_is_not_gsm7("ça", SmsEncoding::Ucs2, 2, 1)]
    #[case::ellipsis_is_not_gsm7("…", SmsEncoding::Ucs2, 1, 1)]
    #[case::emoji_is_a_surrogate_pair("🎭", SmsEncoding::Ucs2, 2, 1)]
    fn a_text_is_counted_in_its_encodings_units(
        #[case] text: &str,
        #[case] encoding: SmsEncoding,
        #[case] units: usize,
        #[case] segments: usize,
    ) {
        assert_eq!(
            sms_length(text),
            SmsLength {
                encoding,
                units,
                segments
            }
        );
    }

    #[rstest]
    #[case::gsm7_single_full("a".repeat(160), 1)]
    #[case::gsm7_one_over_single("a".repeat(161), 2)]
    #[case::gsm7_two_parts_full("a".repeat(306), 2)]
    #[case::gsm7_three_parts("a".repeat(307), 3)]
    #[case::gsm7_extension_over_single(format!("{}€", "a".repeat(159)), 2)]
    #[case::gsm7_escape_never_split(format!("{}€{}", "a".repeat(152), "a".repeat(152)), 3)]
    #[case::ucs2_single_full("ê".repeat(70), 1)]
    #[case::ucs2_one_over_single("ê".repeat(71), 2)]
    #[case::ucs2_two_parts_full("ê".repeat(134), 2)]
    #[case::ucs2_three_parts("ê".repeat(135), 3)]
    #[case::surrogate_pair_never_split(format!("{}🎭{}", "ê".repeat(66), "ê".repeat(66)), 3)]
    fn segments_hold_160_or_153_septets_and_70_or_67_code_units(
        #[case] text: String,
        #[case] segments: usize,
    ) {
        assert_eq!(sms_length(&text).segments, segments, "{text}");
    }

    #[test]
    fn a_message_that_fits_is_left_as_it_is() {
        assert_eq!(
            fit_sms("  Rendez-vous à 9h  ", Some("https://x.example/p/1"), 2),
            "Rendez-vous à 9h\nhttps://x.example/p/1"
        );
        assert_eq!(fit_sms("Salut", None, 1), "Salut");
    }

    #[rstest]
    #[case::gsm7_body("Rehearsal moved to the big hall. ".repeat(20), SmsEncoding::Gsm7, "...")]
    #[case::ucs2_body("Répétition déplacée à la grande salle, fenêtre côté rue. ".repeat(10), SmsEncoding::Ucs2, "…")]
    fn a_long_body_is_cut_with_an_ellipsis_and_the_link_kept_whole(
        #[case] body: String,
        #[case] encoding: SmsEncoding,
        #[case] ellipsis: &str,
    ) {
        let link = "https://clairon.example/plannings/01JXYZ?tab=details";
        let text = fit_sms(&body, Some(link), 2);
        let length = sms_length(&text);
        assert_eq!(length.segments, 2, "{text}");
        assert_eq!(length.encoding, encoding);
        assert!(text.ends_with(&format!("{ellipsis}\n{link}")), "{text}");
        // As long as it can be: one more character of the body would not fit.
        let kept = text.strip_suffix(&format!("{ellipsis}\n{link}")).unwrap();
        let next = body[kept.len()..].chars().next().unwrap();
        let longer = format!("{kept}{next}{ellipsis}\n{link}");
        assert!(
            sms_length(&longer).segments > 2 || next.is_whitespace(),
            "{longer}"
        );
    }

    #[test]
    fn a_gsm7_body_is_not_pushed_into_ucs2_by_its_ellipsis() {
        let text = fit_sms(&"a".repeat(400), None, 2);
        assert_eq!(sms_length(&text).encoding, SmsEncoding::Gsm7);
        assert_eq!(text.len(), 306);
        assert!(text.ends_with("..."));
    }

    #[test]
    fn a_link_too_long_for_the_segments_is_sent_alone_and_whole() {
        let link = format!("https://x.example/{}", "a".repeat(400));
        assert_eq!(fit_sms("Bonjour", Some(&link), 2), link);
    }

    #[rstest]
    #[case(1)]
    #[case(2)]
    #[case(3)]
    fn a_cut_message_never_exceeds_the_segments_asked(#[case] max: usize) {
        let body = "Ça commence à 20h30 — n'oubliez pas vos partitions ! ".repeat(12);
        let text = fit_sms(&body, Some("https://c.example/p"), max);
        assert!(sms_length(&text).segments <= max, "{text}");
        assert!(text.ends_with("…\nhttps://c.example/p"));
    }
}
