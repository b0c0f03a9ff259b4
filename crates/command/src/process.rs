//! Runs the token command: a child process with a deadline, bounded output, and no hang when a
//! process it started keeps its pipes open.
//!
//! Everything here is blocking and runs on one helper thread per run (the "supervisor"); the
//! async side only waits for its answer. With std, `rustix` for the one system call std lacks,
//! and no `unsafe`:
//!
//! - the child gets no shell, a null stdin, and (on Unix) a process group of its own
//!   (`process_group(0)`), unless the command is interactive;
//! - stdout and stderr are read by one thread each, into shared buffers: stdout up to
//!   [`MAX_OUTPUT`] bytes (more stops the command at once), stderr keeping only its last
//!   [`STDERR_TAIL`] bytes;
//! - the supervisor polls `Child::try_wait` (1 ms, doubling up to 50 ms) while listening for
//!   the readers, and stops at the deadline, when the caller gave up, or on too much output;
//! - stopping means `SIGKILL` to the whole process group (`kill(-pgid, SIGKILL)` through
//!   `rustix`, since std cannot signal a group), then `Child::kill` as a backstop; the group is only signalled while its leader, our child, is
//!   not yet reaped, so its id cannot belong to anyone else;
//! - readers are waited for at most [`PIPE_GRACE`] after the child exited or was killed. A
//!   process that escaped the group (or, for an interactive command, any background process)
//!   may keep a pipe open: its reader thread is then left behind, blocked until that process
//!   closes the pipe, and nobody waits for it.

use std::{
    io::{self, Read},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc},
    thread,
    time::{Duration, Instant},
};

use flyte_auth_core::{Error, SecretString, text::printable_lines};
use zeroize::Zeroizing;

/// The most the command may print on stdout.
pub(crate) const MAX_OUTPUT: usize = 64 * 1024;
/// How much of the end of stderr is kept for error messages.
pub(crate) const STDERR_TAIL: usize = 4 * 1024;
/// How long the pipes may stay open after the command exited or was killed.
pub(crate) const PIPE_GRACE: Duration = Duration::from_secs(1);
/// How long a killed command may take to be reaped.
const REAP_GRACE: Duration = Duration::from_secs(5);
/// The longest pause between two checks of the child.
const MAX_POLL: Duration = Duration::from_millis(50);

/// What to run, and how long to give it.
pub(crate) struct Job {
    pub(crate) program: String,
    pub(crate) args: Vec<SecretString>,
    pub(crate) timeout: Duration,
    pub(crate) interactive: bool,
}

impl Job {
    /// What must not show in an error even where the command's stderr repeats it: each
    /// argument, and the value of each `--name=value` argument, of at least 8 bytes (shorter
    /// ones are too common to tell apart from ordinary words).
    pub(crate) fn secret_words(&self) -> Vec<&str> {
        let mut words = Vec::new();
        for arg in &self.args {
            let arg = arg.expose_secret().trim();
            words.push(arg);
            if let Some((_, value)) = arg.split_once('=') {
                words.push(value);
            }
        }
        words.retain(|w| w.len() >= 8);
        // Longest first, so that a value is not replaced inside its longer argument first.
        words.sort_by_key(|w| std::cmp::Reverse(w.len()));
        words
    }
}

/// A command that ran to its end.
pub(crate) struct Finished {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: Zeroizing<Vec<u8>>,
    pub(crate) stderr: Tail,
}

/// The end of a stream: at most [`STDERR_TAIL`] bytes worth showing.
#[derive(Debug, Default)]
pub(crate) struct Tail {
    bytes: Vec<u8>,
    truncated: bool,
}

impl Tail {
    fn push(&mut self, more: &[u8]) {
        self.bytes.extend_from_slice(more);
        if self.bytes.len() > 2 * STDERR_TAIL {
            let cut = self.bytes.len() - STDERR_TAIL;
            self.bytes.drain(..cut);
            self.truncated = true;
        }
    }

    /// The text for an error message: the last [`STDERR_TAIL`] bytes, lossy UTF-8, control
    /// characters (terminal escapes) but line breaks and tabs escaped visibly
    /// ([`printable_lines`]), every word of `hide` replaced by `[redacted]`.
    pub(crate) fn text(&self, hide: &[&str]) -> String {
        let start = self.bytes.len().saturating_sub(STDERR_TAIL);
        let truncated = self.truncated || start > 0;
        // Redacted before it is escaped: a hidden word holding a control character (a
        // coloured token) would no longer match once escaped.
        let mut raw = String::from_utf8_lossy(&self.bytes[start..]).into_owned();
        for word in hide {
            raw = raw.replace(word, "[redacted]");
        }
        let mut text = printable_lines(&raw).into_owned();
        if truncated {
            // The first line is probably cut: drop it and say that something came before.
            let rest = text.split_once('\n').map_or("", |(_, rest)| rest);
            text = format!("...\n{rest}");
        }
        text.trim().to_owned()
    }
}

enum Event {
    Stdout { overflow: bool },
    Stderr,
}

enum End {
    Exited(ExitStatus),
    TimedOut,
    Cancelled,
    Overflow,
    WaitFailed(io::Error),
}

/// Runs `job`, blocking; `cancelled` says whether the caller stopped waiting.
pub(crate) fn run(job: &Job, cancelled: &dyn Fn() -> bool) -> Result<Finished, Error> {
    let program = job.program.as_str();
    let mut command = Command::new(program);
    command
        .args(job.args.iter().map(SecretString::expose_secret))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if job.interactive {
        command.stdin(Stdio::inherit());
    } else {
        command.stdin(Stdio::null());
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
    }
    let own_group = cfg!(unix) && !job.interactive;
    let started = Instant::now();
    let deadline = started.checked_add(job.timeout);
    let mut child = command.spawn().map_err(|e| spawn_error(program, &e))?;

    let (events_tx, events) = mpsc::channel();
    let stdout = Arc::new(Mutex::new(Zeroizing::new(Vec::with_capacity(MAX_OUTPUT))));
    let stderr = Arc::new(Mutex::new(Tail::default()));
    if let Err(e) = spawn_readers(&mut child, &stdout, &stderr, &events_tx) {
        stop(&mut child, own_group);
        return Err(command_error(
            program,
            format!("could not read its output: {e}"),
            String::new(),
        ));
    }

    let mut open_pipes = 2;
    let mut pause = Duration::from_millis(1);
    let end = loop {
        match child.try_wait() {
            Ok(Some(status)) => break End::Exited(status),
            Ok(None) => {}
            Err(e) => break End::WaitFailed(e),
        }
        let now = Instant::now();
        let left = match deadline {
            Some(deadline) if deadline <= now => break End::TimedOut,
            Some(deadline) => deadline - now,
            None => MAX_POLL,
        };
        if cancelled() {
            break End::Cancelled;
        }
        // Also the pause between two polls: `events_tx` is alive, so this never returns early
        // with "disconnected".
        match events.recv_timeout(pause.min(left)) {
            Ok(Event::Stdout { overflow: true }) => break End::Overflow,
            Ok(_) => open_pipes -= 1,
            Err(_) => pause = (pause * 2).min(MAX_POLL),
        }
    };
    drop(events_tx);

    let stderr_text = || lock(&stderr).text(&job.secret_words());
    let status = match end {
        End::Exited(status) => status,
        stopped => {
            stop(&mut child, own_group);
            if matches!(stopped, End::TimedOut | End::Overflow) {
                wait_for_pipes(&events, &mut open_pipes);
            }
            let error = match stopped {
                End::TimedOut => Error::Timeout {
                    operation: format!("command `{program}`"),
                    after: job.timeout,
                },
                End::Overflow => overflow_error(program, stderr_text()),
                End::WaitFailed(e) => command_error(
                    program,
                    format!("could not wait for it: {e}"),
                    stderr_text(),
                ),
                End::Cancelled | End::Exited(_) => Error::Cancelled,
            };
            tracing::debug!(program, %error, "the token command was stopped");
            return Err(error);
        }
    };
    if wait_for_pipes(&events, &mut open_pipes) {
        return Err(overflow_error(program, stderr_text()));
    }
    if open_pipes > 0 {
        tracing::warn!(
            program,
            "the token command exited but a process it started still holds its output open; \
             using what it printed within {}s of its exit",
            PIPE_GRACE.as_secs_f32()
        );
    }
    tracing::debug!(program, %status, elapsed_ms = started.elapsed().as_millis(), "the token command finished");
    Ok(Finished {
        status,
        stdout: std::mem::take(&mut *lock(&stdout)),
        stderr: std::mem::take(&mut *lock(&stderr)),
    })
}

/// An [`Error::Command`].
pub(crate) fn command_error(program: &str, status: String, stderr: String) -> Error {
    Error::Command {
        program: program.to_owned(),
        status,
        stderr,
    }
}

fn overflow_error(program: &str, stderr: String) -> Error {
    command_error(
        program,
        format!(
            "printed more than {} KiB on standard output, which is not a token; it was stopped",
            MAX_OUTPUT / 1024
        ),
        stderr,
    )
}

fn spawn_error(program: &str, e: &io::Error) -> Error {
    let hint = match e.kind() {
        io::ErrorKind::NotFound => {
            "; check that it is installed and on PATH, or give its full path"
        }
        io::ErrorKind::PermissionDenied => "; check that the file is executable",
        _ => "",
    };
    command_error(
        program,
        format!("could not start: {e}{hint}"),
        String::new(),
    )
}

/// How [`describe`] begins for a command that exited with a code.
const EXITED: &str = "exit status ";

/// How a process ended, in words: `exit status 1`, `killed by signal 9`.
pub(crate) fn describe(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("{EXITED}{code}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        if let Some(signal) = status.signal() {
            return format!("killed by signal {signal}");
        }
    }
    status.to_string()
}

/// The exit code of the command whose failure `error` is, when it exited with one (not
/// killed, not started, not a token problem).
pub fn exit_code(error: &Error) -> Option<i32> {
    match error {
        Error::Command { status, .. } => status.strip_prefix(EXITED)?.parse().ok(),
        _ => None,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

type Stdout = Arc<Mutex<Zeroizing<Vec<u8>>>>;

fn spawn_readers(
    child: &mut Child,
    stdout: &Stdout,
    stderr: &Arc<Mutex<Tail>>,
    events: &mpsc::Sender<Event>,
) -> io::Result<()> {
    let mut out_pipe = child.stdout.take().expect("stdout is piped");
    let mut err_pipe = child.stderr.take().expect("stderr is piped");
    let (into, tx) = (Arc::clone(stdout), events.clone());
    thread::Builder::new()
        .name("flyte-auth-command-stdout".into())
        .spawn(move || {
            let overflow = read_stdout(&mut out_pipe, &into);
            // Close the pipe first: a command still writing gets EPIPE instead of waiting.
            drop(out_pipe);
            let _ = tx.send(Event::Stdout { overflow });
        })?;
    let (into, tx) = (Arc::clone(stderr), events.clone());
    thread::Builder::new()
        .name("flyte-auth-command-stderr".into())
        .spawn(move || {
            read_stderr(&mut err_pipe, &into);
            drop(err_pipe);
            let _ = tx.send(Event::Stderr);
        })?;
    Ok(())
}

/// Reads stdout to its end; `true` when it was longer than [`MAX_OUTPUT`].
fn read_stdout(pipe: &mut impl Read, into: &Mutex<Zeroizing<Vec<u8>>>) -> bool {
    let mut chunk = Zeroizing::new([0_u8; 8192]);
    loop {
        match pipe.read(&mut chunk[..]) {
            Ok(0) => return false,
            Ok(n) => {
                let mut out = lock(into);
                if out.len() + n > MAX_OUTPUT {
                    return true;
                }
                // Within the capacity reserved up front: no reallocation leaves a copy behind.
                out.extend_from_slice(&chunk[..n]);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::debug!(error = %e, "reading the token command's stdout failed");
                return false;
            }
        }
    }
}

fn read_stderr(pipe: &mut impl Read, into: &Mutex<Tail>) {
    let mut chunk = [0_u8; 8192];
    loop {
        match pipe.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => lock(into).push(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Waits up to [`PIPE_GRACE`] for the readers to reach the end of their pipes; `true` when
/// stdout overflowed meanwhile.
fn wait_for_pipes(events: &mpsc::Receiver<Event>, open_pipes: &mut u32) -> bool {
    let until = Instant::now() + PIPE_GRACE;
    while *open_pipes > 0 {
        let left = until.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(Event::Stdout { overflow: true }) => return true,
            Ok(_) => *open_pipes -= 1,
            Err(_) => break,
        }
    }
    false
}

/// Kills the command (and its process group, when it has its own) and reaps it.
fn stop(child: &mut Child, own_group: bool) {
    #[cfg(unix)]
    if own_group {
        kill_group(child);
    }
    #[cfg(not(unix))]
    let _ = own_group;
    if let Err(e) = child.kill() {
        tracing::debug!(error = %e, "killing the token command failed");
    }
    if wait_bounded(child, REAP_GRACE).is_none() {
        tracing::warn!(
            "the killed token command did not end within {}s; leaving it",
            REAP_GRACE.as_secs()
        );
    }
}

/// Sends `SIGKILL` to the process group `child` leads (`kill(-pgid, SIGKILL)`). Called only
/// while the leader is not reaped, so its group id cannot belong to anyone else.
#[cfg(unix)]
fn kill_group(child: &Child) {
    use rustix::process::{Pid, Signal, kill_process_group};
    if let Err(e) = kill_process_group(Pid::from_child(child), Signal::KILL) {
        tracing::debug!(error = %e, "could not signal the token command's process group");
    }
}

/// Waits for `child` at most `limit`; `None` when it is still running.
fn wait_bounded(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let until = Instant::now() + limit;
    let mut pause = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < until => {
                thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_keeps_its_end_and_says_it_was_cut() {
        let mut tail = Tail::default();
        for i in 0..5000 {
            tail.push(format!("line {i}\n").as_bytes());
        }
        let text = tail.text(&[]);
        assert!(text.starts_with("...\n"), "{text}");
        assert!(text.ends_with("line 4999"), "{text}");
        assert!(!text.contains("line 0\n"), "{text}");
        assert!(text.len() <= STDERR_TAIL + 4, "{}", text.len());
    }

    #[test]
    fn stderr_escapes_terminal_sequences_visibly_and_hides_words() {
        let mut tail = Tail::default();
        tail.push(b"\x1b[31merror\x1b[0m: token abcdefgh1234 rejected\r\n\xff\x1b]0;t\x07\rx");
        let text = tail.text(&["abcdefgh1234"]);
        // Escaped where they were, not dropped: nothing the command wrote is hidden.
        assert_eq!(
            text,
            "\\u{1b}[31merror\\u{1b}[0m: token [redacted] rejected\n\u{fffd}\\u{1b}]0;t\\u{7}\\u{d}x"
        );
    }

    #[test]
    fn a_hidden_word_holding_a_control_character_is_still_hidden() {
        let mut tail = Tail::default();
        tail.push(b"printed \x1b[32mtok-SECRET\x1b[0m twice\n");
        let text = tail.text(&["\x1b[32mtok-SECRET\x1b[0m"]);
        assert!(!text.contains("SECRET"), "{text}");
        assert_eq!(text, "printed [redacted] twice");
    }

    #[test]
    fn stdout_longer_than_the_limit_is_an_overflow() {
        let out = Mutex::new(Zeroizing::new(Vec::new()));
        assert!(!read_stdout(&mut &[b'a'; MAX_OUTPUT][..], &out));
        assert_eq!(lock(&out).len(), MAX_OUTPUT);
        let out = Mutex::new(Zeroizing::new(Vec::new()));
        assert!(read_stdout(&mut &[b'a'; MAX_OUTPUT + 1][..], &out));
    }

    #[cfg(unix)]
    #[test]
    fn statuses_read_like_words() {
        use std::os::unix::process::ExitStatusExt as _;
        assert_eq!(describe(ExitStatus::from_raw(3 << 8)), "exit status 3");
        assert_eq!(describe(ExitStatus::from_raw(9)), "killed by signal 9");
    }
}
