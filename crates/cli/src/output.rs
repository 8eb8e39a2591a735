//! Printing results: one JSON object with `--json`, aligned `name: value` lines otherwise.

use serde_json::{Map, Value};

/// What a command produced: named fields in the order a person should read them.
#[derive(Debug, Default)]
pub struct Report {
    fields: Vec<(&'static str, Value)>,
}

impl Report {
    /// Adds a field.
    pub fn field(mut self, name: &'static str, value: impl Into<Value>) -> Self {
        self.fields.push((name, value.into()));
        self
    }
}

/// Prints the report on stdout.
pub fn print(report: &Report, json: bool) {
    if json {
        let object: Map<String, Value> =
            report.fields.iter().map(|(name, value)| ((*name).to_owned(), value.clone())).collect();
        println!("{}", Value::Object(object));
        return;
    }
    let width = report.fields.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    for (name, value) in &report.fields {
        let text = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        println!("{:<width$}  {text}", format!("{}:", name.replace('_', " ")), width = width + 1);
    }
}
