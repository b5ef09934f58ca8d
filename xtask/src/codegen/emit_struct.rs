//! Emits one Rust struct: declaration, `Default`, `map_key`, the versioned
//! `write_to`/`read_from` pair and the test-only `Random` impl.

use std::fmt::Write as _;

use anyhow::{Result, bail};

use super::model::StructInfo;
use super::schema::{FieldType, Versions};
use super::types::{Cond, FieldInfo};
use super::wire::Site;

pub struct StructEmitter<'a> {
    pub s: &'a StructInfo,
    /// The message's flexible versions.
    pub flexible: Versions,
}

/// Names the `version` parameter `_version` when the body never reads it.
fn version_param(body: &str) -> &'static str {
    if uses_ident(body, "version") {
        "version"
    } else {
        "_version"
    }
}

/// True when `ident` occurs in `code` as a whole identifier (not as part of
/// a longer name or a `"Owner.field"` label).
fn uses_ident(code: &str, ident: &str) -> bool {
    let bytes = code.as_bytes();
    code.match_indices(ident).any(|(i, _)| {
        let before = i.checked_sub(1).map(|j| bytes[j]);
        let after = bytes.get(i + ident.len()).copied();
        let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
        !before.is_some_and(|c| word(c) || c == b'.') && !after.is_some_and(word)
    })
}

fn doc_lines(out: &mut String, lines: &[String]) {
    for l in lines {
        if l.is_empty() {
            out.push_str("///\n");
        } else {
            for part in l.lines() {
                // Kafka's prose is not Markdown: keep `[..]` from becoming links.
                let text = part.trim_end().replace('[', "\\[").replace(']', "\\]");
                let _ = writeln!(out, "/// {text}");
            }
        }
    }
}

impl StructEmitter<'_> {
    fn flex(&self) -> Cond {
        Cond::in_versions(self.flexible, self.s.range)
    }

    /// The struct's flexible condition as used inside its methods (after
    /// `let flexible = ...;` has been emitted).
    fn flex_var(&self) -> Cond {
        match self.flex() {
            Cond::Expr(_) => Cond::Expr("flexible".into()),
            c => c,
        }
    }

    fn flex_decl(&self) -> String {
        match self.flex() {
            Cond::Expr(e) => format!("let flexible = {e};\n"),
            _ => String::new(),
        }
    }

    fn has_tagged_section(&self) -> bool {
        self.s.has_flexible(self.flexible)
    }

    fn cond(&self, v: Versions) -> Cond {
        Cond::in_versions(v, self.s.range)
    }

    fn site<'b>(&'b self, fi: &'b FieldInfo, tagged: bool) -> Site<'b> {
        let compact = if tagged {
            "true".to_string()
        } else {
            let c = match fi.f.flexible_override {
                Some(ov) => self.cond(ov),
                None => self.flex_var(),
            };
            match c {
                Cond::Expr(e) if e == "flexible" => e,
                Cond::Expr(e) => format!("({e})"),
                c => c.expr(),
            }
        };
        Site {
            fi,
            owner: &self.s.name,
            compact,
            nullable: Cond::in_versions(fi.nullable, fi.present),
        }
    }

    /// Versions where the field is in the regular (untagged) sequence.
    fn regular(&self, fi: &FieldInfo) -> Cond {
        Cond::in_difference(fi.f.versions, fi.f.tagged, self.s.range)
    }

    /// Versions where the field is absent.
    fn absent(&self, fi: &FieldInfo) -> Cond {
        Cond::in_difference(self.s.range, fi.f.versions, self.s.range)
    }

    /// Tagged versions, knowing that the version is flexible.
    fn tagged(&self, fi: &FieldInfo) -> Cond {
        Cond::in_versions(fi.f.tagged, self.s.range.intersect(self.flexible))
    }

    pub fn emit(&self) -> Result<String> {
        for fi in &self.s.fields {
            let t = fi.f.tagged.intersect(self.s.range);
            if !self.flexible.covers(t) {
                bail!(
                    "{}.{} is tagged in a non-flexible version",
                    self.s.name,
                    fi.f.name
                );
            }
        }
        let mut out = String::new();
        self.emit_decl(&mut out);
        self.emit_default(&mut out);
        out.push_str(&format!("impl {} {{\n", self.s.name));
        self.emit_map_key(&mut out);
        self.emit_write(&mut out);
        self.emit_read(&mut out);
        out.push_str("}\n\n");
        self.emit_random(&mut out);
        Ok(out)
    }

    fn emit_decl(&self, out: &mut String) {
        doc_lines(out, &self.s.doc);
        out.push_str("#[derive(Debug, Clone, PartialEq)]\n");
        let _ = writeln!(out, "pub struct {} {{", self.s.name);
        for fi in &self.s.fields {
            doc_lines(out, &field_doc(fi));
            let _ = writeln!(out, "pub {}: {},", fi.ident, fi.rust_type());
        }
        if self.has_tagged_section() {
            out.push_str(
                "/// Tagged fields this crate does not know, kept verbatim so that they re-encode unchanged,\n\
                 /// and which known tagged fields were on the wire, written back even at their default value.\n",
            );
            out.push_str("pub unknown_tagged_fields: TaggedFields,\n");
        }
        out.push_str("}\n\n");
    }

    fn emit_default(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "impl Default for {} {{\nfn default() -> Self {{\n{} {{",
            self.s.name, self.s.name
        );
        for fi in &self.s.fields {
            let _ = writeln!(out, "{}: {},", fi.ident, fi.default_expr);
        }
        if self.has_tagged_section() {
            out.push_str("unknown_tagged_fields: TaggedFields::default(),\n");
        }
        out.push_str("}\n}\n}\n\n");
    }

    fn emit_map_key(&self, out: &mut String) {
        let keys: Vec<&FieldInfo> = self.s.fields.iter().filter(|f| f.f.map_key).collect();
        if keys.is_empty() {
            return;
        }
        let mut tys = Vec::new();
        let mut vals = Vec::new();
        for k in &keys {
            let (t, v) = match (&k.f.ty, k.optional) {
                (FieldType::String, false) => ("&str".to_string(), format!("&self.{}", k.ident)),
                (FieldType::String, true) => (
                    "Option<&str>".to_string(),
                    format!("self.{}.as_deref()", k.ident),
                ),
                (_, false) => (k.inner_ty.clone(), format!("self.{}", k.ident)),
                (_, true) => (
                    format!("Option<&{}>", k.inner_ty),
                    format!("self.{}.as_ref()", k.ident),
                ),
            };
            tys.push(t);
            vals.push(v);
        }
        let names: Vec<String> = keys
            .iter()
            .map(|k| format!("`{}`", k.ident.trim_start_matches("r#")))
            .collect();
        let _ = writeln!(
            out,
            "/// The key ({}) identifying this entry when its array is used as a map or set.",
            names.join(", ")
        );
        let (ty, val) = if keys.len() == 1 {
            (tys.remove(0), vals.remove(0))
        } else {
            (
                format!("({})", tys.join(", ")),
                format!("({})", vals.join(", ")),
            )
        };
        let _ = writeln!(out, "pub fn map_key(&self) -> {ty} {{\n{val}\n}}\n");
    }

    fn emit_write(&self, out: &mut String) {
        let mut body = self.flex_decl();
        for fi in &self.s.fields {
            let stmt = self.site(fi, false).encode();
            let regular = self.regular(fi);
            let absent = self.absent(fi);
            let check = if fi.f.ignorable || absent == Cond::False {
                None
            } else {
                let nd = fi.non_default(&format!("self.{}", fi.ident));
                // In the `else` of `if regular`, a field with no tagged
                // versions is known to be absent.
                let untagged = fi.f.tagged.intersect(self.s.range).is_empty();
                let c = if untagged && regular != Cond::False {
                    Cond::Expr(nd)
                } else {
                    absent.and(&Cond::Expr(nd))
                };
                Some(format!(
                    "if {} {{\nreturn Err(EncodeError::FieldNotInVersion {{ message: \"{}\", field: \"{}\", version }});\n}}",
                    c.expr(),
                    self.s.name,
                    fi.ident.trim_start_matches("r#")
                ))
            };
            match (&regular, check) {
                (Cond::True, _) => body.push_str(&stmt),
                (Cond::False, Some(chk)) => body.push_str(&chk),
                (Cond::False, None) => {}
                (Cond::Expr(e), Some(chk)) => {
                    let _ = write!(body, "if {e} {{\n{stmt}\n}} else {chk}");
                }
                (Cond::Expr(e), None) => {
                    let _ = write!(body, "if {e} {{\n{stmt}\n}}");
                }
            }
            body.push('\n');
        }
        if self.has_tagged_section() {
            let mut section = String::new();
            let tagged: Vec<&FieldInfo> = self
                .s
                .fields
                .iter()
                .filter(|f| self.tagged(f) != Cond::False)
                .collect();
            if tagged.is_empty() {
                section.push_str(
                    "write_tagged_fields(buf, Vec::new(), &self.unknown_tagged_fields)?;",
                );
            } else {
                section.push_str("let mut tagged: Vec<(u32, Bytes)> = Vec::new();\n");
                for fi in tagged {
                    // Written when it holds a non-default value, or when it
                    // was on the wire (decoded input re-encodes byte-exact
                    // even if the peer wrote default values).
                    let tag = fi.f.tag.unwrap_or_default();
                    let write = format!(
                        "{} || self.unknown_tagged_fields.was_present({tag})",
                        fi.non_default(&format!("self.{}", fi.ident))
                    );
                    let c = match self.tagged(fi) {
                        Cond::True => Cond::Expr(write),
                        c => c.and(&Cond::Expr(format!("({write})"))),
                    };
                    let stmt = self.site(fi, true).encode();
                    let _ = writeln!(
                        section,
                        "if {} {{\nlet buf = &mut BytesMut::new();\n{stmt}\ntagged.push(({tag}, buf.split().freeze()));\n}}",
                        c.expr(),
                    );
                }
                section.push_str("write_tagged_fields(buf, tagged, &self.unknown_tagged_fields)?;");
            }
            body.push_str(&self.flex_var().wrap(&section));
            body.push('\n');
        }
        body.push_str("Ok(())\n");
        let _ = writeln!(
            out,
            "/// Writes the fields for `version`; the caller has checked the version.\n\
             pub(crate) fn write_to(&self, buf: &mut BytesMut, {}: i16) -> Result<(), EncodeError> {{\n{body}}}\n",
            version_param(&body)
        );
    }

    fn emit_read(&self, out: &mut String) {
        let mut body = self.flex_decl();
        let mut assigns = String::new();
        for fi in &self.s.fields {
            let regular = self.regular(fi);
            let stmt = format!("this.{} = {};", fi.ident, self.site(fi, false).decode());
            assigns.push_str(&regular.wrap(&stmt));
            assigns.push('\n');
        }
        if self.has_tagged_section() {
            let mut arms = String::new();
            for fi in &self.s.fields {
                let c = self.tagged(fi);
                if c == Cond::False {
                    continue;
                }
                let guard = match &c {
                    Cond::Expr(e) => format!(" if {e}"),
                    _ => String::new(),
                };
                let _ = writeln!(
                    arms,
                    "{}{guard} => {{\nthis.{} = {};\nOk(true)\n}}",
                    fi.f.tag.unwrap_or_default(),
                    fi.ident,
                    self.site(fi, true).decode()
                );
            }
            let closure = if arms.is_empty() {
                "|_, _| Ok(false)".to_string()
            } else {
                format!("|tag, buf| match tag {{\n{arms}_ => Ok(false),\n}}")
            };
            let section = format!(
                "this.unknown_tagged_fields = read_tagged_fields(buf, \"{}\", {closure})?;",
                self.s.name
            );
            assigns.push_str(&self.flex_var().wrap(&section));
            assigns.push('\n');
        }
        if assigns.trim().is_empty() {
            body.push_str("Ok(Self::default())\n");
        } else {
            body.push_str("let mut this = Self::default();\n");
            body.push_str(&assigns);
            body.push_str("Ok(this)\n");
        }
        let buf = if uses_ident(&body, "buf") {
            "buf"
        } else {
            "_buf"
        };
        let _ = writeln!(
            out,
            "/// Reads the fields for `version`; the caller has checked the version.\n\
             pub(crate) fn read_from({buf}: &mut Bytes, {}: i16) -> Result<Self, DecodeError> {{\n{body}}}\n",
            version_param(&body)
        );
    }

    fn emit_random(&self, out: &mut String) {
        let mut assigns = String::new();
        for fi in &self.s.fields {
            let c = self.cond(fi.f.versions);
            let stmt = format!("this.{} = {};", fi.ident, self.site(fi, false).random());
            assigns.push_str(&c.wrap(&stmt));
            assigns.push('\n');
        }
        if self.has_tagged_section() {
            assigns.push_str(
                &self
                    .flex_var()
                    .wrap("this.unknown_tagged_fields = g.unknown_tagged_fields();"),
            );
        }
        let mut body = self.flex_decl();
        if assigns.trim().is_empty() {
            body.push_str("let _ = g;\nSelf::default()\n");
        } else {
            body.push_str("let mut this = Self::default();\n");
            body.push_str(&assigns);
            body.push_str("\nthis\n");
        }
        let _ = writeln!(
            out,
            "#[cfg(test)]\nimpl Random for {} {{\nfn random(g: &mut Gen, {}: i16) -> Self {{\n{body}}}\n}}\n",
            self.s.name,
            version_param(&body)
        );
    }
}

fn field_doc(fi: &FieldInfo) -> Vec<String> {
    let f = &fi.f;
    let mut doc = Vec::new();
    if !f.about.is_empty() {
        doc.push(f.about.clone());
        doc.push(String::new());
    }
    let mut facts = vec![format!("Versions: {}", fi.present.describe())];
    if !fi.nullable.is_empty() {
        facts.push(format!("nullable in {}", fi.nullable.describe()));
    }
    if let Some(tag) = f.tag {
        facts.push(format!(
            "tagged field {tag} in {}",
            f.tagged.intersect(fi.present).describe()
        ));
    }
    if let Some(d) = &f.default {
        facts.push(format!("default `{d}`"));
    }
    if f.ignorable {
        facts.push("ignorable".into());
    }
    if f.map_key {
        facts.push("map key".into());
    }
    if let Some(ov) = f.flexible_override {
        facts.push(format!(
            "compact encoding only in versions {}",
            ov.describe()
        ));
    }
    doc.push(format!("{}.", facts.join("; ")));
    doc
}

#[cfg(test)]
mod tests {
    use super::super::{model, schema};
    use super::*;

    fn emit(src: &str) -> String {
        let spec = schema::parse_message(src, "test").unwrap().unwrap();
        let m = model::build(&spec).unwrap();
        StructEmitter {
            s: &m.structs[0],
            flexible: spec.flexible,
        }
        .emit()
        .unwrap()
    }

    #[test]
    fn field_regular_in_old_versions_and_tagged_in_new_ones() {
        let code = emit(
            r#"{ "type": "data", "name": "Foo", "validVersions": "0-5", "flexibleVersions": "3+",
                 "fields": [ { "name": "Bar", "type": "int32", "versions": "0+", "default": "-1",
                               "tag": 7, "taggedVersions": "4+" } ] }"#,
        );
        // Regular in 0-3, tagged (inside the flexible section) from 4.
        assert!(
            code.contains("if version <= 3 {\nbuf.put_i32(self.bar);"),
            "{code}"
        );
        assert!(
            code.contains(
                "if version >= 4 && (self.bar != -1 || self.unknown_tagged_fields.was_present(7)) {"
            ),
            "{code}"
        );
        assert!(code.contains("7 if version >= 4 => {"), "{code}");
        assert!(code.contains("let flexible = version >= 3;"), "{code}");
    }

    #[test]
    fn ignorable_and_override_rules() {
        let code = emit(
            r#"{ "type": "data", "name": "Foo", "validVersions": "0-2", "flexibleVersions": "1+",
                 "fields": [
                   { "name": "Kept", "type": "string", "versions": "1+" },
                   { "name": "Dropped", "type": "string", "versions": "2+", "ignorable": true },
                   { "name": "Classic", "type": "string", "versions": "0+", "flexibleVersions": "none" }
                 ] }"#,
        );
        assert!(code.contains("FieldNotInVersion"), "{code}");
        assert!(code.contains("field: \"kept\""), "{code}");
        assert!(!code.contains("field: \"dropped\""), "{code}");
        assert!(
            code.contains("write_string(buf, &self.classic, false,"),
            "{code}"
        );
        assert!(
            code.contains("write_string(buf, &self.kept, flexible,"),
            "{code}"
        );
    }

    #[test]
    fn error_code_fields_are_typed_and_i16_on_the_wire() {
        let code = emit(
            r#"{ "type": "data", "name": "Foo", "validVersions": "0-1", "flexibleVersions": "1+",
                 "fields": [
                   { "name": "ErrorCode", "type": "int16", "versions": "0+" },
                   { "name": "TopLevelErrorCode", "type": "int16", "versions": "0+", "default": "-1" },
                   { "name": "TopicConfigErrorCode", "type": "int16", "versions": "1+",
                     "tag": 0, "taggedVersions": "1+" },
                   { "name": "ErrorCodeCount", "type": "int16", "versions": "0+" }
                 ] }"#,
        );
        assert!(code.contains("pub error_code: ErrorCode,"), "{code}");
        assert!(
            code.contains("pub top_level_error_code: ErrorCode,"),
            "{code}"
        );
        assert!(code.contains("pub error_code_count: i16,"), "{code}");
        assert!(code.contains("error_code: ErrorCode::NONE,"), "{code}");
        assert!(
            code.contains("top_level_error_code: ErrorCode(-1),"),
            "{code}"
        );
        assert!(code.contains("buf.put_i16(self.error_code.0);"), "{code}");
        assert!(
            code.contains("buf.put_i16(self.error_code_count);"),
            "{code}"
        );
        assert!(
            code.contains("this.error_code = ErrorCode(read_i16(buf, \"Foo.error_code\")?);"),
            "{code}"
        );
        assert!(
            code.contains("self.topic_config_error_code != ErrorCode::NONE"),
            "{code}"
        );
        assert!(
            code.contains("this.error_code = ErrorCode(g.i16());"),
            "{code}"
        );
    }
}
