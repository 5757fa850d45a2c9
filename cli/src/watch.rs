//! `mtls-authz watch`: publish a policy now and again whenever it changes.
//!
//! The edit-and-reload loop for one Envoy (or one shared directory): the
//! watcher polls the policy file, and each new version is validated and
//! published as `mtls-authz publish` would (the ECDS resource file, replaced
//! atomically), or refused with the `check` lines while the last good version
//! stays published. Envoy picks the file up within milliseconds of the rename.
//!
//! Polling with the standard library only: the file is read every interval
//! (policies are small) and compared by content, which catches every change
//! whatever the file system's timestamp granularity. A new content is acted
//! on once it has been read the same on two consecutive polls, so an editor
//! that truncates and rewrites in place is not caught half-way (that would
//! log a spurious refusal). Worst case from save to published: two intervals.

use std::path::PathBuf;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use mtls_authz_policy::timefmt::format_rfc3339;

use crate::console::Console;
use crate::input::InputError;
use crate::publish::{check_target, publish_bytes, published_line, Outcome, Target};
use crate::Exit;

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The policy to watch and publish.
    #[arg(value_name = "POLICY.json")]
    pub policy: PathBuf,
    #[command(flatten)]
    pub target: Target,
    /// How often to look at the policy file, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 200, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub interval_ms: u64,
}

/// What one poll found: the file's bytes or why it could not be read.
pub type Read = Result<Vec<u8>, String>;

/// What to do after a poll.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing new (or a new content that has not settled yet).
    Wait,
    /// A settled new content: validate and publish it.
    Publish(Vec<u8>),
    /// The file cannot be read (said once per distinct problem).
    Unreadable(String),
}

/// The watcher's memory between polls; no I/O, so it is unit-tested.
#[derive(Debug, Default)]
pub struct Watcher {
    /// The content last acted on (published or refused).
    done: Option<Vec<u8>>,
    /// A new content seen once, waiting to be seen again.
    pending: Option<Vec<u8>>,
    /// The read problem last reported.
    problem: Option<String>,
    started: bool,
}

impl Watcher {
    pub fn step(&mut self, read: Read) -> Step {
        let first = !self.started;
        self.started = true;
        let bytes = match read {
            Ok(bytes) => bytes,
            Err(problem) => {
                self.pending = None;
                if self.problem.as_ref() == Some(&problem) {
                    return Step::Wait;
                }
                self.problem = Some(problem.clone());
                return Step::Unreadable(problem);
            }
        };
        self.problem = None;
        if self.done.as_ref() == Some(&bytes) {
            self.pending = None;
            return Step::Wait;
        }
        // At start-up the file is taken as it is; later, a change must hold for one interval.
        if first || self.pending.as_ref() == Some(&bytes) {
            self.pending = None;
            self.done = Some(bytes.clone());
            return Step::Publish(bytes);
        }
        self.pending = Some(bytes);
        Step::Wait
    }
}

/// `2026-11-27T09:44:31.123Z`
fn now() -> String {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    let base = format_rfc3339(secs);
    format!("{}.{:03}Z", base.trim_end_matches('Z'), d.subsec_millis())
}

/// `mtls-authz watch`: runs until it is killed.
pub fn run(args: &WatchArgs, console: &mut Console<'_>) -> Result<Exit, InputError> {
    check_target(&args.target)?;
    let origin = args.policy.display().to_string();
    let out = args.target.out.display().to_string();
    console.out(&format!("{} watching {origin} every {} ms; publishing to {out} (stop with Ctrl-C)", now(), args.interval_ms));
    console.flush();
    let mut watcher = Watcher::default();
    let mut published: Option<String> = None;
    loop {
        let read = std::fs::read(&args.policy).map_err(|e| e.to_string());
        match watcher.step(read) {
            Step::Wait => {}
            Step::Unreadable(problem) => {
                console.err(&format!("{} cannot read {origin}: {problem}; {}", now(), keeping(published.as_deref(), &out)))
            }
            Step::Publish(bytes) => match publish_bytes(&origin, &bytes, &args.target) {
                Ok(Outcome::Published(policy, written)) => {
                    console.out(&format!("{} {}", now(), published_line(&origin, &args.target.out, &policy, written)));
                    published = Some(policy.summary());
                }
                Ok(Outcome::Refused(lines)) => {
                    console.err(&format!("{} refused {origin}: not a valid policy; {}", now(), keeping(published.as_deref(), &out)));
                    console.err(&lines);
                }
                Err(e) => console.err(&format!("{} {e}; {}", now(), keeping(published.as_deref(), &out))),
            },
        }
        console.flush();
        thread::sleep(Duration::from_millis(args.interval_ms));
    }
}

fn keeping(published: Option<&str>, out: &str) -> String {
    match published {
        Some(summary) => format!("{out} keeps the last good policy ({summary})"),
        None => format!("{out} was not changed"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn ok(s: &str) -> Read {
        Ok(s.as_bytes().to_vec())
    }

    #[test]
    fn the_first_content_is_published_at_once() {
        let mut w = Watcher::default();
        assert_eq!(w.step(ok("a")), Step::Publish(b"a".to_vec()));
        assert_eq!(w.step(ok("a")), Step::Wait);
    }

    #[test]
    fn a_change_is_published_once_it_has_settled() {
        let mut w = Watcher::default();
        w.step(ok("a"));
        assert_eq!(w.step(ok("ab")), Step::Wait, "seen once: maybe half-written");
        assert_eq!(w.step(ok("abc")), Step::Wait, "still changing");
        assert_eq!(w.step(ok("abc")), Step::Publish(b"abc".to_vec()));
        assert_eq!(w.step(ok("abc")), Step::Wait);
    }

    #[test]
    fn going_back_to_the_published_content_is_nothing_new() {
        let mut w = Watcher::default();
        w.step(ok("a"));
        assert_eq!(w.step(ok("b")), Step::Wait);
        assert_eq!(w.step(ok("a")), Step::Wait);
        assert_eq!(w.step(ok("b")), Step::Wait, "b must settle again");
        assert_eq!(w.step(ok("b")), Step::Publish(b"b".to_vec()));
    }

    #[test]
    fn a_refused_content_is_not_retried_until_it_changes() {
        // The watcher does not know about validity: whatever was acted on is done.
        let mut w = Watcher::default();
        assert_eq!(w.step(ok("bad")), Step::Publish(b"bad".to_vec()));
        assert_eq!(w.step(ok("bad")), Step::Wait);
    }

    #[test]
    fn read_problems_are_reported_once_each() {
        let mut w = Watcher::default();
        w.step(ok("a"));
        assert_eq!(w.step(Err("gone".into())), Step::Unreadable("gone".into()));
        assert_eq!(w.step(Err("gone".into())), Step::Wait);
        assert_eq!(w.step(ok("a")), Step::Wait, "back as it was: nothing to publish");
        assert_eq!(w.step(Err("gone".into())), Step::Unreadable("gone".into()));
    }

    #[test]
    fn timestamps_have_milliseconds() {
        let t = now();
        assert_eq!(t.len(), 24, "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[19] == b'.', "{t}");
    }
}
