//! Expression builders for encoding, decoding and random generation of one
//! field value. The emitters in `emit_struct` arrange these into methods.

use super::schema::FieldType;
use super::types::{Cond, FieldInfo};

/// How a field is being written or read.
pub struct Site<'a> {
    pub fi: &'a FieldInfo,
    /// Owning struct name, for error messages.
    pub owner: &'a str,
    /// The `compact` argument: `true`, `false`, `flexible` or an expression.
    pub compact: String,
    /// Whether the value may be null in the current version (relative to
    /// the versions in which the field is present).
    pub nullable: Cond,
}

impl Site<'_> {
    fn what(&self) -> String {
        format!(
            "\"{}.{}\"",
            self.owner,
            self.fi.ident.trim_start_matches("r#")
        )
    }

    fn null_error(&self) -> String {
        format!(
            "return Err(EncodeError::NullNotAllowed {{ message: \"{}\", field: \"{}\", version }})",
            self.owner,
            self.fi.ident.trim_start_matches("r#")
        )
    }

    /// Statements that write `self.<field>` to `buf`.
    pub fn encode(&self) -> String {
        let place = format!("self.{}", self.fi.ident);
        if !self.fi.optional {
            return self.encode_present(&format!("&{place}"), &place);
        }
        let nullable = self.encode_nullable(&place);
        let strict = format!(
            "let Some(v) = &{place} else {{ {} }};\n{}",
            self.null_error(),
            self.encode_present("v", "*v")
        );
        match &self.nullable {
            Cond::True => nullable,
            Cond::False => strict,
            Cond::Expr(e) => format!("if {e} {{\n{nullable}\n}} else {{\n{strict}\n}}"),
        }
    }

    /// Writes a non-null value; `r` is a reference to it, `val` the value
    /// itself (for `Copy` scalars).
    fn encode_present(&self, r: &str, val: &str) -> String {
        let (c, what) = (&self.compact, self.what());
        match &self.fi.f.ty {
            FieldType::String => format!("write_string(buf, {r}, {c}, {what})?;"),
            FieldType::Bytes => format!("write_bytes(buf, {r}, {c}, {what})?;"),
            FieldType::Records => format!("write_records(buf, {r}, {c}, {what})?;"),
            FieldType::Array(inner) => {
                format!(
                    "write_array(buf, {r}, {c}, {what}, |buf, e| {{ {} }})?;",
                    self.encode_elem(inner)
                )
            }
            FieldType::Struct(_) => {
                format!("{}.write_to(buf, version)?;", r.trim_start_matches('&'))
            }
            FieldType::Int16 if self.fi.error_code => format!("buf.put_i16({val}.0);"),
            scalar => format!("{};", put_scalar(scalar, val, r)),
        }
    }

    fn encode_nullable(&self, place: &str) -> String {
        let (c, what) = (&self.compact, self.what());
        match &self.fi.f.ty {
            FieldType::String => {
                format!("write_nullable_string(buf, {place}.as_deref(), {c}, {what})?;")
            }
            FieldType::Bytes => {
                format!("write_nullable_bytes(buf, {place}.as_deref(), {c}, {what})?;")
            }
            FieldType::Records => {
                format!("write_nullable_records(buf, {place}.as_ref(), {c}, {what})?;")
            }
            FieldType::Array(inner) => format!(
                "write_nullable_array(buf, {place}.as_deref(), {c}, {what}, |buf, e| {{ {} }})?;",
                self.encode_elem(inner)
            ),
            FieldType::Struct(_) => format!(
                "match &{place} {{\nNone => buf.put_i8(-1),\nSome(v) => {{\nbuf.put_i8(1);\nv.write_to(buf, version)?;\n}}\n}}"
            ),
            other => unreachable!("{other:?} cannot be nullable"),
        }
    }

    /// The body of an array element closure `|buf, e|` returning a Result.
    fn encode_elem(&self, ty: &FieldType) -> String {
        let (c, what) = (&self.compact, self.what());
        match ty {
            FieldType::String => format!("write_string(buf, e, {c}, {what})"),
            FieldType::Bytes | FieldType::Records => format!("write_bytes(buf, e, {c}, {what})"),
            FieldType::Struct(_) => "e.write_to(buf, version)".to_string(),
            FieldType::Array(_) => unreachable!("nested arrays are rejected by the parser"),
            scalar => format!("{};\nOk(())", put_scalar(scalar, "*e", "e")),
        }
    }

    /// An expression reading the field's value from `buf`.
    pub fn decode(&self) -> String {
        let (c, what) = (&self.compact, self.what());
        let ty = &self.fi.f.ty;
        let strict = match ty {
            FieldType::String => format!("read_string(buf, {c}, {what})?"),
            FieldType::Bytes | FieldType::Records => format!("read_bytes(buf, {c}, {what})?"),
            FieldType::Array(inner) => {
                format!(
                    "read_array(buf, {c}, {what}, |buf| {})?",
                    self.decode_elem(inner)
                )
            }
            FieldType::Struct(n) => format!("{n}::read_from(buf, version)?"),
            FieldType::Int16 if self.fi.error_code => {
                format!("ErrorCode({}?)", read_scalar(ty, &what))
            }
            scalar => format!("{}?", read_scalar(scalar, &what)),
        };
        if !self.fi.optional {
            return strict;
        }
        let nullable = match ty {
            FieldType::String => format!("read_nullable_string(buf, {c}, {what})?"),
            FieldType::Bytes | FieldType::Records => {
                format!("read_nullable_bytes(buf, {c}, {what})?")
            }
            FieldType::Array(inner) => {
                format!(
                    "read_nullable_array(buf, {c}, {what}, |buf| {})?",
                    self.decode_elem(inner)
                )
            }
            FieldType::Struct(n) => {
                format!(
                    "if read_i8(buf, {what})? < 0 {{ None }} else {{ Some({n}::read_from(buf, version)?) }}"
                )
            }
            other => unreachable!("{other:?} cannot be nullable"),
        };
        match &self.nullable {
            Cond::True => nullable,
            Cond::False => format!("Some({strict})"),
            Cond::Expr(e) => format!("if {e} {{ {nullable} }} else {{ Some({strict}) }}"),
        }
    }

    fn decode_elem(&self, ty: &FieldType) -> String {
        let (c, what) = (&self.compact, self.what());
        match ty {
            FieldType::String => format!("read_string(buf, {c}, {what})"),
            FieldType::Bytes | FieldType::Records => format!("read_bytes(buf, {c}, {what})"),
            FieldType::Struct(n) => format!("{n}::read_from(buf, version)"),
            FieldType::Array(_) => unreachable!("nested arrays are rejected by the parser"),
            scalar => read_scalar(scalar, &what),
        }
    }

    /// An expression producing a random value valid in the current version.
    pub fn random(&self) -> String {
        let inner = if self.fi.error_code {
            "ErrorCode(g.i16())".to_string()
        } else {
            random_of(&self.fi.f.ty)
        };
        if !self.fi.optional {
            return inner;
        }
        let nullable = format!("g.maybe(|g| {inner})");
        match &self.nullable {
            Cond::True => nullable,
            Cond::False => format!("Some({inner})"),
            Cond::Expr(e) => format!("if {e} {{ {nullable} }} else {{ Some({inner}) }}"),
        }
    }
}

fn random_of(ty: &FieldType) -> String {
    match ty {
        FieldType::Bool => "g.bool()".into(),
        FieldType::Int8 => "g.i8()".into(),
        FieldType::Int16 => "g.i16()".into(),
        FieldType::Int32 => "g.i32()".into(),
        FieldType::Int64 => "g.i64()".into(),
        FieldType::Uint16 => "g.u16()".into(),
        FieldType::Uint32 => "g.u32()".into(),
        FieldType::Float64 => "g.f64()".into(),
        FieldType::String => "g.string()".into(),
        FieldType::Bytes | FieldType::Records => "g.bytes()".into(),
        FieldType::Uuid => "g.uuid()".into(),
        FieldType::Struct(n) => format!("{n}::random(g, version)"),
        FieldType::Array(inner) => format!("g.vec(|g| {})", random_of(inner)),
    }
}

/// An expression writing a fixed-width scalar; `val` is the value, `r` a reference.
fn put_scalar(ty: &FieldType, val: &str, r: &str) -> String {
    match ty {
        FieldType::Bool => format!("write_bool(buf, {val})"),
        FieldType::Int8 => format!("buf.put_i8({val})"),
        FieldType::Int16 => format!("buf.put_i16({val})"),
        FieldType::Int32 => format!("buf.put_i32({val})"),
        FieldType::Int64 => format!("buf.put_i64({val})"),
        FieldType::Uint16 => format!("buf.put_u16({val})"),
        FieldType::Uint32 => format!("buf.put_u32({val})"),
        FieldType::Float64 => format!("buf.put_f64({val})"),
        FieldType::Uuid => format!("write_uuid(buf, {r})"),
        other => unreachable!("{other:?} is not a scalar"),
    }
}

/// An expression (a `Result`) reading a fixed-width scalar.
fn read_scalar(ty: &FieldType, what: &str) -> String {
    let f = match ty {
        FieldType::Bool => "read_bool",
        FieldType::Int8 => "read_i8",
        FieldType::Int16 => "read_i16",
        FieldType::Int32 => "read_i32",
        FieldType::Int64 => "read_i64",
        FieldType::Uint16 => "read_u16",
        FieldType::Uint32 => "read_u32",
        FieldType::Float64 => "read_f64",
        FieldType::Uuid => "read_uuid",
        other => unreachable!("{other:?} is not a scalar"),
    };
    format!("{f}(buf, {what})")
}
