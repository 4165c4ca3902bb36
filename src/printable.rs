//! Text from peers as it may be written to a log line or a terminal: control characters (escape
//! sequences that would rewrite an operator's terminal, line breaks that would forge log lines)
//! shown as `?`, and the length bounded.

/// At most `max` characters of `text`, each control character replaced by `?`.
pub(crate) fn printable(text: &str, max: usize) -> String {
    text.chars().take(max).map(|c| if c.is_control() { '?' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_are_masked_and_length_bounded() {
        assert_eq!(super::printable("<a\u{1b}[2J@b>\r\nfake: line", 100), "<a?[2J@b>??fake: line");
        assert_eq!(super::printable("Grüße", 3), "Grü");
    }
}
