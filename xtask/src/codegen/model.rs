//! Resolves one message definition into the flat list of Rust structs to
//! emit, each with the range of versions it can be encoded at.

use std::collections::HashMap;

use anyhow::{Result, bail};

use super::schema::{Field, Kind, MessageSpec, Versions};
use super::types::{FieldInfo, RESERVED_TYPE_NAMES, snake_case};

/// One Rust struct: the message itself or a nested/common struct.
#[derive(Debug, Clone)]
pub struct StructInfo {
    pub name: String,
    pub doc: Vec<String>,
    /// Fields that exist in at least one version of `range`.
    pub fields: Vec<FieldInfo>,
    /// The versions this struct can be encoded at (hull over its uses).
    pub range: Versions,
}

impl StructInfo {
    /// True when some version of this struct is flexible.
    pub fn has_flexible(&self, flexible: Versions) -> bool {
        !flexible.intersect(self.range).is_empty()
    }
}

#[derive(Debug, Clone)]
pub struct MessageModel {
    pub spec: MessageSpec,
    pub module: String,
    /// Top-level struct first, then nested structs in order of appearance.
    pub structs: Vec<StructInfo>,
}

struct Def {
    fields: Vec<Field>,
    doc: Vec<String>,
    range: Versions,
}

/// Gathers every struct definition of a message, in order of appearance.
struct Collector<'a> {
    msg: &'a str,
    order: Vec<String>,
    defs: HashMap<String, Def>,
}

impl Collector<'_> {
    fn add(&mut self, name: &str, fields: &[Field], doc: Vec<String>) -> Result<()> {
        if self.defs.contains_key(name) || name == self.msg {
            bail!("{}: struct {name} is defined twice", self.msg);
        }
        if RESERVED_TYPE_NAMES.contains(&name) {
            bail!(
                "{}: struct name {name} clashes with a name the generated code uses",
                self.msg
            );
        }
        self.order.push(name.to_string());
        self.defs.insert(
            name.to_string(),
            Def {
                fields: fields.to_vec(),
                doc,
                range: Versions::NONE,
            },
        );
        Ok(())
    }

    /// Adds the inline structs of `fields`, recursively.
    fn collect(&mut self, fields: &[Field]) -> Result<()> {
        for f in fields {
            if let (Some(inner), Some(name)) = (&f.fields, f.ty.struct_name()) {
                let doc = if f.about.is_empty() {
                    Vec::new()
                } else {
                    vec![f.about.clone()]
                };
                self.add(name, inner, doc)?;
                self.collect(inner)?;
            }
        }
        Ok(())
    }
}

pub fn build(spec: &MessageSpec) -> Result<MessageModel> {
    let mut c = Collector {
        msg: &spec.name,
        order: Vec::new(),
        defs: HashMap::new(),
    };
    c.collect(&spec.fields)?;
    for cs in &spec.common_structs {
        c.add(
            &cs.name,
            &cs.fields,
            vec![format!("A common struct of {}.", spec.name)],
        )?;
        c.collect(&cs.fields)?;
    }
    let Collector {
        order, mut defs, ..
    } = c;

    // Propagate version ranges from the top down.
    fn visit(
        fields: &[Field],
        range: Versions,
        defs: &mut HashMap<String, Def>,
        msg: &str,
    ) -> Result<()> {
        for f in fields {
            let Some(name) = f.ty.struct_name() else {
                continue;
            };
            let r = f.versions.intersect(range);
            if r.is_empty() {
                continue;
            }
            let Some(def) = defs.get_mut(name) else {
                bail!("{msg}: field {} refers to undefined struct {name}", f.name);
            };
            let new = def.range.hull(r);
            if new != def.range {
                def.range = new;
                let inner = def.fields.clone();
                visit(&inner, r, defs, msg)?;
            }
        }
        Ok(())
    }
    visit(&spec.fields, spec.valid, &mut defs, &spec.name)?;

    let mut structs = vec![StructInfo {
        name: spec.name.clone(),
        doc: top_doc(spec),
        fields: field_infos(&spec.fields, spec.valid)?,
        range: spec.valid,
    }];
    for name in order {
        let def = &defs[&name];
        if def.range.is_empty() {
            // Only used by fields that no valid version has.
            continue;
        }
        let mut doc = def.doc.clone();
        doc.push(format!("Used in versions {}.", def.range.describe()));
        structs.push(StructInfo {
            fields: field_infos(&def.fields, def.range)?,
            name,
            doc,
            range: def.range,
        });
    }
    Ok(MessageModel {
        module: snake_case(&spec.name),
        spec: spec.clone(),
        structs,
    })
}

fn field_infos(fields: &[Field], range: Versions) -> Result<Vec<FieldInfo>> {
    let mut out = Vec::new();
    for f in fields {
        if f.versions.intersect(range).is_empty() {
            continue;
        }
        out.push(FieldInfo::new(f, range)?);
    }
    let mut tags: Vec<u32> = out.iter().filter_map(|f| f.f.tag).collect();
    tags.sort_unstable();
    if tags.windows(2).any(|w| w[0] == w[1]) {
        bail!(
            "duplicate tag in struct with fields {:?}",
            out.iter().map(|f| &f.f.name).collect::<Vec<_>>()
        );
    }
    Ok(out)
}

fn top_doc(spec: &MessageSpec) -> Vec<String> {
    let what = match spec.kind {
        Kind::Request => format!(
            "The {} request body (API key {}).",
            spec.name,
            spec.api_key.unwrap_or(-1)
        ),
        Kind::Response => format!(
            "The {} response body (API key {}).",
            spec.name,
            spec.api_key.unwrap_or(-1)
        ),
        Kind::Header => format!("The {} protocol header.", spec.name),
        Kind::Data => format!("The {} data structure (not an API message).", spec.name),
    };
    let mut doc = vec![what, String::new()];
    let flex = if spec.flexible.intersect(spec.valid).is_empty() {
        "never flexible".to_string()
    } else {
        format!(
            "flexible in {}",
            spec.flexible.intersect(spec.valid).describe()
        )
    };
    doc.push(format!(
        "Valid versions: {}; {flex}.",
        spec.valid.describe()
    ));
    if spec.latest_unstable {
        doc.push(String::new());
        doc.push(format!(
            "Version {} is marked unstable upstream (`latestVersionUnstable`) and must not be negotiated.",
            spec.valid.hi
        ));
    }
    doc
}
