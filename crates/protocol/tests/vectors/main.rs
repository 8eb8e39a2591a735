//! Test-vector runner (README "Runner contract" in `vectors/`).
//!
//! Reads every `*.json` file in `$SESSION_VECTORS_DIR` (default: this crate's `vectors/`), runs
//! every entry through the handler for its kind, and fails on any mismatch, any unknown kind,
//! and any input or expected field the handler did not use.

mod harness;

mod blinding;
mod groups;
mod keys;
mod mnemonic;
mod network;
mod onion;
mod v1;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

use harness::{Case, Context, Handler};
use serde_json::Value;

fn handlers() -> HashMap<&'static str, Handler> {
    let mut all = HashMap::new();
    for (kind, handler) in [
        keys::handlers(),
        mnemonic::handlers(),
        v1::handlers(),
        blinding::handlers(),
        groups::handlers(),
        network::handlers(),
        onion::handlers(),
    ]
    .into_iter()
    .flatten()
    {
        assert!(all.insert(kind, handler).is_none(), "kind {kind} registered twice");
    }
    all
}

fn main() {
    let dir = std::env::var_os("SESSION_VECTORS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read vector directory {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();

    let mut entries = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let doc: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
        match doc.get("vectors").and_then(Value::as_array) {
            Some(list) => entries.extend(list.iter().cloned()),
            None => failures.push(format!("{}: no \"vectors\" array", path.display())),
        }
    }

    let ctx = Context::collect(&entries);
    let handlers = handlers();
    let mut summary: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut names = HashSet::new();
    let empty = serde_json::Map::new();
    for entry in &entries {
        let name = entry.get("name").and_then(Value::as_str).unwrap_or("<unnamed>");
        let kind = entry.get("kind").and_then(Value::as_str).unwrap_or("<no kind>");
        let counts = summary.entry(kind.to_owned()).or_default();
        let result = (|| {
            if !names.insert(name.to_owned()) {
                return Err("duplicate entry name".to_owned());
            }
            let handler = handlers.get(kind).ok_or_else(|| format!("unknown kind {kind}"))?;
            let inputs = entry.get("inputs").and_then(Value::as_object).unwrap_or(&empty);
            let expected = entry.get("expected").and_then(Value::as_object).unwrap_or(&empty);
            let case = Case::new(name, &ctx, inputs, expected);
            handler(&case)?;
            case.finish()
        })();
        match result {
            Ok(()) => counts.0 += 1,
            Err(reason) => {
                counts.1 += 1;
                failures.push(format!("{name} ({kind}): {reason}"));
            }
        }
    }

    println!(
        "vector files: {}",
        files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    );
    for (kind, (ok, bad)) in &summary {
        println!("  {kind:<36} {ok:>4} passed {bad:>4} failed");
    }
    for failure in &failures {
        println!("FAIL {failure}");
    }
    let passed: usize = summary.values().map(|c| c.0).sum();
    println!("vectors: {passed} passed, {} failed", failures.len());
    if !failures.is_empty() || entries.is_empty() {
        std::process::exit(1);
    }
}
