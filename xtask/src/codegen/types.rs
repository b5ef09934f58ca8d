//! Mapping schema types and defaults to Rust, naming, and version conditions.

use anyhow::{Result, anyhow, bail};

use super::schema::{Field, FieldType, Versions};

/// `ThrottleTimeMs` → `throttle_time_ms`, `KRaftVersion` → `kraft_version`.
pub fn snake_case(name: &str) -> String {
    let name = name.replace("KRaft", "Kraft");
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev = i.checked_sub(1).map(|j| chars[j]);
            let next = chars.get(i + 1).copied();
            let boundary = match prev {
                None => false,
                Some(p) if p.is_ascii_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_ascii_uppercase() => next.is_some_and(|n| n.is_ascii_lowercase()),
                _ => false,
            };
            if boundary {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut",
    "pub", "ref", "return", "static", "struct", "super", "trait", "true", "type", "unsafe", "use",
    "where", "while", "abstract", "become", "box", "do", "final", "macro", "override", "priv",
    "try", "typeof", "unsized", "virtual", "yield",
];

/// The Rust field identifier for a Kafka field name (raw identifier for keywords).
pub fn field_ident(name: &str) -> String {
    let s = snake_case(name);
    if KEYWORDS.contains(&s.as_str()) {
        format!("r#{s}")
    } else {
        s
    }
}

/// Names the generator itself uses inside generated modules; a nested
/// struct may not take one of them.
pub const RESERVED_TYPE_NAMES: &[&str] = &[
    "Bytes",
    "BytesMut",
    "BufMut",
    "Uuid",
    "TaggedFields",
    "DecodeError",
    "EncodeError",
    "Message",
    "Request",
    "Response",
    "VersionRange",
    "ApiKey",
    "ErrorCode",
    "TopicName",
    "GroupId",
    "BrokerId",
    "ProducerId",
    "TransactionalId",
    "Gen",
    "Random",
    "Option",
    "Vec",
    "String",
    "Result",
    "Self",
];

/// A three-valued version condition, simplified against the range of
/// versions a struct can actually be encoded at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    True,
    False,
    Expr(String),
}

impl Cond {
    /// `version ∈ v`, knowing that `version ∈ within`.
    pub fn in_versions(v: Versions, within: Versions) -> Cond {
        Cond::in_set(&[v], within)
    }

    /// `version ∈ a ∖ b`, knowing that `version ∈ within`.
    pub fn in_difference(a: Versions, b: Versions, within: Versions) -> Cond {
        Cond::in_set(&difference(a, b), within)
    }

    /// `version` in the union of `set`, knowing that `version ∈ within`.
    pub fn in_set(set: &[Versions], within: Versions) -> Cond {
        let parts: Vec<Versions> = set
            .iter()
            .map(|v| v.intersect(within))
            .filter(|v| !v.is_empty())
            .collect();
        if parts.is_empty() {
            return Cond::False;
        }
        if parts.iter().any(|v| v.covers(within)) {
            return Cond::True;
        }
        let exprs: Vec<String> = parts
            .iter()
            .map(|v| {
                let lo = v.lo > within.lo;
                let hi = v.hi < within.hi;
                match (lo, hi) {
                    (true, true) if v.lo == v.hi => format!("version == {}", v.lo),
                    (true, true) => format!("({}..={}).contains(&version)", v.lo, v.hi),
                    (true, false) => format!("version >= {}", v.lo),
                    (false, true) => format!("version <= {}", v.hi),
                    (false, false) => unreachable!("covered case handled above"),
                }
            })
            .collect();
        Cond::Expr(if exprs.len() == 1 {
            exprs[0].clone()
        } else {
            format!("({})", exprs.join(" || "))
        })
    }

    pub fn and(&self, o: &Cond) -> Cond {
        match (self, o) {
            (Cond::False, _) | (_, Cond::False) => Cond::False,
            (Cond::True, x) | (x, Cond::True) => x.clone(),
            (Cond::Expr(a), Cond::Expr(b)) => Cond::Expr(format!("{a} && {b}")),
        }
    }

    /// As a boolean expression.
    pub fn expr(&self) -> String {
        match self {
            Cond::True => "true".into(),
            Cond::False => "false".into(),
            Cond::Expr(e) => e.clone(),
        }
    }

    /// Wraps `body` in `if cond { .. }`, or emits it bare / not at all.
    pub fn wrap(&self, body: &str) -> String {
        match self {
            Cond::True => body.to_string(),
            Cond::False => String::new(),
            Cond::Expr(e) => format!("if {e} {{\n{body}\n}}\n"),
        }
    }
}

/// `a ∖ b` as up to two intervals.
pub fn difference(a: Versions, b: Versions) -> Vec<Versions> {
    if b.intersect(a).is_empty() {
        return vec![a];
    }
    let mut out = Vec::new();
    if a.lo < b.lo {
        out.push(Versions {
            lo: a.lo,
            hi: b.lo - 1,
        });
    }
    if b.hi < a.hi {
        out.push(Versions {
            lo: b.hi + 1,
            hi: a.hi,
        });
    }
    out
}

/// The alias for an `entityType`, if the field's wire type fits it.
fn entity_alias(entity: Option<&str>, elem: &FieldType) -> Option<&'static str> {
    Some(match (entity?, elem) {
        ("topicName", FieldType::String) => "TopicName",
        ("groupId", FieldType::String) => "GroupId",
        ("transactionalId", FieldType::String) => "TransactionalId",
        ("brokerId", FieldType::Int32) => "BrokerId",
        ("producerId", FieldType::Int64) => "ProducerId",
        _ => return None,
    })
}

/// The Rust type of one scalar or struct (an array element, or a whole field).
pub fn scalar_type(ty: &FieldType, entity: Option<&str>) -> String {
    if let Some(a) = entity_alias(entity, ty) {
        return a.to_string();
    }
    match ty {
        FieldType::Bool => "bool".into(),
        FieldType::Int8 => "i8".into(),
        FieldType::Int16 => "i16".into(),
        FieldType::Int32 => "i32".into(),
        FieldType::Int64 => "i64".into(),
        FieldType::Uint16 => "u16".into(),
        FieldType::Uint32 => "u32".into(),
        FieldType::Float64 => "f64".into(),
        FieldType::String => "String".into(),
        FieldType::Bytes | FieldType::Records => "Bytes".into(),
        FieldType::Uuid => "Uuid".into(),
        FieldType::Struct(n) => n.clone(),
        FieldType::Array(inner) => format!("Vec<{}>", scalar_type(inner, entity)),
    }
}

/// Everything the emitters need to know about one field within the struct
/// that holds it.
#[derive(Debug, Clone)]
pub struct FieldInfo {
    pub f: Field,
    pub ident: String,
    /// Versions (of this struct's range) in which the field exists.
    pub present: Versions,
    /// Versions in which it may be null (within `present`).
    pub nullable: Versions,
    /// The Rust type is an `Option`.
    pub optional: bool,
    /// The Rust type without the `Option`.
    pub inner_ty: String,
    /// The Rust expression of the default value.
    pub default_expr: String,
    /// An `int16` Kafka error code (`ErrorCode`, or a name ending in
    /// `ErrorCode`): typed as the `ErrorCode` newtype, `i16` on the wire.
    pub error_code: bool,
}

/// True for a field holding a Kafka error code: an `int16` named
/// `ErrorCode` or `...ErrorCode` (`TopLevelErrorCode`, `PartitionErrorCode`).
pub fn is_error_code(f: &Field) -> bool {
    f.ty == FieldType::Int16 && f.name.ends_with("ErrorCode")
}

impl FieldInfo {
    pub fn new(f: &Field, range: Versions) -> Result<FieldInfo> {
        let present = f.versions.intersect(range);
        let nullable = f.nullable.intersect(present);
        let optional = !nullable.is_empty() || f.ty == FieldType::Records;
        let error_code = is_error_code(f);
        let inner_ty = if error_code {
            "ErrorCode".to_string()
        } else {
            scalar_type(&f.ty, f.entity_type.as_deref())
        };
        let mut info = FieldInfo {
            f: f.clone(),
            ident: field_ident(&f.name),
            present,
            nullable,
            optional,
            inner_ty,
            default_expr: String::new(),
            error_code,
        };
        info.default_expr = info.compute_default()?;
        Ok(info)
    }

    pub fn rust_type(&self) -> String {
        if self.optional {
            format!("Option<{}>", self.inner_ty)
        } else {
            self.inner_ty.clone()
        }
    }

    fn compute_default(&self) -> Result<String> {
        let f = &self.f;
        let d = f.default.as_deref().map(str::trim);
        if d == Some("null") {
            if !self.optional {
                bail!("field {} has default null but is never nullable", f.name);
            }
            return Ok("None".into());
        }
        let base = match &f.ty {
            FieldType::Bool => match d {
                None | Some("false") => "false".to_string(),
                Some("true") => "true".to_string(),
                Some(o) => bail!("bad bool default `{o}` for {}", f.name),
            },
            FieldType::Int8 => int_default(d, "i8", i8::MIN.into(), i8::MAX.into())?,
            FieldType::Int16 if self.error_code => {
                match int_default(d, "i16", i16::MIN.into(), i16::MAX.into())?.as_str() {
                    "0" => "ErrorCode::NONE".to_string(),
                    n => format!("ErrorCode({n})"),
                }
            }
            FieldType::Int16 => int_default(d, "i16", i16::MIN.into(), i16::MAX.into())?,
            FieldType::Int32 => int_default(d, "i32", i32::MIN.into(), i32::MAX.into())?,
            FieldType::Int64 => int_default(d, "i64", i64::MIN.into(), i64::MAX.into())?,
            FieldType::Uint16 => int_default(d, "u16", 0, u16::MAX.into())?,
            FieldType::Uint32 => int_default(d, "u32", 0, u32::MAX.into())?,
            FieldType::Float64 => {
                let v: f64 = match d {
                    None => 0.0,
                    Some(s) => s
                        .parse()
                        .map_err(|_| anyhow!("bad float default `{s}` for {}", f.name))?,
                };
                if !v.is_finite() {
                    bail!("non-finite float default for {}", f.name);
                }
                format!("{v:?}")
            }
            FieldType::String => match d {
                None | Some("") => "String::new()".to_string(),
                Some(s) => format!("String::from({s:?})"),
            },
            FieldType::Uuid => {
                if d.is_some() {
                    bail!("uuid defaults are not supported ({})", f.name);
                }
                "Uuid::ZERO".to_string()
            }
            FieldType::Bytes | FieldType::Records | FieldType::Array(_) | FieldType::Struct(_) => {
                if d.is_some_and(|s| !s.is_empty()) {
                    bail!("custom default on {} is not supported", f.name);
                }
                if f.ty == FieldType::Records && self.nullable.covers(self.present) {
                    // Records default to null where every present version allows it.
                    return Ok("None".into());
                }
                match &f.ty {
                    FieldType::Bytes | FieldType::Records => "Bytes::new()".to_string(),
                    FieldType::Array(_) => "Vec::new()".to_string(),
                    FieldType::Struct(n) => format!("{n}::default()"),
                    _ => unreachable!(),
                }
            }
        };
        Ok(if self.optional {
            format!("Some({base})")
        } else {
            base
        })
    }

    /// A boolean expression that is true when `self.<field>` differs from
    /// its default (used for tagged fields and the ignorable check).
    pub fn non_default(&self, place: &str) -> String {
        let d = &self.default_expr;
        if d == "None" {
            return format!("{place}.is_some()");
        }
        if self.optional {
            return match &self.f.ty {
                FieldType::String if d == "Some(String::new())" => {
                    format!("{place}.as_ref().is_none_or(|v| !v.is_empty())")
                }
                FieldType::Bytes | FieldType::Records | FieldType::Array(_) => {
                    format!("{place}.as_ref().is_none_or(|v| !v.is_empty())")
                }
                _ => format!("{place} != {d}"),
            };
        }
        match &self.f.ty {
            FieldType::String if d == "String::new()" => format!("!{place}.is_empty()"),
            FieldType::String => format!(
                "{place} != {:?}",
                self.f.default.as_deref().unwrap_or_default()
            ),
            FieldType::Bytes | FieldType::Records | FieldType::Array(_) => {
                format!("!{place}.is_empty()")
            }
            FieldType::Uuid => format!("!{place}.is_zero()"),
            FieldType::Bool if d == "false" => place.to_string(),
            FieldType::Bool => format!("!{place}"),
            _ => format!("{place} != {d}"),
        }
    }
}

fn int_default(d: Option<&str>, ty: &str, min: i128, max: i128) -> Result<String> {
    let Some(s) = d else { return Ok("0".into()) };
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let mag = if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        i128::from_str_radix(h, 16)
    } else if body.len() > 1 && body.starts_with('0') {
        i128::from_str_radix(&body[1..], 8)
    } else {
        body.parse::<i128>()
    }
    .map_err(|_| anyhow!("bad integer default `{s}`"))?;
    let v = if neg { -mag } else { mag };
    if v < min || v > max {
        bail!("default `{s}` does not fit {ty}");
    }
    Ok(if v == max && v > 0xffff {
        format!("{ty}::MAX")
    } else if v == min && min < 0 {
        format!("{ty}::MIN")
    } else {
        v.to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_names() {
        assert_eq!(snake_case("ThrottleTimeMs"), "throttle_time_ms");
        assert_eq!(snake_case("ApiVersionsRequest"), "api_versions_request");
        assert_eq!(snake_case("KRaftVersionRecord"), "kraft_version_record");
        assert_eq!(snake_case("IsrV2"), "isr_v2");
        assert_eq!(snake_case("ACLOperation"), "acl_operation");
        assert_eq!(field_ident("Type"), "r#type");
    }

    #[test]
    fn integer_defaults() {
        assert_eq!(
            int_default(Some("0x7fffffff"), "i32", i32::MIN.into(), i32::MAX.into()).unwrap(),
            "i32::MAX"
        );
        assert_eq!(
            int_default(Some("-1"), "i64", i64::MIN.into(), i64::MAX.into()).unwrap(),
            "-1"
        );
        assert_eq!(
            int_default(Some("-2147483648"), "i32", i32::MIN.into(), i32::MAX.into()).unwrap(),
            "i32::MIN"
        );
        assert_eq!(int_default(None, "i8", -128, 127).unwrap(), "0");
        assert!(int_default(Some("300"), "i8", -128, 127).is_err());
    }

    #[test]
    fn conditions_simplify() {
        let valid = Versions::parse("3-13").unwrap();
        assert_eq!(
            Cond::in_versions(Versions::parse("0+").unwrap(), valid),
            Cond::True
        );
        assert_eq!(
            Cond::in_versions(Versions::parse("0-2").unwrap(), valid),
            Cond::False
        );
        assert_eq!(
            Cond::in_versions(Versions::parse("9+").unwrap(), valid).expr(),
            "version >= 9"
        );
        assert_eq!(
            Cond::in_versions(Versions::parse("4-6").unwrap(), valid).expr(),
            "(4..=6).contains(&version)"
        );
        let all = Versions::parse("0+").unwrap();
        let tagged = Versions::parse("12+").unwrap();
        assert_eq!(Cond::in_difference(all, all, valid), Cond::False);
        assert_eq!(
            Cond::in_difference(all, tagged, valid).expr(),
            "version <= 11"
        );
        assert_eq!(
            Cond::in_difference(valid, Versions::parse("5-6").unwrap(), valid).expr(),
            "(version <= 4 || version >= 7)"
        );
    }
}
