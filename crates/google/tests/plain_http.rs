#![allow(clippy::unwrap_used, reason = "tests")]
//! The metadata server speaks plain HTTP by design: asking it raises no plain-HTTP warning.
//! (A test binary of its own: the warning is given once per process.)

use std::{
    io,
    sync::{Arc, Mutex},
    time::Duration,
};

use flyte_auth_core::TokenFlow as _;
use flyte_auth_google::{GoogleIdTokenFlow, Sources};
use flyte_auth_oauth::{HttpSettings, OAuthClient};

/// Appends what the log writes to a shared buffer.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_metadata_server_on_a_non_loopback_name_raises_no_plain_http_warning() {
    let logs = Capture::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // `.invalid` never resolves: the metadata server does not answer, within its time-out.
    let flow = GoogleIdTokenFlow::builder("aud")
        .http_client(OAuthClient::new(HttpSettings::new().system_proxy(false)).unwrap())
        .sources(Sources::none().metadata_host("metadata.invalid"))
        .metadata_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let err = runtime.block_on(flow.login()).unwrap_err();
    assert!(err.to_string().contains("no Google credentials"), "{err}");

    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(!logged.contains("plain HTTP"), "{logged}");
}
