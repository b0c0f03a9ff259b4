//! [`printable`]: text from outside the program (a server, a browser, a child process) as it
//! may be shown on a terminal, in an error or in a log.

use std::borrow::Cow;

/// `text` with every character that a terminal would act on instead of showing written as a
/// visible escape (`\u{1b}`), so that nothing in it can move the cursor, clear a line, set
/// the window title, turn into a hidden link (OSC 8) or be hidden by the characters after it.
///
/// Escaped: the C0 and C1 controls (line breaks and tabs included) and DEL, Unicode's
/// `Bidi_Control` characters, which reorder what is shown, the line and paragraph separators,
/// and the invisible format characters that can hide text between visible ones (zero-width
/// characters, the soft hyphen, the byte order mark, the tag characters, which can carry a
/// whole hidden copy of ASCII text, and the like). Every other character is kept, so ordinary
/// text is returned as it is, without a copy.
///
/// Use it on every string a server sends before it is printed or put into an error or a log:
/// a user code, a verification URL, an `error_description`, a discovery value.
///
/// ```
/// use flyte_auth_core::text::printable;
/// assert_eq!(printable("WDJB-MJHT"), "WDJB-MJHT");
/// assert_eq!(
///     printable("https://idp.example.org\x1b[2K\rhttps://evil.example"),
///     "https://idp.example.org\\u{1b}[2K\\u{d}https://evil.example"
/// );
/// ```
pub fn printable(text: &str) -> Cow<'_, str> {
    escape(text, |_| false)
}

/// Like [`printable`], but keeps line breaks (`\n`, and `\r\n` as `\n`) and tabs: for
/// multi-line text that is shown as lines, such as what a command wrote to its standard
/// error. A lone `\r` (which would overwrite the line) is escaped.
///
/// ```
/// use flyte_auth_core::text::printable_lines;
/// assert_eq!(printable_lines("a\r\n\tb\x1b[0m\rc"), "a\n\tb\\u{1b}[0m\\u{d}c");
/// ```
pub fn printable_lines(text: &str) -> Cow<'_, str> {
    let text = if text.contains("\r\n") {
        Cow::Owned(text.replace("\r\n", "\n"))
    } else {
        Cow::Borrowed(text)
    };
    match escape(&text, |c| c == '\n' || c == '\t') {
        Cow::Borrowed(_) => text,
        Cow::Owned(escaped) => Cow::Owned(escaped),
    }
}

/// Whether a terminal acts on `c` instead of showing it (see [`printable`]).
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00ad}'
                | '\u{061c}'
                | '\u{180e}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206f}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
                | '\u{1bca0}'..='\u{1bca3}'
                | '\u{1d173}'..='\u{1d17a}'
                | '\u{e0001}'
                | '\u{e0020}'..='\u{e007f}'
        )
}

fn escape(text: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    let needs = |c: char| is_unsafe(c) && !keep(c);
    let Some(first) = text.find(needs) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len() + 8);
    out.push_str(&text[..first]);
    for c in text[first..].chars() {
        if needs(c) {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_text_is_borrowed_as_it_is() {
        for text in [
            "",
            "WDJB-MJHT",
            "https://idp.example.org/activate?user_code=A B",
            "é ü 日本",
        ] {
            assert!(matches!(printable(text), Cow::Borrowed(t) if t == text));
            assert!(matches!(printable_lines(text), Cow::Borrowed(t) if t == text));
        }
    }

    #[test]
    fn every_control_character_is_escaped_visibly() {
        for c in (0u32..0x20).chain(0x7f..0xa0).filter_map(char::from_u32) {
            let shown = printable(&format!("a{c}b")).into_owned();
            assert_eq!(shown, format!("a\\u{{{:x}}}b", u32::from(c)));
            assert!(!shown.chars().any(char::is_control), "{shown:?}");
        }
        assert_eq!(printable("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(printable("abc\u{202e}gpj.exe"), "abc\\u{202e}gpj.exe");
    }

    #[test]
    fn bidi_controls_separators_and_invisible_format_characters_are_escaped() {
        let hidden = [
            // Unicode's `Bidi_Control` set.
            '\u{061c}',
            '\u{200e}',
            '\u{200f}',
            '\u{202a}',
            '\u{202b}',
            '\u{202c}',
            '\u{202d}',
            '\u{202e}',
            '\u{2066}',
            '\u{2067}',
            '\u{2068}',
            '\u{2069}',
            // Line and paragraph separators.
            '\u{2028}',
            '\u{2029}', // Invisible format characters.
            '\u{200b}',
            '\u{200c}',
            '\u{200d}',
            '\u{2060}',
            '\u{2061}',
            '\u{2062}',
            '\u{2063}',
            '\u{2064}',
            '\u{206a}',
            '\u{206b}',
            '\u{206c}',
            '\u{206d}',
            '\u{206e}',
            '\u{206f}',
            '\u{feff}',
            '\u{fff9}',
            '\u{fffa}',
            '\u{fffb}',
            '\u{00ad}',
            '\u{180e}',
            '\u{1bca0}',
            '\u{1bca3}',
            '\u{1d173}',
            '\u{1d17a}',
            // Tag characters: a hidden copy of "hi".
            '\u{e0001}',
            '\u{e0020}',
            '\u{e0068}',
            '\u{e0069}',
            '\u{e007f}',
        ];
        for c in hidden {
            let expected = format!("a\\u{{{:x}}}b", u32::from(c));
            assert_eq!(
                printable(&format!("a{c}b")),
                expected,
                "U+{:04X}",
                u32::from(c)
            );
            assert_eq!(
                printable_lines(&format!("a{c}b")),
                expected,
                "U+{:04X}",
                u32::from(c)
            );
        }
        // Their neighbours are ordinary text.
        for c in [
            '\u{2010}', '\u{2027}', '\u{202f}', '\u{2065}', '\u{fffc}', '\u{fffd}',
        ] {
            let text = format!("a{c}b");
            assert!(
                matches!(printable(&text), Cow::Borrowed(_)),
                "U+{:04X}",
                u32::from(c)
            );
        }
    }

    #[test]
    fn osc_8_links_and_cleared_lines_cannot_hide_anything() {
        let forged = "\x1b]8;;https://evil.example\x07https://idp.example.org\x1b]8;;\x07";
        let shown = printable(forged);
        assert!(
            !shown.contains('\x1b') && !shown.contains('\x07'),
            "{shown}"
        );
        assert!(shown.contains("https://evil.example"), "{shown}");
    }

    #[test]
    fn lines_keep_line_breaks_and_tabs_only() {
        assert_eq!(printable("a\nb\tc"), "a\\u{a}b\\u{9}c");
        assert_eq!(printable_lines("a\nb\tc"), "a\nb\tc");
        assert_eq!(printable_lines("one\r\ntwo\r"), "one\ntwo\\u{d}");
        assert_eq!(printable_lines("\x1b[31mred"), "\\u{1b}[31mred");
    }
}
