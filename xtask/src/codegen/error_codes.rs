//! `error_code.rs`: the `ErrorCode` newtype generated from `errors.tsv`.

use std::fmt::Write as _;

use anyhow::{Context, Result, bail};

pub struct ErrorRow {
    pub code: i16,
    pub name: String,
    pub retriable: bool,
    pub message: String,
}

/// Parses the tab-separated table (header row `code name retriable message`).
pub fn parse(tsv: &str) -> Result<Vec<ErrorRow>> {
    let mut lines = tsv.lines();
    let header = lines.next().context("errors.tsv is empty")?;
    if header.split('\t').collect::<Vec<_>>() != ["code", "name", "retriable", "message"] {
        bail!("errors.tsv: unexpected header `{header}`");
    }
    let mut rows = Vec::new();
    for (i, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.splitn(4, '\t').collect();
        if cols.len() < 3 {
            bail!("errors.tsv line {}: too few columns", i + 2);
        }
        let name = cols[1].trim().to_string();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        {
            bail!("errors.tsv line {}: bad name `{name}`", i + 2);
        }
        rows.push(ErrorRow {
            code: cols[0]
                .trim()
                .parse()
                .with_context(|| format!("errors.tsv line {}: bad code", i + 2))?,
            name,
            retriable: match cols[2].trim() {
                "true" => true,
                "false" => false,
                o => bail!("errors.tsv line {}: bad retriable `{o}`", i + 2),
            },
            message: cols
                .get(3)
                .map(|m| m.trim().to_string())
                .unwrap_or_default(),
        });
    }
    let mut codes: Vec<i16> = rows.iter().map(|r| r.code).collect();
    codes.sort_unstable();
    if codes.windows(2).any(|w| w[0] == w[1]) {
        bail!("errors.tsv: duplicate code");
    }
    Ok(rows)
}

pub fn emit(rows: &[ErrorRow]) -> String {
    let mut consts = String::new();
    let mut names = String::new();
    let mut descs = String::new();
    for r in rows {
        let doc = if r.message.is_empty() {
            "No error.".to_string()
        } else {
            r.message.clone()
        };
        let retri = if r.retriable { " Retriable." } else { "" };
        let _ = writeln!(
            consts,
            "/// `{}` ({}): {doc}{retri}\npub const {}: ErrorCode = ErrorCode({});",
            r.name, r.code, r.name, r.code
        );
        let _ = writeln!(names, "{} => \"{}\",", r.code, r.name);
        let _ = writeln!(descs, "{} => {:?},", r.code, r.message);
    }
    let retriable: Vec<String> = rows
        .iter()
        .filter(|r| r.retriable)
        .map(|r| r.code.to_string())
        .collect();
    let all: Vec<String> = rows
        .iter()
        .map(|r| format!("ErrorCode::{}", r.name))
        .collect();
    format!(
        r#"//! Kafka protocol error codes, from the table in Kafka's `Errors.java`.

use std::fmt;

/// A Kafka protocol error code, as carried in `error_code` fields.
///
/// This is an open newtype: codes this crate does not know (from newer
/// brokers) are kept as they are and print as `unknown error code N`.
///
/// Generated messages type their error-code fields (`error_code`,
/// `top_level_error_code`, ...) as `ErrorCode`; on the wire it is an `int16`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ErrorCode(pub i16);

impl Default for ErrorCode {{
/// [`ErrorCode::NONE`].
fn default() -> Self {{
ErrorCode::NONE
}}
}}

impl ErrorCode {{
{consts}
/// Every known error code, in numeric order.
pub const ALL: [ErrorCode; {n}] = [{all}];

/// True for `NONE` (0).
pub const fn is_ok(self) -> bool {{
self.0 == 0
}}

/// True for any code other than `NONE`.
pub const fn is_err(self) -> bool {{
self.0 != 0
}}

/// `Ok(())` for `NONE`, else `Err(self)`, for use with `?`.
pub const fn into_result(self) -> Result<(), ErrorCode> {{
if self.0 == 0 {{ Ok(()) }} else {{ Err(self) }}
}}

/// True when the request may succeed if retried (Kafka's
/// `RetriableException` errors). Unknown codes are not retriable.
pub const fn is_retriable(self) -> bool {{
matches!(self.0, {retriable})
}}

/// The upper-case name, for example `UNKNOWN_TOPIC_OR_PARTITION`.
pub const fn name(self) -> Option<&'static str> {{
Some(match self.0 {{
{names}_ => return None,
}})
}}

/// Kafka's default message for the error (empty for `NONE`).
pub const fn description(self) -> Option<&'static str> {{
Some(match self.0 {{
{descs}_ => return None,
}})
}}
}}

impl From<i16> for ErrorCode {{
fn from(code: i16) -> Self {{
ErrorCode(code)
}}
}}

impl From<ErrorCode> for i16 {{
fn from(code: ErrorCode) -> Self {{
code.0
}}
}}

impl fmt::Debug for ErrorCode {{
fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {{
match self.name() {{
Some(name) => write!(f, "ErrorCode::{{name}}({{}})", self.0),
None => write!(f, "ErrorCode({{}})", self.0),
}}
}}
}}

impl fmt::Display for ErrorCode {{
fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {{
match (self.name(), self.description()) {{
(Some(name), Some(desc)) if !desc.is_empty() => write!(f, "{{name}} ({{}}): {{desc}}", self.0),
(Some(name), _) => write!(f, "{{name}} ({{}})", self.0),
_ => write!(f, "unknown error code {{}}", self.0),
}}
}}
}}

impl std::error::Error for ErrorCode {{}}

#[cfg(test)]
mod tests {{
use super::*;

#[test]
fn known_codes() {{
assert!(ErrorCode::NONE.is_ok());
assert_eq!(ErrorCode::default(), ErrorCode::NONE);
assert!(!ErrorCode::NONE.is_err());
assert_eq!(ErrorCode::NONE.into_result(), Ok(()));
assert_eq!(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, ErrorCode(3));
assert!(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.is_retriable());
assert!(ErrorCode::NOT_LEADER_OR_FOLLOWER.is_retriable());
assert!(!ErrorCode::TOPIC_AUTHORIZATION_FAILED.is_retriable());
assert_eq!(ErrorCode(-1).name(), Some("UNKNOWN_SERVER_ERROR"));
assert_eq!(ErrorCode::ALL.len(), {n});
assert_eq!(ErrorCode::ALL.iter().filter(|c| c.is_retriable()).count(), {nretri});
}}

#[test]
fn display_and_unknown_codes() {{
let s = ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.to_string();
assert!(s.starts_with("UNKNOWN_TOPIC_OR_PARTITION (3): "), "{{s}}");
assert_eq!(ErrorCode::NONE.to_string(), "NONE (0)");
assert_eq!(ErrorCode(9999).to_string(), "unknown error code 9999");
assert_eq!(ErrorCode(9999).name(), None);
assert!(!ErrorCode(9999).is_retriable());
assert_eq!(format!("{{:?}}", ErrorCode(3)), "ErrorCode::UNKNOWN_TOPIC_OR_PARTITION(3)");
let e: Box<dyn std::error::Error> = Box::new(ErrorCode::REQUEST_TIMED_OUT);
assert!(e.to_string().contains("REQUEST_TIMED_OUT"));
}}
}}
"#,
        n = rows.len(),
        all = all.join(", "),
        retriable = retriable.join(" | "),
        nretri = retriable.len(),
    )
}
