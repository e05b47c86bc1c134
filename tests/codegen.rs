//! Drift test: the committed `src/generated/models.rs` must be exactly what the generator
//! makes of `openapi/queues.json`.
//!
//! Regenerate after editing the spec or the generator:
//!
//! ```text
//! UPDATE_CODEGEN=1 cargo test --test codegen
//! ```

#[path = "codegen/generator.rs"]
mod generator;

use serde_json::Value;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const REGENERATE: &str = "UPDATE_CODEGEN=1 cargo test --test codegen";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn committed_path() -> PathBuf {
    root().join("src/generated/models.rs")
}

/// Runs the generator on a spec file and formats the result with rustfmt.
fn generate_from(spec_path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(spec_path)
        .map_err(|e| format!("read {}: {e}", spec_path.display()))?;
    let spec: Value =
        serde_json::from_str(&text).map_err(|e| format!("parse {}: {e}", spec_path.display()))?;
    let raw = generator::render(&spec)?;
    rustfmt(&raw)
}

fn rustfmt(code: &str) -> Result<String, String> {
    let rustfmt = std::env::var("RUSTFMT").unwrap_or_else(|_| "rustfmt".to_owned());
    let mut child = Command::new(rustfmt)
        .args(["--edition", "2024"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!("could not start rustfmt (is the rustfmt component installed?): {e}")
        })?;
    child
        .stdin
        .take()
        .ok_or("rustfmt stdin")?
        .write_all(code.as_bytes())
        .map_err(|e| format!("write to rustfmt: {e}"))?;
    let output = child
        .wait_with_output()
        .map_err(|e| format!("rustfmt: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "rustfmt rejected the generated code:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    String::from_utf8(output.stdout).map_err(|e| format!("rustfmt output: {e}"))
}

/// Compares what the spec generates with the committed file; `Err` carries a readable diff.
fn check_drift(spec_path: &Path, committed: &str) -> Result<(), String> {
    let fresh = generate_from(spec_path)?;
    if fresh == committed {
        return Ok(());
    }
    let mut report = format!(
        "src/generated/models.rs no longer matches {}.\nRun `{REGENERATE}` and commit the result.\nFirst differences (- committed, + generated):\n",
        spec_path.display()
    );
    let (old, new): (Vec<_>, Vec<_>) = (committed.lines().collect(), fresh.lines().collect());
    let mut shown = 0;
    for i in 0..old.len().max(new.len()) {
        let (a, b) = (old.get(i), new.get(i));
        if a != b {
            if let Some(a) = a {
                report.push_str(&format!("{:>5} - {a}\n", i + 1));
            }
            if let Some(b) = b {
                report.push_str(&format!("{:>5} + {b}\n", i + 1));
            }
            shown += 1;
            if shown == 12 {
                break;
            }
        }
    }
    Err(report)
}

#[test]
fn generated_models_match_the_spec() {
    let spec = root().join("openapi/queues.json");
    if std::env::var_os("UPDATE_CODEGEN").is_some() {
        let fresh = generate_from(&spec).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(committed_path(), fresh).expect("write src/generated/models.rs");
        return;
    }
    let committed =
        std::fs::read_to_string(committed_path()).expect("read src/generated/models.rs");
    if let Err(report) = check_drift(&spec, &committed) {
        panic!("{report}");
    }
}

/// Each edit below is a realistic spec change; the drift check must notice every one.
#[test]
fn an_edited_spec_is_reported_as_drift() {
    let original: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("openapi/queues.json")).unwrap())
            .unwrap();
    let committed = std::fs::read_to_string(committed_path()).unwrap();
    let dir = std::env::temp_dir().join(format!("cfq-codegen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    type Edit = fn(&mut Value);
    let edits: [(&str, Edit); 5] = [
        ("rename a wire field", |s| {
            let props = s
                .pointer_mut("/components/schemas/AckResult/properties")
                .unwrap();
            let v = props.as_object_mut().unwrap().remove("ackCount").unwrap();
            props["acknowledgedCount"] = v;
        }),
        ("drop a field", |s| {
            s.pointer_mut("/components/schemas/PulledMessage/properties")
                .unwrap()
                .as_object_mut()
                .unwrap()
                .remove("lease_id");
        }),
        ("add an enum value", |s| {
            s.pointer_mut("/components/schemas/Jurisdiction/enum")
                .unwrap()
                .as_array_mut()
                .unwrap()
                .push("apac".into());
        }),
        ("change a field's type", |s| {
            s.pointer_mut("/components/schemas/PullRequest/properties/batch_size/x-rust-type")
                .map(|v| *v = "u64".into())
                .unwrap();
        }),
        ("move an endpoint", |s| {
            let paths = s.get_mut("paths").unwrap().as_object_mut().unwrap();
            let item = paths
                .remove("/accounts/{account_id}/queues/{queue_id}/messages/pull")
                .unwrap();
            paths.insert("/accounts/{account_id}/queues/{queue_id}/pull".into(), item);
        }),
    ];

    // The untouched spec, written to the same place, passes: the check is not trivially failing.
    let copy = dir.join("unchanged.json");
    std::fs::write(&copy, serde_json::to_string_pretty(&original).unwrap()).unwrap();
    check_drift(&copy, &committed).expect("an unchanged copy of the spec must not drift");

    for (what, edit) in edits {
        let mut spec = original.clone();
        edit(&mut spec);
        let path = dir.join("edited.json");
        std::fs::write(&path, serde_json::to_string_pretty(&spec).unwrap()).unwrap();
        let report = check_drift(&path, &committed).expect_err(what);
        assert!(
            report.contains(REGENERATE),
            "{what}: the report must say how to fix it"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Names of the operation constants in the generated table (`ops::NAME`, without `ALL`).
fn operation_names(generated: &str) -> Vec<&str> {
    generated
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub const "))
        .filter_map(|l| l.strip_suffix(": Operation = Operation {"))
        .collect()
}

/// Directories under `src/` that are not client code. The generated table names every
/// operation; the emulator's router (and the program that runs it) serves every one.
/// Neither says anything about whether the client calls them.
const NOT_CLIENT: &[&str] = &["generated", "emulator", "bin"];

/// The code (comments and test modules dropped) of every handwritten client source
/// file under `dir`, except `skip` (a path relative to `src/`, for the self-test).
fn client_code(dir: &Path, skip: Option<&str>) -> String {
    let src = root().join("src");
    let mut code = String::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src/") {
            let path = entry.expect("dir entry").path();
            let relative = path.strip_prefix(&src).expect("under src/");
            if path.is_dir() {
                if !NOT_CLIENT.iter().any(|d| relative == Path::new(d)) {
                    dirs.push(path);
                }
                continue;
            }
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !name.ends_with(".rs")
                || name.ends_with("_tests.rs")
                || skip.is_some_and(|s| relative == Path::new(s))
            {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("read source");
            for line in text.lines() {
                // Unit tests sit at the end of a file, after `#[cfg(test)]`: not client code.
                if line.trim_start().starts_with("#[cfg(test)]") {
                    break;
                }
                // A mention in a comment is not a use.
                code.push_str(line.split("//").next().unwrap_or(""));
                code.push('\n');
            }
        }
    }
    code
}

/// The operations `code` never refers to as `ops::NAME` (as a whole identifier).
fn unreferenced<'n>(names: &[&'n str], code: &str) -> Vec<&'n str> {
    names
        .iter()
        .copied()
        .filter(|name| {
            let needle = format!("ops::{name}");
            !code.match_indices(&needle).any(|(i, _)| {
                let next = code[i + needle.len()..].chars().next();
                !next.is_some_and(|c| c.is_alphanumeric() || c == '_')
            })
        })
        .collect()
}

/// Every operation of the spec is reachable from the client: each `ops::NAME` constant of
/// the generated table (except the `ALL` list) is referenced as `ops::NAME` in
/// handwritten client code (not the emulator, not tests). A new endpoint in the spec
/// fails this until the client calls it.
#[test]
fn every_operation_is_used_by_the_client() {
    let generated = std::fs::read_to_string(committed_path()).expect("read models.rs");
    let names = operation_names(&generated);
    assert!(
        names.len() >= 25,
        "expected the operation table in models.rs, found {names:?}"
    );
    let unused = unreferenced(&names, &client_code(&root().join("src"), None));
    assert!(
        unused.is_empty(),
        "operations in the spec that no handwritten client code calls: {unused:?}"
    );
}

/// The check above can fail, and only client code counts: without the file that calls
/// the purge operations they are reported, although the emulator's code names them all.
#[test]
fn the_operation_check_ignores_the_emulator() {
    let generated = std::fs::read_to_string(committed_path()).expect("read models.rs");
    let names = operation_names(&generated);
    // In the order of the generated table (sorted by name).
    let purge_ops = [
        "PEEK_MESSAGES",
        "PURGE_MESSAGES",
        "PURGE_STATUS",
        "START_PURGE",
    ];

    let without_purge = client_code(&root().join("src"), Some("api/purge.rs"));
    let unused = unreferenced(&names, &without_purge);
    assert_eq!(
        unused, purge_ops,
        "exactly the purge file's operations go missing"
    );

    // Counting the emulator would have hidden the gap: it refers to every one of them.
    let emulator = client_code(&root().join("src/emulator"), None);
    let unrouted = unreferenced(&purge_ops, &emulator);
    assert!(unrouted.is_empty(), "the emulator dispatches {unrouted:?}?");
}
