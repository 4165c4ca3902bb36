//! Text from peers as it may be written to a log line or a terminal: control characters (escape
//! sequences that would rewrite an operator's terminal, line breaks that would forge log lines)
//! shown as `?`, and the length bounded.

/// At most `max` characters of `text`, each control character replaced by `?`.
pub(crate) fn printable(text: &str, max: usize) -> String {
    text.chars().take(max).map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// A name or a reason as the node takes it from a person (the CLI, the API): trimmed, 1 to 200
/// characters, no line break or other control character (which would forge lines in the audit
/// log and listings). The error says the rule.
pub(crate) fn plain_line(value: &str) -> Result<&str, &'static str> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > 200 || value.chars().any(char::is_control) {
        return Err("1 to 200 characters, no line breaks or other control characters");
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_are_masked_and_length_bounded() {
        assert_eq!(super::printable("<a\u{1b}[2J@b>\r\nfake: line", 100), "<a?[2J@b>??fake: line");
        assert_eq!(super::printable("Grüße", 3), "Grü");
    }

    #[test]
    fn a_plain_line_is_trimmed_and_bounded_and_has_no_line_break() {
        assert_eq!(super::plain_line("  Lee Family Medicine, P.A. "), Ok("Lee Family Medicine, P.A."));
        assert!(super::plain_line("a\nb").is_err() && super::plain_line(" ").is_err());
        assert!(super::plain_line(&"x".repeat(201)).is_err());
    }
}
