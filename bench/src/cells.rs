//! Table cells of the report's settings tables: sizes made readable
//! (`64 MiB`), and a setting's value as a cell.

use serde_json::Value;

use crate::report::Settings;

/// Bytes the way a person reads them: `64 MiB`, `1 KiB`, `1000000 B`.
pub fn bytes(n: u64) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} B")
    }
}

/// Free text with `N B` and `N KiB` in it, the numbers made readable.
fn humanize(text: &str) -> String {
    let words: Vec<&str> = text.split(' ').collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let unit = words
            .get(i + 1)
            .map(|u| u.trim_end_matches([',', ';', ')']));
        let scale = match unit {
            Some("B") => Some(1),
            Some("KiB") => Some(1024),
            _ => None,
        };
        match (words[i].parse::<u64>(), scale) {
            (Ok(n), Some(scale)) => {
                let rest = &words[i + 1][unit.map_or(0, str::len)..];
                out.push(format!("{}{rest}", bytes(n * scale)));
                i += 2;
            }
            _ => {
                out.push(words[i].to_owned());
                i += 1;
            }
        }
    }
    out.join(" ")
}

/// A setting as a table cell; `as_bytes` for sizes.
pub fn cell(settings: &Settings, key: &str, as_bytes: bool) -> String {
    let text = match settings.get(key) {
        None | Some(Value::Null) => return "-".to_owned(),
        Some(Value::Bool(b)) => return if *b { "yes" } else { "no" }.to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    };
    match text.parse::<f64>() {
        Ok(n) if as_bytes && n >= 0.0 && n.fract() == 0.0 => bytes(n as u64),
        _ => humanize(&text).replace('|', "/"),
    }
}

/// The producer's batch limit: bytes, and records when there is a limit.
pub fn batch(settings: &Settings) -> String {
    let b = cell(settings, "batch_max_bytes", true);
    match settings.get("batch_max_records") {
        Some(Value::Number(n)) => format!("{b}, {n} records"),
        _ => b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_well() {
        assert_eq!(bytes(1 << 20), "1 MiB");
        assert_eq!(bytes(52428800), "50 MiB");
        assert_eq!(bytes(16384), "16 KiB");
        assert_eq!(bytes(1000012), "1000012 B");
        assert_eq!(
            humanize("65536 KiB, 100000 records per partition"),
            "64 MiB, 100000 records per partition"
        );
        assert_eq!(humanize("67108864 B"), "64 MiB");
        assert_eq!(humanize("5 per broker"), "5 per broker");
        let s = settings(serde_json::json!({"a": "1048576", "b": 500, "c": null}));
        assert_eq!(cell(&s, "a", true), "1 MiB");
        assert_eq!(cell(&s, "b", false), "500");
        assert_eq!(cell(&s, "c", false), "-");
    }

    fn settings(v: Value) -> Settings {
        v.as_object().unwrap().clone()
    }
}
