//! How `consume` prints a record: its value alone (`plain`), one JSON
//! object per line (`json`), or a kcat-style format string
//! (`'%k=%v (%p@%o)'`).

use std::io::Write;
use std::str::FromStr;

use kafkit_reader::Message;
use serde_json::Value;

/// One piece of a parsed format string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    Text(String),
    Topic,
    Partition,
    Offset,
    Timestamp,
    Key,
    KeyLen,
    Value,
    ValueLen,
    Headers,
}

/// How records are printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// The value, then a newline.
    Plain,
    /// One JSON object per line: topic, partition, offset, timestamp, key,
    /// value, headers. Keys and values that are not UTF-8 are given as
    /// `key_base64`/`value_base64` instead.
    Json,
    /// A format string.
    Template(Vec<Token>),
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Format, String> {
        match s {
            "plain" => return Ok(Format::Plain),
            "json" => return Ok(Format::Json),
            _ => {}
        }
        let mut tokens = Vec::new();
        let mut text = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            let token = match c {
                '%' => match chars.next() {
                    Some('t') => Token::Topic,
                    Some('p') => Token::Partition,
                    Some('o') => Token::Offset,
                    Some('T') => Token::Timestamp,
                    Some('k') => Token::Key,
                    Some('K') => Token::KeyLen,
                    Some('v' | 's') => Token::Value,
                    Some('S') => Token::ValueLen,
                    Some('h') => Token::Headers,
                    Some('%') => {
                        text.push('%');
                        continue;
                    }
                    Some(other) => return Err(format!("unknown format token %{other}")),
                    None => return Err("the format ends with a lone %".to_owned()),
                },
                '\\' => {
                    match chars.next() {
                        Some('n') => text.push('\n'),
                        Some('t') => text.push('\t'),
                        Some('\\') => text.push('\\'),
                        Some(other) => {
                            text.push('\\');
                            text.push(other);
                        }
                        None => text.push('\\'),
                    }
                    continue;
                }
                c => {
                    text.push(c);
                    continue;
                }
            };
            if !text.is_empty() {
                tokens.push(Token::Text(std::mem::take(&mut text)));
            }
            tokens.push(token);
        }
        if !text.ends_with('\n') {
            text.push('\n');
        }
        tokens.push(Token::Text(text));
        if tokens.len() == 1 {
            return Err(format!(
                "{s:?} is neither plain, json nor a format string with % tokens"
            ));
        }
        Ok(Format::Template(tokens))
    }
}

impl Format {
    /// Writes `m` to `out`.
    pub fn write(&self, out: &mut impl Write, m: &Message) -> std::io::Result<()> {
        match self {
            Format::Plain => {
                out.write_all(m.value_bytes())?;
                out.write_all(b"\n")
            }
            Format::Json => {
                out.write_all(to_json(m).as_bytes())?;
                out.write_all(b"\n")
            }
            Format::Template(tokens) => {
                for token in tokens {
                    match token {
                        Token::Text(t) => out.write_all(t.as_bytes())?,
                        Token::Topic => out.write_all(m.topic.as_bytes())?,
                        Token::Partition => write!(out, "{}", m.partition)?,
                        Token::Offset => write!(out, "{}", m.offset)?,
                        Token::Timestamp => write!(out, "{}", m.timestamp)?,
                        Token::Key => out.write_all(m.key_bytes())?,
                        Token::KeyLen => write!(out, "{}", len(m.key.as_deref()))?,
                        Token::Value => out.write_all(m.value_bytes())?,
                        Token::ValueLen => write!(out, "{}", len(m.value.as_deref()))?,
                        Token::Headers => {
                            for (i, h) in m.headers.iter().enumerate() {
                                if i > 0 {
                                    out.write_all(b",")?;
                                }
                                out.write_all(&h.key)?;
                                out.write_all(b"=")?;
                                out.write_all(h.value.as_deref().unwrap_or_default())?;
                            }
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

/// kcat prints -1 for the length of a null key or value.
fn len(bytes: Option<&[u8]>) -> i64 {
    bytes.map_or(-1, |b| b.len() as i64)
}

/// Writes `"name":"text"` (UTF-8), `"name_base64":"..."` (anything
/// else) or `"name":null`, preceded by a comma.
fn put_bytes(out: &mut String, name: &str, bytes: Option<&[u8]>) {
    use base64::Engine;
    match bytes {
        None => out.push_str(&format!(",\"{name}\":null")),
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) => out.push_str(&format!(",\"{name}\":{}", Value::from(s))),
            Err(_) => {
                let encoded = base64::engine::general_purpose::STANDARD.encode(b);
                out.push_str(&format!(",\"{name}_base64\":\"{encoded}\""));
            }
        },
    }
}

/// The JSON object of one record, fields in a fixed order: topic,
/// partition, offset, timestamp, key, value, headers.
pub fn to_json(m: &Message) -> String {
    let mut out = format!(
        "{{\"topic\":{},\"partition\":{},\"offset\":{},\"timestamp\":{}",
        Value::from(&*m.topic),
        m.partition,
        m.offset,
        m.timestamp
    );
    put_bytes(&mut out, "key", m.key.as_deref());
    put_bytes(&mut out, "value", m.value.as_deref());
    out.push_str(",\"headers\":[");
    for (i, h) in m.headers.iter().enumerate() {
        out.push_str(if i == 0 { "{" } else { ",{" });
        let mut header = String::new();
        put_bytes(&mut header, "key", Some(&h.key));
        put_bytes(&mut header, "value", h.value.as_deref());
        out.push_str(&header[1..]);
        out.push('}');
    }
    out.push_str("]}");
    out
}

/// A table printed with aligned columns, for the admin commands.
#[derive(Debug)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with this header row.
    pub fn new(header: &[&str]) -> Table {
        Table {
            rows: vec![header.iter().map(|h| (*h).to_owned()).collect()],
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text: columns padded to their widest cell, two spaces
    /// apart, no trailing spaces.
    pub fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|cell| cell.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                if c > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                let pad = widths[c].saturating_sub(cell.chars().count());
                line.extend(std::iter::repeat_n(' ', pad));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// Prints the table to stdout.
    pub fn print(&self) {
        print!("{}", self.render());
    }
}

/// A list of broker ids as `1,2,3`.
pub fn ids(ids: &[i32]) -> String {
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafkit_protocol::records::{RecordBatchBuilder, RecordSet};
    use kafkit_reader::TimestampType;

    fn message(key: Option<&[u8]>, value: Option<&[u8]>) -> Message {
        let mut b = RecordBatchBuilder::new(41);
        b.append(
            1_700_000_000_000,
            key,
            value,
            &[("h1", Some(b"a")), ("h2", None)],
        )
        .unwrap();
        let r = RecordSet::new(b.finish().unwrap())
            .records()
            .next()
            .unwrap()
            .unwrap();
        Message {
            topic: "orders".into(),
            partition: 2,
            offset: r.offset,
            key: r.key,
            value: r.value,
            headers: r.headers,
            timestamp: r.timestamp,
            timestamp_type: TimestampType::CreateTime,
            leader_epoch: None,
        }
    }

    fn render(format: &str, m: &Message) -> String {
        let mut out = Vec::new();
        format
            .parse::<Format>()
            .unwrap()
            .write(&mut out, m)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn templates_fill_every_token() {
        let m = message(Some(b"user-1"), Some(b"hello"));
        assert_eq!(render("%k=%v (%p@%o)", &m), "user-1=hello (2@41)\n");
        assert_eq!(
            render("%t %T %K %S %h 100%%\\n", &m),
            "orders 1700000000000 6 5 h1=a,h2= 100%\n"
        );
        let null = message(None, None);
        assert_eq!(render("[%k][%v] %K %S", &null), "[][] -1 -1\n");
    }

    #[test]
    fn bad_templates_are_refused() {
        assert!("%x".parse::<Format>().is_err());
        assert!("50%".parse::<Format>().is_err());
        assert!("no tokens".parse::<Format>().is_err());
        assert_eq!("plain".parse::<Format>().unwrap(), Format::Plain);
    }

    #[test]
    fn json_names_every_field_and_base64s_binary() {
        let m = message(Some(b"\xff\x00"), Some(b"hello"));
        let line = to_json(&m);
        assert!(
            line.starts_with(r#"{"topic":"orders","partition":2,"offset":41,"#),
            "{line}"
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["topic"], "orders");
        assert_eq!(v["partition"], 2);
        assert_eq!(v["offset"], 41);
        assert_eq!(v["timestamp"], 1_700_000_000_000i64);
        assert_eq!(v["value"], "hello");
        assert_eq!(v["key_base64"], "/wA=");
        assert!(v.get("key").is_none());
        assert_eq!(v["headers"][0]["key"], "h1");
        assert_eq!(v["headers"][0]["value"], "a");
        assert_eq!(v["headers"][1]["value"], Value::Null);
        assert_eq!(render("plain", &m), "hello\n");
        let line = render("json", &m);
        assert!(line.ends_with("}\n") && line.matches('\n').count() == 1);
        let quoted = message(Some(b"a\"b"), None);
        let v: Value = serde_json::from_str(&to_json(&quoted)).unwrap();
        assert_eq!(
            (v["key"].as_str(), &v["value"]),
            (Some("a\"b"), &Value::Null)
        );
        assert_eq!(v["headers"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn tables_align_columns() {
        let mut t = Table::new(&["TOPIC", "PARTITIONS"]);
        t.row(vec!["orders".into(), "12".into()]);
        t.row(vec!["a".into(), "1".into()]);
        assert_eq!(t.render(), "TOPIC   PARTITIONS\norders  12\na       1\n");
        assert_eq!(ids(&[1, 2, 3]), "1,2,3");
    }
}
