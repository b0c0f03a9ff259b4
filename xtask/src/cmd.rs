//! Running child processes: the one place where xtask starts commands, echoes them and
//! bounds how long they may take.

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A `cargo` command, run from the workspace root with the same cargo that runs xtask.
pub(crate) fn cargo<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(args).current_dir(crate::workspace_root());
    cmd
}

/// Runs `cmd` with the terminal as its stdin/stdout/stderr, echoing it first.
///
/// Fails when the command cannot start, exits unsuccessfully or runs longer than `limit`
/// (it is then killed).
pub(crate) fn run(cmd: &mut Command, limit: Duration) -> Result<(), String> {
    println!("$ {}", show(cmd));
    let mut child = cmd
        .spawn()
        .map_err(|err| format!("cannot start `{}`: {err}", show(cmd)))?;
    let status = wait(&mut child, limit, cmd)?;
    check(status, cmd)
}

/// Runs `cmd` without echoing it and returns its standard output (stderr goes to the terminal).
///
/// Same failure rules as [`run`].
pub(crate) fn capture(cmd: &mut Command, limit: Duration) -> Result<String, String> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|err| format!("cannot start `{}`: {err}", show(cmd)))?;
    // Read stdout on another thread so a chatty child never blocks on a full pipe.
    let mut stdout = child.stdout.take().expect("stdout was requested as a pipe");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).map(|_| text)
    });
    let status = wait(&mut child, limit, cmd)?;
    let text = reader
        .join()
        .expect("the stdout reader thread does not panic")
        .map_err(|err| format!("cannot read the output of `{}`: {err}", show(cmd)))?;
    check(status, cmd)?;
    Ok(text)
}

/// The command line as a person would type it: `RUSTDOCFLAGS='-D warnings' cargo doc ...`.
pub(crate) fn show(cmd: &Command) -> String {
    let mut line = String::new();
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            let _ = write!(
                line,
                "{}={} ",
                key.to_string_lossy(),
                quote(&value.to_string_lossy())
            );
        }
    }
    let program = Path::new(cmd.get_program())
        .file_name()
        .unwrap_or(cmd.get_program())
        .to_string_lossy();
    line.push_str(&program);
    for arg in cmd.get_args() {
        line.push(' ');
        line.push_str(&quote(&arg.to_string_lossy()));
    }
    line
}

fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+%{}|".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

fn wait(child: &mut Child, limit: Duration, cmd: &Command) -> Result<ExitStatus, String> {
    let started = Instant::now();
    loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|err| format!("cannot wait for `{}`: {err}", show(cmd)))?
        {
            return Ok(status);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "`{}` did not finish within {} s and was stopped",
                show(cmd),
                limit.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn check(status: ExitStatus, cmd: &Command) -> Result<(), String> {
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed ({status})", show(cmd)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_environment_and_quotes_words_with_spaces() {
        let mut cmd = Command::new("/usr/bin/cargo");
        cmd.env("RUSTDOCFLAGS", "-D warnings")
            .args(["doc", "--workspace", "it's"]);
        assert_eq!(
            show(&cmd),
            r"RUSTDOCFLAGS='-D warnings' cargo doc --workspace 'it'\''s'"
        );
    }

    #[test]
    fn capture_returns_stdout_and_run_reports_failure() {
        let out = capture(
            Command::new("sh").args(["-c", "echo hello"]),
            Duration::from_secs(30),
        )
        .expect("sh -c echo succeeds");
        assert_eq!(out, "hello\n");

        let err = run(
            Command::new("sh").args(["-c", "exit 3"]),
            Duration::from_secs(30),
        )
        .expect_err("exit 3 is a failure");
        assert!(err.contains("exit status: 3"), "{err}");
    }

    #[test]
    fn a_command_over_its_time_limit_is_stopped() {
        let started = Instant::now();
        let err = run(Command::new("sleep").arg("30"), Duration::from_millis(200))
            .expect_err("sleep 30 outlives a 200 ms limit");
        assert!(err.contains("did not finish"), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(25),
            "the child was not killed"
        );
    }
}
