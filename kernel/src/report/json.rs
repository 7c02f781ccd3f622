//! A minimal JSON writer for the machine-readable report: objects, arrays,
//! strings, numbers, booleans and null, written into a `String`.

use alloc::string::String;
use core::fmt::Write;

pub struct Json {
    out: String,
    /// Whether the next value in the current container needs a comma.
    first: bool,
}

impl Json {
    pub fn new() -> Self {
        Self { out: String::new(), first: true }
    }

    pub fn finish(self) -> String {
        self.out
    }

    fn sep(&mut self) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
    }

    fn key(&mut self, k: &str) {
        self.sep();
        self.string_raw(k);
        self.out.push(':');
        self.first = true; // the value that follows needs no comma
    }

    fn string_raw(&mut self, s: &str) {
        self.out.push('"');
        for c in s.chars() {
            match c {
                '"' => self.out.push_str("\\\""),
                '\\' => self.out.push_str("\\\\"),
                '\n' => self.out.push_str("\\n"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(self.out, "\\u{:04x}", c as u32);
                }
                c => self.out.push(c),
            }
        }
        self.out.push('"');
    }

    /// Open an object, as a field `k` (or as an array element when `k` is None).
    pub fn begin_object(&mut self, k: Option<&str>) {
        match k {
            Some(k) => self.key(k),
            None => self.sep(),
        }
        self.out.push('{');
        self.first = true;
    }

    pub fn end_object(&mut self) {
        self.out.push('}');
        self.first = false;
    }

    pub fn begin_array(&mut self, k: Option<&str>) {
        match k {
            Some(k) => self.key(k),
            None => self.sep(),
        }
        self.out.push('[');
        self.first = true;
    }

    pub fn end_array(&mut self) {
        self.out.push(']');
        self.first = false;
    }

    pub fn str(&mut self, k: &str, v: &str) {
        self.key(k);
        self.sep();
        self.string_raw(v);
    }

    pub fn num(&mut self, k: &str, v: u64) {
        self.key(k);
        self.sep();
        let _ = write!(self.out, "{v}");
    }

    pub fn bool(&mut self, k: &str, v: bool) {
        self.key(k);
        self.sep();
        self.out.push_str(if v { "true" } else { "false" });
    }

    pub fn null(&mut self, k: &str) {
        self.key(k);
        self.sep();
        self.out.push_str("null");
    }

    /// An array element that is a string.
    pub fn item_str(&mut self, v: &str) {
        self.sep();
        self.string_raw(v);
    }

    /// An array element that is a number.
    pub fn item_num(&mut self, v: u64) {
        self.sep();
        let _ = write!(self.out, "{v}");
    }
}
