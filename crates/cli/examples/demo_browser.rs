//! A stand-in for the person at the browser, for `cargo xtask demo`: it plays the user of the
//! local test identity provider of `flyte-auth-tests` (`tests/idp`), whose login and consent
//! pages it knows. It works with no other identity provider.
//!
//! ```text
//! demo_browser <authorization-url>             # browser login: sign in, approve, follow the
//!                                              # redirect to the client's loopback callback
//! demo_browser <verification-url> <user-code>  # device login: enter the code, sign in, approve
//! demo_browser <verification-url-with-code>    # the same, the code taken from `?user_code=`
//! ```
//!
//! As `$BROWSER` for `flyte-auth token` it completes the browser login the CLI starts. A browser
//! started that way has no terminal, so when `FLYTE_AUTH_DEMO_BROWSER_LOG` names a file, what it
//! did (or why it failed) is appended there.

use std::{io::Write as _, process::ExitCode, time::Duration};

use flyte_auth_tests::Browser;
use url::Url;

/// The whole login may take this long.
const LIMIT: Duration = Duration::from_secs(60);

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match tokio::time::timeout(LIMIT, act(&args)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(format!("gave up after {LIMIT:?}")),
    };
    let line = match &outcome {
        Ok(done) => format!("demo_browser: {done}"),
        Err(e) => format!("demo_browser: failed: {e}"),
    };
    eprintln!("{line}");
    if let Some(path) = std::env::var_os("FLYTE_AUTH_DEMO_BROWSER_LOG")
        && let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    {
        let _ = writeln!(file, "{line}");
    }
    if outcome.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn act(args: &[String]) -> Result<String, String> {
    let (url, code) = match args {
        [url] => (parse(url)?, None),
        [url, code] => (parse(url)?, Some(code.clone())),
        _ => {
            return Err(
                "usage: demo_browser <authorization-url> | <verification-url> [<user-code>]".into(),
            );
        }
    };
    let code = code.or_else(|| {
        url.query_pairs()
            .find(|(name, _)| name == "user_code")
            .map(|(_, value)| value.into_owned())
    });
    let browser = Browser::new();
    if let Some(code) = code {
        let mut page = url.clone();
        page.set_query(None);
        browser
            .approve_device_code(&page, &code)
            .await
            .map_err(|e| e.to_string())?;
        Ok(format!(
            "signed in as {} and approved code {code}",
            browser.username()
        ))
    } else {
        let answer = browser
            .complete_login(&url)
            .await
            .map_err(|e| e.to_string())?;
        if answer.status() >= 400 {
            return Err(format!(
                "the login callback answered HTTP {}",
                answer.status()
            ));
        }
        Ok(format!(
            "signed in as {} and came back to {}",
            browser.username(),
            callback_origin(answer.redirect_url())
        ))
    }
}

fn parse(url: &str) -> Result<Url, String> {
    Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))
}

/// `http://127.0.0.1:PORT/callback`, without the code and state.
fn callback_origin(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.to_string()
}
