//! Where the commands write.
//!
//! Commands write through a [`Console`] instead of `println!`, for two reasons:
//! `println!` panics when stdout is a closed pipe (`mtls-authz test … | head`),
//! and a CLI that is meant to be scripted must never end in a backtrace; and
//! unit tests can hand in buffers instead of the real streams.

use std::io::Write;

/// Standard output (results) and standard error (problems), as writers.
pub struct Console<'a> {
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
}

impl<'a> Console<'a> {
    /// A console over any two writers.
    pub fn new(out: &'a mut dyn Write, err: &'a mut dyn Write) -> Console<'a> {
        Console { out, err }
    }

    /// Write `text` and a newline to standard output.
    ///
    /// Write errors are ignored on purpose: the only realistic one is a reader
    /// that went away, and then there is nobody left to tell.
    pub fn out(&mut self, text: &str) {
        let _ = writeln!(self.out, "{text}");
    }

    /// Write `text` and a newline to standard error.
    pub fn err(&mut self, text: &str) {
        let _ = writeln!(self.err, "{text}");
    }

    /// Flush both streams (they may be buffered by the caller).
    pub fn flush(&mut self) {
        let _ = self.out.flush();
        let _ = self.err.flush();
    }
}
