//! A strict JSON scanner for the common case of reading an object's fields: the fast path of
//! `read_fields`.
//!
//! It reads well-formed JSON without `\u` escapes in the strings it decodes and without deep
//! nesting, and gives up (`None`) on anything else: invalid JSON, a `\u` escape in a key or a
//! decoded string, nesting deeper than [`DEPTH_MAX`]. serde_json then reads the text again and
//! says what is wrong with it, so an error names the same fault, with the same words, whichever
//! reader met it first. What the scanner accepts serde_json accepts too, with the same fields
//! (the parser's tests compare the two readers on generated and mutated JSON).
//!
//! Why: an order's JSON is small and its fields few, and serde_json's general machinery (a
//! visitor per value, a copy of every raw value's text, an escape at a time) was most of the
//! parse; an SNS envelope's `Message` (the order, as a JSON string with an escape every few
//! bytes) costs serde_json a call per escape.
//!
//! A scanner can also read JSON that is itself the text of a JSON string, without decoding the
//! string first (`QUOTED`): the SNS envelope's `Message`, `{\"orderId\":\"O1\",\n ...}`, where
//! `\"` is a quote and `\n`, `\t`, `\r` are whitespace. It reads the strings of that JSON as
//! borrowed text, so it gives up on any string holding an escape of its own (which the string's
//! text writes as `\\` and more), and on objects and lists other than an order's lines (whose raw
//! text would be escaped); the reader then decodes the `Message` and reads the order from its
//! text, as before. The escape tokens of the outer string are one or two bytes (`\uXXXX` is
//! left to the decoding), and the scanner always stands between two of them: a backslash it
//! meets starts an escape of the outer string.

use std::borrow::Cow;

/// Nesting deeper than this is left to serde_json (which reads any depth in a raw value).
const DEPTH_MAX: usize = 32;

/// Bytes that end a run of plain string text: the quote, the backslash and the control
/// characters JSON does not allow unescaped in a string.
const SPECIAL: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// A position in a JSON text; `QUOTED`: in JSON written as a JSON string's text (see above),
/// the position being in that string.
pub(super) struct Scanner<'a, const QUOTED: bool = false> {
    text: &'a str,
    at: usize,
}

impl<'a> Scanner<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        Scanner { text, at: 0 }
    }
}

impl<'a, const QUOTED: bool> Scanner<'a, QUOTED> {
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    /// The next byte, if any. Quoted: a quote for `\"`, 0 (no byte JSON has outside a string)
    /// for any other escape, and `None` at the string's closing quote.
    pub(super) fn peek(&self) -> Option<u8> {
        let b = *self.bytes().get(self.at)?;
        if QUOTED {
            match b {
                b'\\' => {
                    return Some(match self.bytes().get(self.at + 1) {
                        Some(b'"') => b'"',
                        _ => 0,
                    })
                }
                b'"' => return None,
                _ => {}
            }
        }
        Some(b)
    }

    /// Skips JSON whitespace (quoted: spaces, and the escapes `\n`, `\t` and `\r`).
    pub(super) fn whitespace(&mut self) {
        if QUOTED {
            let bytes = self.bytes();
            loop {
                match bytes.get(self.at) {
                    Some(b' ') => self.at += 1,
                    Some(b'\\') if matches!(bytes.get(self.at + 1), Some(b'n' | b't' | b'r')) => {
                        self.at += 2
                    }
                    _ => return,
                }
            }
        }
        self.at += self.bytes()[self.at..]
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\n' | b'\t' | b'\r'))
            .count();
    }

    /// Consumes `byte` when it is next.
    pub(super) fn eat(&mut self, byte: u8) -> Option<()> {
        let len = if QUOTED && byte == b'"' { 2 } else { 1 };
        (self.peek()? == byte).then(|| self.at += len)
    }

    /// At a string's opening quote: what `read` reads from the JSON the string's text holds,
    /// read without decoding it, when that JSON is all the string holds; the scanner is then
    /// after the string. `None`, with the scanner where it was, where `read` gives up or more
    /// follows, and in a quoted scanner (a string in a string is read decoded).
    pub(super) fn quoted<T>(
        &mut self,
        read: impl FnOnce(&mut Scanner<'a, true>) -> Option<T>,
    ) -> Option<T> {
        if QUOTED || self.peek()? != b'"' {
            return None;
        }
        let mut inner = Scanner::<'a, true> {
            text: self.text,
            at: self.at + 1,
        };
        inner.whitespace();
        let value = read(&mut inner)?;
        inner.whitespace();
        (inner.bytes().get(inner.at) == Some(&b'"')).then(|| self.at = inner.at + 1)?;
        Some(value)
    }

    /// Whether only whitespace is left.
    pub(super) fn at_end(&mut self) -> bool {
        self.whitespace();
        self.at == self.text.len()
    }

    /// Skips plain string text: up to the next special byte.
    fn plain(&mut self) -> Option<()> {
        self.at += self.bytes()[self.at..]
            .iter()
            .position(|b| SPECIAL[usize::from(*b)])?;
        Some(())
    }

    /// At a string's opening quote: its text, decoded (borrowed when it has no escape). `None`
    /// for a `\u` escape, which serde_json decodes (surrogate pairs, and the lone surrogates no
    /// Rust string can hold).
    /// Quoted: as [`Scanner::quoted_string`].
    pub(super) fn string(&mut self) -> Option<Cow<'a, str>> {
        if QUOTED {
            return self.quoted_string().map(Cow::Borrowed);
        }
        self.eat(b'"')?;
        let start = self.at;
        self.plain()?;
        if self.eat(b'"').is_some() {
            // Every special byte is ASCII: the positions are character boundaries.
            return Some(Cow::Borrowed(&self.text[start..self.at - 1]));
        }
        // Decoded a byte at a time into a buffer as long as the rest of the text (or 4 KiB),
        // which an escape-dense string (JSON in JSON) copies fastest: a run between two escapes
        // is a few bytes.
        let bytes = self.bytes();
        let mut out = Vec::with_capacity((bytes.len() - start).min(4096));
        out.extend_from_slice(&bytes[start..self.at]);
        // A local position, which the loop keeps in a register.
        let mut at = self.at;
        loop {
            let b = *bytes.get(at)?;
            if !SPECIAL[usize::from(b)] {
                out.push(b);
                at += 1;
                continue;
            }
            match b {
                b'"' => {
                    self.at = at + 1;
                    // Escapes decode to ASCII and the rest was copied whole from a `str`.
                    return String::from_utf8(out).ok().map(Cow::Owned);
                }
                b'\\' => {
                    out.push(match *bytes.get(at + 1)? {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 0x08,
                        b'f' => 0x0c,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        _ => return None,
                    });
                    at += 2;
                }
                _ => return None,
            }
        }
    }

    /// Quoted, at a string's opening quote (`\"`): its text, when it holds no escape of its own.
    pub(super) fn quoted_string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.at;
        self.plain()?;
        // The backslash plain text stops at starts an escape of the outer string: the closing
        // quote, or an escape in the text (left to the decoding reader).
        if self.bytes().get(self.at..self.at + 2)? != b"\\\"" {
            return None;
        }
        self.at += 2;
        Some(&self.text[start..self.at - 2])
    }

    /// At a string's opening quote: skips it, checking its escapes (a `\u` escape takes any four
    /// hex digits here, as serde_json's raw values do).
    fn skip_string(&mut self) -> Option<()> {
        self.eat(b'"')?;
        loop {
            self.plain()?;
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return Some(());
                }
                b'\\' => {
                    let bytes = self.bytes();
                    match *bytes.get(self.at + 1)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.at += 2,
                        b'u' => {
                            let hex = bytes.get(self.at + 2..self.at + 6)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            self.at += 6;
                        }
                        _ => return None,
                    }
                }
                _ => return None,
            }
        }
    }

    /// One or more digits.
    fn digits(&mut self) -> Option<()> {
        let start = self.at;
        while let Some(b'0'..=b'9') = self.peek() {
            self.at += 1;
        }
        (self.at > start).then_some(())
    }

    /// A number in JSON's grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number(&mut self) -> Option<()> {
        let _ = self.eat(b'-');
        match self.peek()? {
            b'0' => {
                self.at += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    return None;
                }
            }
            b'1'..=b'9' => self.digits()?,
            _ => return None,
        }
        if self.eat(b'.').is_some() {
            self.digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            self.digits()?;
        }
        Some(())
    }

    fn literal(&mut self, word: &str) -> Option<()> {
        self.text[self.at..]
            .starts_with(word)
            .then(|| self.at += word.len())
    }

    /// At a value (after whitespace): skips it and gives its text. Quoted: numbers, `true`,
    /// `false` and `null` only (any other value's text would be escaped).
    pub(super) fn value(&mut self) -> Option<&'a str> {
        self.value_at(0)
    }

    fn value_at(&mut self, depth: usize) -> Option<&'a str> {
        let start = self.at;
        match self.peek()? {
            b'"' if !QUOTED => self.skip_string()?,
            b'{' if !QUOTED && depth < DEPTH_MAX => {
                self.at += 1;
                self.whitespace();
                if self.eat(b'}').is_none() {
                    loop {
                        self.whitespace();
                        self.skip_string()?;
                        self.whitespace();
                        self.eat(b':')?;
                        self.whitespace();
                        self.value_at(depth + 1)?;
                        self.whitespace();
                        match self.peek()? {
                            b',' => self.at += 1,
                            b'}' => {
                                self.at += 1;
                                break;
                            }
                            _ => return None,
                        }
                    }
                }
            }
            b'[' if !QUOTED && depth < DEPTH_MAX => {
                self.at += 1;
                self.whitespace();
                if self.eat(b']').is_none() {
                    loop {
                        self.whitespace();
                        self.value_at(depth + 1)?;
                        self.whitespace();
                        match self.peek()? {
                            b',' => self.at += 1,
                            b']' => {
                                self.at += 1;
                                break;
                            }
                            _ => return None,
                        }
                    }
                }
            }
            b't' => self.literal("true")?,
            b'f' => self.literal("false")?,
            b'n' => self.literal("null")?,
            b'-' | b'0'..=b'9' => self.number()?,
            _ => return None,
        }
        Some(&self.text[start..self.at])
    }
}
