//! Whether a position in a buffer is inside a comment (`#` or `//`), read forward.
//!
//! A line is commented from a `#` that starts it or follows a blank (but not `#1`, a
//! number), or from a `//` that starts it. A `#` inside a quoted string (`"--port 80 #main"`) starts nothing. A quote
//! opens a string only where a value can start (not after a letter or digit, so `it's` is
//! no string); strings end at the line's end. This is not a lexer for any one language: it
//! knows no block comments, here-documents or multi-line strings.

/// Reads lines forward; asked about positions in increasing order, it reads each byte at most
/// once (and steps through only the lines it is asked about).
#[derive(Debug)]
pub(super) struct Comments<'a> {
    haystack: &'a [u8],
    /// Everything before `at` has been read.
    at: usize,
    /// The byte before `at` (a line break at the start).
    prev: u8,
    /// Only blanks so far on the line.
    blank: bool,
    /// The quote of the string `at` is in, if any.
    quote: Option<u8>,
    /// The byte before `at` is a backslash inside a double-quoted string.
    escaped: bool,
    /// The line is commented from before `at` on.
    commented: bool,
}

impl<'a> Comments<'a> {
    pub(super) fn new(haystack: &'a [u8]) -> Comments<'a> {
        Comments {
            haystack,
            at: 0,
            prev: b'\n',
            blank: true,
            quote: None,
            escaped: false,
            commented: false,
        }
    }

    /// Whether the line holding `pos` is commented out before `pos`.
    pub(super) fn is_commented(&mut self, pos: usize) -> bool {
        if pos < self.at {
            // Asked out of order: read the line again from its start.
            let line_start = memchr::memrchr(b'\n', &self.haystack[..pos]).map_or(0, |i| i + 1);
            *self = Comments {
                at: line_start,
                ..Comments::new(self.haystack)
            };
        }
        // Lines in between are skipped whole: only the line holding `pos` is read byte by byte.
        if let Some(i) = memchr::memrchr(b'\n', &self.haystack[self.at..pos]) {
            *self = Comments {
                at: self.at + i + 1,
                ..Comments::new(self.haystack)
            };
        }
        while self.at < pos {
            self.step();
        }
        self.commented
    }

    fn step(&mut self) {
        let b = self.haystack[self.at];
        if b == b'\n' {
            *self = Comments {
                at: self.at + 1,
                ..Comments::new(self.haystack)
            };
            return;
        }
        if self.commented {
        } else if let Some(quote) = self.quote {
            if self.escaped {
                self.escaped = false;
            } else if b == b'\\' && quote == b'"' {
                self.escaped = true;
            } else if b == quote {
                self.quote = None;
            }
        } else {
            match b {
                // Not `#` before a digit inside a line: a number (`Step #1`, `issue #12`).
                b'#' if self.blank
                    || (self.prev.is_ascii_whitespace()
                        && !self
                            .haystack
                            .get(self.at + 1)
                            .is_some_and(u8::is_ascii_digit)) =>
                {
                    self.commented = true;
                }
                b'/' if self.blank && self.haystack.get(self.at + 1) == Some(&b'/') => {
                    self.commented = true;
                }
                b'"' | b'\'' if !self.prev.is_ascii_alphanumeric() => self.quote = Some(b),
                _ => {}
            }
        }
        self.blank &= b.is_ascii_whitespace();
        self.prev = b;
        self.at += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commented_at(text: &str, needle: &str) -> bool {
        Comments::new(text.as_bytes()).is_commented(text.find(needle).unwrap())
    }

    #[test]
    fn a_hash_starting_a_line_or_after_a_blank_comments_the_rest() {
        assert!(commented_at("# image: x", "image"));
        assert!(commented_at("  #image: x", "image"));
        assert!(commented_at("// image: x", "image"));
        assert!(commented_at("a: b # image: x", "image"));
        assert!(!commented_at("a: b\nimage: x # c", "image"));
        assert!(!commented_at("a#b image: x", "image"));
        assert!(!commented_at("a // b image: x", "image"));
    }

    #[test]
    fn a_hash_inside_a_quoted_string_is_no_comment() {
        assert!(!commented_at(
            r#""args":["--port 80 #main"],"image":"x""#,
            "image"
        ));
        assert!(!commented_at("cmd: 'a # b' image: x", "image"));
        assert!(!commented_at(r#"a: "say \" # b" image: x"#, "image"));
        assert!(commented_at(r#"a: "s" # image: x"#, "image"));
        // An apostrophe opens no string.
        assert!(commented_at("it's # image: x", "image"));
    }

    #[test]
    fn positions_asked_out_of_order_are_answered_right() {
        let text = "a # b\nc: d image: x";
        let mut comments = Comments::new(text.as_bytes());
        assert!(!comments.is_commented(text.find("image").unwrap()));
        assert!(comments.is_commented(text.find('b').unwrap()));
        assert!(!comments.is_commented(text.find('c').unwrap()));
    }
}
