//! Parsing Kafka's JSON message definitions into a small typed model.
//!
//! The files are JSON with `//` line comments; [`strip_comments`] removes
//! them (leaving `//` inside string literals alone) before `serde_json`
//! parses the rest.

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;

/// An inclusive version interval. `hi == i16::MAX` means "and later";
/// `lo > hi` is the empty set ("none").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versions {
    pub lo: i16,
    pub hi: i16,
}

impl Versions {
    pub const NONE: Versions = Versions { lo: 1, hi: 0 };

    /// Parses `"N"`, `"N-M"`, `"N+"` or `"none"`.
    pub fn parse(s: &str) -> Result<Versions> {
        let s = s.trim();
        let num = |t: &str| -> Result<i16> {
            t.trim()
                .parse::<i16>()
                .map_err(|_| anyhow!("bad version number `{t}` in `{s}`"))
        };
        let v = if s == "none" {
            Versions::NONE
        } else if let Some(lo) = s.strip_suffix('+') {
            Versions {
                lo: num(lo)?,
                hi: i16::MAX,
            }
        } else if let Some((lo, hi)) = s.split_once('-') {
            let v = Versions {
                lo: num(lo)?,
                hi: num(hi)?,
            };
            if v.lo > v.hi {
                bail!("empty version range `{s}`");
            }
            v
        } else {
            let n = num(s)?;
            Versions { lo: n, hi: n }
        };
        if v.lo < 0 {
            bail!("negative version in `{s}`");
        }
        Ok(v)
    }

    pub fn is_empty(self) -> bool {
        self.lo > self.hi
    }

    pub fn intersect(self, o: Versions) -> Versions {
        let r = Versions {
            lo: self.lo.max(o.lo),
            hi: self.hi.min(o.hi),
        };
        if r.is_empty() { Versions::NONE } else { r }
    }

    /// The smallest interval holding both.
    pub fn hull(self, o: Versions) -> Versions {
        if self.is_empty() {
            o
        } else if o.is_empty() {
            self
        } else {
            Versions {
                lo: self.lo.min(o.lo),
                hi: self.hi.max(o.hi),
            }
        }
    }

    /// True when every version of `o` is in `self`.
    pub fn covers(self, o: Versions) -> bool {
        o.is_empty() || (self.lo <= o.lo && o.hi <= self.hi)
    }

    /// Human form for doc comments: `3+`, `0-2`, `5`, `none`.
    pub fn describe(self) -> String {
        if self.is_empty() {
            "none".into()
        } else if self.hi == i16::MAX {
            format!("{}+", self.lo)
        } else if self.lo == self.hi {
            format!("{}", self.lo)
        } else {
            format!("{}-{}", self.lo, self.hi)
        }
    }
}

/// Removes `//` line comments, keeping string literals (and any `//` in
/// them) intact, and keeping newlines so that parse errors point at the
/// right line.
pub fn strip_comments(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut chars = src.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match c {
                '\\' => {
                    if let Some(n) = chars.next() {
                        out.push(n);
                    }
                }
                '"' => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if c == '/' && chars.peek() == Some(&'/') {
            for n in chars.by_ref() {
                if n == '\n' {
                    out.push('\n');
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldType {
    Bool,
    Int8,
    Int16,
    Int32,
    Int64,
    Uint16,
    Uint32,
    Float64,
    String,
    Bytes,
    Records,
    Uuid,
    Array(Box<FieldType>),
    Struct(String),
}

impl FieldType {
    pub fn parse(s: &str) -> Result<FieldType> {
        Ok(match s {
            "bool" => FieldType::Bool,
            "int8" => FieldType::Int8,
            "int16" => FieldType::Int16,
            "int32" => FieldType::Int32,
            "int64" => FieldType::Int64,
            "uint16" => FieldType::Uint16,
            "uint32" => FieldType::Uint32,
            "float64" => FieldType::Float64,
            "string" => FieldType::String,
            "bytes" => FieldType::Bytes,
            "records" => FieldType::Records,
            "uuid" => FieldType::Uuid,
            _ => {
                if let Some(inner) = s.strip_prefix("[]") {
                    let inner = FieldType::parse(inner)?;
                    if matches!(inner, FieldType::Array(_)) {
                        bail!("nested arrays are not supported: `{s}`");
                    }
                    FieldType::Array(Box::new(inner))
                } else if s.starts_with(|c: char| c.is_ascii_uppercase()) {
                    FieldType::Struct(s.to_string())
                } else {
                    bail!("unknown field type `{s}`")
                }
            }
        })
    }

    /// The struct this type names, directly or as array element.
    pub fn struct_name(&self) -> Option<&str> {
        match self {
            FieldType::Struct(n) => Some(n),
            FieldType::Array(inner) => inner.struct_name(),
            _ => None,
        }
    }

    pub fn can_be_null(&self) -> bool {
        matches!(
            self,
            FieldType::String
                | FieldType::Bytes
                | FieldType::Records
                | FieldType::Array(_)
                | FieldType::Struct(_)
        )
    }
}

#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    pub ty: FieldType,
    pub versions: Versions,
    pub nullable: Versions,
    pub tag: Option<u32>,
    pub tagged: Versions,
    pub ignorable: bool,
    pub default: Option<String>,
    pub about: String,
    pub map_key: bool,
    pub entity_type: Option<String>,
    pub flexible_override: Option<Versions>,
    /// Inline struct definition, for struct and struct-array fields.
    pub fields: Option<Vec<Field>>,
}

#[derive(Debug, Clone)]
pub struct StructDef {
    pub name: String,
    pub fields: Vec<Field>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request,
    Response,
    Header,
    Data,
}

#[derive(Debug, Clone)]
pub struct MessageSpec {
    pub name: String,
    pub kind: Kind,
    pub api_key: Option<i16>,
    pub valid: Versions,
    pub flexible: Versions,
    pub fields: Vec<Field>,
    pub common_structs: Vec<StructDef>,
    pub latest_unstable: bool,
    /// Which server endpoints accept a request (`broker`, `controller`).
    pub listeners: Vec<String>,
}

fn str_of<'a>(v: &'a Value, key: &str, ctx: &str) -> Result<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("{ctx}: missing string `{key}`"))
}

fn opt_versions(v: &Value, key: &str, ctx: &str) -> Result<Option<Versions>> {
    match v.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Versions::parse(s)
            .map(Some)
            .with_context(|| format!("{ctx}: `{key}`")),
        Some(other) => bail!("{ctx}: `{key}` is not a string: {other}"),
    }
}

/// A JSON value that may be written as a string, number or bool.
fn loose_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn loose_bool(v: &Value, key: &str) -> Result<bool> {
    match v.get(key) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s == "true" || s == "false" => Ok(s == "true"),
        Some(other) => bail!("`{key}` is not a bool: {other}"),
    }
}

fn parse_fields(v: &Value, ctx: &str) -> Result<Vec<Field>> {
    let Some(arr) = v.get("fields") else {
        return Ok(Vec::new());
    };
    let arr = arr
        .as_array()
        .ok_or_else(|| anyhow!("{ctx}: `fields` is not an array"))?;
    arr.iter().map(|f| parse_field(f, ctx)).collect()
}

fn parse_field(v: &Value, parent: &str) -> Result<Field> {
    let name = str_of(v, "name", parent)?.to_string();
    let ctx = format!("{parent}.{name}");
    let ty = FieldType::parse(str_of(v, "type", &ctx)?).with_context(|| ctx.clone())?;
    let versions = Versions::parse(str_of(v, "versions", &ctx)?).with_context(|| ctx.clone())?;
    let nullable = opt_versions(v, "nullableVersions", &ctx)?.unwrap_or(Versions::NONE);
    if !nullable.is_empty() && !ty.can_be_null() {
        bail!("{ctx}: type {ty:?} cannot be nullable");
    }
    let tag = match v.get("tag") {
        None => None,
        Some(t) => Some(t.as_u64().ok_or_else(|| anyhow!("{ctx}: bad tag"))? as u32),
    };
    let tagged = opt_versions(v, "taggedVersions", &ctx)?.unwrap_or(Versions::NONE);
    if tag.is_some() == tagged.is_empty() {
        bail!("{ctx}: `tag` and `taggedVersions` must come together");
    }
    if !versions.covers(tagged) {
        bail!("{ctx}: taggedVersions outside versions");
    }
    let fields = if v.get("fields").is_some() {
        Some(parse_fields(v, &ctx)?)
    } else {
        None
    };
    if fields.is_some() && ty.struct_name().is_none() {
        bail!("{ctx}: inline fields on a non-struct type");
    }
    Ok(Field {
        name,
        ty,
        versions,
        nullable,
        tag,
        tagged,
        ignorable: loose_bool(v, "ignorable").with_context(|| ctx.clone())?,
        default: v
            .get("default")
            .map(|d| loose_string(d).ok_or_else(|| anyhow!("{ctx}: bad default")))
            .transpose()?,
        about: v
            .get("about")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        map_key: loose_bool(v, "mapKey").with_context(|| ctx.clone())?,
        entity_type: v
            .get("entityType")
            .and_then(Value::as_str)
            .map(str::to_string),
        flexible_override: opt_versions(v, "flexibleVersions", &ctx)?,
        fields,
    })
}

/// Parses one definition file. Returns `None` for the `validVersions: "none"` stubs.
pub fn parse_message(src: &str, file: &str) -> Result<Option<MessageSpec>> {
    let json: Value =
        serde_json::from_str(&strip_comments(src)).with_context(|| format!("parsing {file}"))?;
    let name = str_of(&json, "name", file)?.to_string();
    let valid = Versions::parse(str_of(&json, "validVersions", file)?)?;
    if valid.is_empty() {
        return Ok(None);
    }
    let kind = match str_of(&json, "type", file)? {
        "request" => Kind::Request,
        "response" => Kind::Response,
        "header" => Kind::Header,
        "data" => Kind::Data,
        other => bail!("{file}: unsupported message type `{other}`"),
    };
    let api_key = json.get("apiKey").and_then(Value::as_i64).map(|k| k as i16);
    if matches!(kind, Kind::Request | Kind::Response) && api_key.is_none() {
        bail!("{file}: request/response without apiKey");
    }
    let flexible = opt_versions(&json, "flexibleVersions", file)?.unwrap_or(Versions::NONE);
    if !flexible.is_empty() && flexible.hi != i16::MAX {
        bail!("{file}: flexibleVersions must be open-ended");
    }
    let mut common_structs = Vec::new();
    if let Some(cs) = json.get("commonStructs").and_then(Value::as_array) {
        for s in cs {
            let sname = str_of(s, "name", file)?.to_string();
            let fields = parse_fields(s, &format!("{name}/{sname}"))?;
            common_structs.push(StructDef {
                name: sname,
                fields,
            });
        }
    }
    Ok(Some(MessageSpec {
        fields: parse_fields(&json, &name)?,
        name,
        kind,
        api_key,
        valid,
        flexible,
        common_structs,
        latest_unstable: loose_bool(&json, "latestVersionUnstable")?,
        listeners: json
            .get("listeners")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_strings() {
        assert_eq!(Versions::parse("3").unwrap(), Versions { lo: 3, hi: 3 });
        assert_eq!(Versions::parse("0-2").unwrap(), Versions { lo: 0, hi: 2 });
        assert_eq!(
            Versions::parse("12+").unwrap(),
            Versions {
                lo: 12,
                hi: i16::MAX
            }
        );
        assert!(Versions::parse("none").unwrap().is_empty());
        assert!(Versions::parse("3-1").is_err());
        assert!(Versions::parse("x").is_err());
        assert!(Versions::parse("-1").is_err());
        assert_eq!(Versions::parse("4+").unwrap().describe(), "4+");
        assert_eq!(Versions::parse("1-3").unwrap().describe(), "1-3");
    }

    #[test]
    fn version_set_operations() {
        let a = Versions::parse("3+").unwrap();
        let b = Versions::parse("0-5").unwrap();
        assert_eq!(a.intersect(b), Versions { lo: 3, hi: 5 });
        assert!(Versions::parse("0-2").unwrap().intersect(a).is_empty());
        assert!(Versions::parse("0+").unwrap().covers(b));
        assert!(!b.covers(a));
        assert_eq!(Versions::NONE.hull(b), b);
        assert_eq!(
            Versions::parse("7").unwrap().hull(b),
            Versions { lo: 0, hi: 7 }
        );
    }

    #[test]
    fn comments_are_stripped_but_strings_kept() {
        let src = "// header\n{ \"a\": \"http://x//y\", // trailing\n  \"b\": \"q\\\"//z\" }\n";
        let out = strip_comments(src);
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["a"], "http://x//y");
        assert_eq!(v["b"], "q\"//z");
        assert_eq!(out.lines().count(), src.lines().count());
        assert!(!out.contains("trailing"));
    }

    #[test]
    fn parses_a_small_message() {
        let src = r#"{ "apiKey": 1, "type": "request", "name": "FooRequest",
          "validVersions": "0-3", "flexibleVersions": "2+",
          "fields": [
            { "name": "A", "type": "int32", "versions": "0+", "default": "0x7fffffff" },
            { "name": "B", "type": "[]Bar", "versions": "1+", "nullableVersions": "2+",
              "fields": [ { "name": "C", "type": "string", "versions": "1+", "mapKey": true } ] },
            { "name": "D", "type": "int64", "versions": "2+", "tag": 0, "taggedVersions": "2+", "default": -1 }
          ] }"#;
        let m = parse_message(src, "t").unwrap().unwrap();
        assert_eq!(m.fields.len(), 3);
        assert_eq!(m.fields[0].default.as_deref(), Some("0x7fffffff"));
        assert_eq!(
            m.fields[1].ty,
            FieldType::Array(Box::new(FieldType::Struct("Bar".into())))
        );
        assert!(m.fields[1].fields.as_ref().unwrap()[0].map_key);
        assert_eq!(m.fields[2].default.as_deref(), Some("-1"));
        assert_eq!(m.fields[2].tag, Some(0));
        let stub = r#"{ "apiKey": 4, "type": "request", "name": "X", "validVersions": "none" }"#;
        assert!(parse_message(stub, "s").unwrap().is_none());
    }
}
