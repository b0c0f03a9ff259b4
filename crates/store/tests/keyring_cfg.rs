//! The reader of the Flyte 2 SDK's `keyring.cfg` against Python's own `configparser`, on
//! thousands of generated texts: the same sections, options and values, or a refusal by both.
//!
//! Needs `python3` (any version the SDK supports).

#![cfg(feature = "keyring")]
#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use common::python;

/// Reads each text of the JSON list in `$INPUTS` as the SDK's backend does (a file read with
/// universal newlines into `ConfigParser(interpolation=None)`); prints the sections, or `null`
/// where configparser refuses the text.
const PYTHON_PARSE: &str = r#"
import configparser, io, json, os
out = []
for text in json.load(open(os.environ["INPUTS"], encoding="utf-8")):
    c = configparser.ConfigParser(interpolation=None)
    try:
        c.read_file(io.StringIO(text, newline=None))
    except configparser.Error:
        out.append(None)
        continue
    out.append([[s, [[k, v] for k, v in c._sections[s].items()]] for s in c.sections()])
print(json.dumps(out))
"#;

#[test]
fn keyring_cfg_is_read_as_python_s_configparser_reads_it() {
    let alphabet: Vec<char> = "[]=:;# \t\t\n\n\n\r\u{a0}aBé==tokensxyz".chars().collect();
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let inputs: Vec<String> = (0..5_000)
        .map(|_| {
            let len = (next() % 60) as usize;
            let start = if next() % 2 == 0 {
                "[s]\nkey = v\n"
            } else {
                ""
            };
            start
                .chars()
                .chain((0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]))
                .collect()
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("inputs.json");
    std::fs::write(&file, serde_json::to_string(&inputs).unwrap()).unwrap();
    let out = python(PYTHON_PARSE, &[("INPUTS", file.to_str().unwrap())]);
    let expected: Vec<Option<Vec<flyte_auth_store::IniSection>>> =
        serde_json::from_str(out.trim()).unwrap();

    let mut parsed = 0;
    for (text, python) in inputs.iter().zip(&expected) {
        let ours = flyte_auth_store::parse_ini(text);
        assert_eq!(&ours, python, "{text:?}");
        parsed += usize::from(ours.is_some());
    }
    assert!(parsed > 300, "only {parsed} texts parsed");
}
