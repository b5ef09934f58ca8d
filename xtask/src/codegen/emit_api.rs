//! Emits the per-message module files and `mod.rs` (entity aliases,
//! `ApiKey`, the `RequestBody`/`ResponseBody` dispatch enums) and the
//! generated round-trip tests.

use std::fmt::Write as _;

use anyhow::{Result, bail};

use super::HEADER;
use super::emit_struct::StructEmitter;
use super::model::MessageModel;
use super::schema::Kind;

/// The `ApiKey` variant for a request/response name (`ProduceRequest` → `Produce`).
pub fn api_name(m: &MessageModel) -> &str {
    let n = &m.spec.name;
    n.strip_suffix("Request")
        .or_else(|| n.strip_suffix("Response"))
        .unwrap_or(n)
}

const FILE_ALLOWS: &str = "#![allow(clippy::field_reassign_with_default, clippy::derivable_impls, clippy::needless_borrow, clippy::too_many_lines, unused_imports)]";

pub fn message_file(m: &MessageModel) -> Result<String> {
    let spec = &m.spec;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{HEADER}\n//! `{}`: see [`{}`].\n{FILE_ALLOWS}\n",
        spec.name, spec.name
    );
    out.push_str("use super::prelude::*;\n#[cfg(test)]\nuse super::testgen::{Gen, Random};\n\n");
    for s in &m.structs {
        out.push_str(
            &StructEmitter {
                s,
                flexible: spec.flexible,
            }
            .emit()?,
        );
    }
    let flex_since = if spec.flexible.intersect(spec.valid).is_empty() {
        "None".to_string()
    } else {
        format!("Some({})", spec.flexible.lo)
    };
    let _ = writeln!(
        out,
        r#"impl Message for {name} {{
const NAME: &'static str = "{name}";
const VERSIONS: VersionRange = VersionRange::new({lo}, {hi});
const FLEXIBLE_SINCE: Option<i16> = {flex_since};

fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<(), EncodeError> {{
if !Self::VERSIONS.contains(version) {{
return Err(EncodeError::UnsupportedVersion {{ message: Self::NAME, version, min: {lo}, max: {hi} }});
}}
self.write_to(buf, version)
}}

fn decode(buf: &mut Bytes, version: i16) -> Result<Self, DecodeError> {{
if !Self::VERSIONS.contains(version) {{
return Err(DecodeError::UnsupportedVersion {{ message: Self::NAME, version, min: {lo}, max: {hi} }});
}}
Self::read_from(buf, version)
}}
}}
"#,
        name = spec.name,
        lo = spec.valid.lo,
        hi = spec.valid.hi,
    );
    match spec.kind {
        Kind::Request => {
            // The one request the broker may leave unanswered: Produce with
            // acks=0 (the protocol guide's "Produce" section).
            let expects_response = if spec.name == "ProduceRequest" {
                "\nfn expects_response(&self) -> bool {\nself.acks != 0\n}"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "impl Request for {} {{\nconst API_KEY: ApiKey = ApiKey::{};\ntype Response = super::{}Response;{}\n}}",
                spec.name,
                api_name(m),
                api_name(m),
                expects_response
            );
        }
        Kind::Response => {
            let _ = writeln!(
                out,
                "impl Response for {} {{\nconst API_KEY: ApiKey = ApiKey::{};\n}}",
                spec.name,
                api_name(m)
            );
        }
        Kind::Header | Kind::Data => {}
    }
    Ok(out)
}

/// One API: its request and response models.
pub struct Api<'a> {
    pub req: &'a MessageModel,
    pub resp: &'a MessageModel,
}

impl Api<'_> {
    fn name(&self) -> &str {
        api_name(self.req)
    }
}

pub fn check_pairs(apis: &[Api<'_>]) -> Result<()> {
    for a in apis {
        let (q, r) = (&a.req.spec, &a.resp.spec);
        if q.api_key != r.api_key || q.valid != r.valid || q.flexible != r.flexible {
            bail!(
                "{} and {} disagree on key, versions or flexible versions",
                q.name,
                r.name
            );
        }
    }
    Ok(())
}

pub fn mod_file(models: &[MessageModel], apis: &[Api<'_>]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"{HEADER}
//! Every Kafka message, generated from Kafka's JSON definitions.
//!
//! Each definition file becomes one module (for example [`produce_request`])
//! holding the top-level message and its nested structs; the top-level types
//! are re-exported here. [`ApiKey`] lists the APIs, and [`RequestBody`] /
//! [`ResponseBody`] decode any request or response given its key.
#![allow(clippy::large_enum_variant)]

mod error_code;
#[cfg(test)]
mod roundtrip;
#[cfg(test)]
mod testgen;
#[cfg(test)]
mod tests;

pub use error_code::ErrorCode;

/// What every generated module imports.
mod prelude {{
    pub use super::{{ApiKey, BrokerId, ErrorCode, GroupId, ProducerId, TopicName, TransactionalId}};
    pub use crate::codec::*;
    pub use crate::{{DecodeError, EncodeError, Message, Request, Response, VersionRange}};
    pub use bytes::{{BufMut, Bytes, BytesMut}};
}}

use bytes::{{Bytes, BytesMut}};

use crate::{{DecodeError, EncodeError, Message, VersionRange}};

/// A topic name (`entityType: topicName`).
pub type TopicName = String;
/// A consumer or share group id (`entityType: groupId`).
pub type GroupId = String;
/// A broker (node) id (`entityType: brokerId`).
pub type BrokerId = i32;
/// A producer id (`entityType: producerId`).
pub type ProducerId = i64;
/// A transactional id (`entityType: transactionalId`).
pub type TransactionalId = String;
"#
    );
    for m in models {
        let _ = writeln!(out, "pub mod {};", m.module);
    }
    out.push('\n');
    for m in models {
        let _ = writeln!(out, "pub use {}::{};", m.module, m.spec.name);
    }
    out.push('\n');
    emit_api_key(&mut out, apis);
    emit_body_enum(&mut out, apis, true);
    emit_body_enum(&mut out, apis, false);
    out
}

fn emit_api_key(out: &mut String, apis: &[Api<'_>]) {
    let n = apis.len();
    out.push_str(
        "/// A Kafka API, identified on the wire by its 16-bit key.\n\
         #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]\n\
         #[repr(i16)]\n#[non_exhaustive]\npub enum ApiKey {\n",
    );
    for a in apis {
        let s = &a.req.spec;
        let _ = writeln!(
            out,
            "/// {} (key {}), versions {}.\n{} = {},",
            a.name(),
            s.api_key.unwrap_or_default(),
            s.valid.describe(),
            a.name(),
            s.api_key.unwrap_or_default()
        );
    }
    out.push_str("}\n\n");
    let arms = |f: &dyn Fn(&Api<'_>) -> String| -> String {
        apis.iter()
            .map(|a| format!("ApiKey::{} => {},\n", a.name(), f(a)))
            .collect()
    };
    let all: Vec<String> = apis
        .iter()
        .map(|a| format!("ApiKey::{}", a.name()))
        .collect();
    let from: String = apis
        .iter()
        .map(|a| {
            format!(
                "{} => ApiKey::{},\n",
                a.req.spec.api_key.unwrap_or_default(),
                a.name()
            )
        })
        .collect();
    let _ = writeln!(
        out,
        r#"impl ApiKey {{
/// Every API this crate knows, in key order.
pub const ALL: [ApiKey; {n}] = [{all}];

/// The API with wire key `key`, if this crate knows it.
pub const fn from_i16(key: i16) -> Option<ApiKey> {{
Some(match key {{
{from}_ => return None,
}})
}}

/// The wire key.
pub const fn as_i16(self) -> i16 {{
self as i16
}}

/// The API's name, for example `Produce`.
pub const fn name(self) -> &'static str {{
match self {{
{names}}}
}}

/// The request (and response) versions this crate can encode and decode.
pub const fn request_versions(self) -> VersionRange {{
match self {{
{versions}}}
}}

/// The versions a client may negotiate: [`Self::request_versions`] without
/// a latest version that Kafka marks unstable (`latestVersionUnstable`).
pub const fn stable_versions(self) -> VersionRange {{
VersionRange::new(self.request_versions().min, self.max_stable_version())
}}

/// The highest version a client may negotiate.
pub const fn max_stable_version(self) -> i16 {{
match self {{
{stable}}}
}}

/// The first flexible (KIP-482) version, if any.
pub const fn flexible_since(self) -> Option<i16> {{
match self {{
{flex}}}
}}

/// True when `version` of this API uses the flexible encoding.
pub const fn is_flexible(self, version: i16) -> bool {{
match self.flexible_since() {{
Some(v) => version >= v,
None => false,
}}
}}

/// The request header version for `version` of this API: 2 if flexible, else 1.
pub const fn request_header_version(self, version: i16) -> i16 {{
if self.is_flexible(version) {{ 2 }} else {{ 1 }}
}}

/// The response header version for `version` of this API: 1 if flexible,
/// else 0. ApiVersions responses always use header version 0 (KIP-511).
pub const fn response_header_version(self, version: i16) -> i16 {{
if matches!(self, ApiKey::ApiVersions) {{
0
}} else if self.is_flexible(version) {{
1
}} else {{
0
}}
}}

/// The kinds of server endpoint that accept this API (`broker`, `controller`).
pub const fn listeners(self) -> &'static [&'static str] {{
match self {{
{listeners}}}
}}
}}

impl TryFrom<i16> for ApiKey {{
type Error = DecodeError;

fn try_from(key: i16) -> Result<Self, DecodeError> {{
ApiKey::from_i16(key).ok_or(DecodeError::UnknownApiKey(key))
}}
}}

impl From<ApiKey> for i16 {{
fn from(key: ApiKey) -> i16 {{
key as i16
}}
}}

impl std::fmt::Display for ApiKey {{
fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {{
f.write_str(self.name())
}}
}}
"#,
        all = all.join(", "),
        names = arms(&|a| format!("\"{}\"", a.name())),
        versions = arms(&|a| format!(
            "VersionRange::new({}, {})",
            a.req.spec.valid.lo, a.req.spec.valid.hi
        )),
        stable = arms(&|a| {
            let s = &a.req.spec;
            (if s.latest_unstable || a.resp.spec.latest_unstable {
                s.valid.hi - 1
            } else {
                s.valid.hi
            })
            .to_string()
        }),
        flex = arms(&|a| {
            let s = &a.req.spec;
            if s.flexible.intersect(s.valid).is_empty() {
                "None".to_string()
            } else {
                format!("Some({})", s.flexible.lo)
            }
        }),
        listeners = arms(&|a| {
            let l: Vec<String> = a
                .req
                .spec
                .listeners
                .iter()
                .map(|s| format!("{s:?}"))
                .collect();
            format!("&[{}]", l.join(", "))
        }),
    );
}

fn emit_body_enum(out: &mut String, apis: &[Api<'_>], request: bool) {
    let (ty, what) = if request {
        ("RequestBody", "request")
    } else {
        ("ResponseBody", "response")
    };
    let model = |a: &Api<'_>| {
        if request {
            &a.req.spec.name
        } else {
            &a.resp.spec.name
        }
        .clone()
    };
    let _ = writeln!(
        out,
        "/// Any {what} body, tagged by API: decode one knowing only its API key and version.\n\
         #[derive(Debug, Clone, PartialEq)]\npub enum {ty} {{"
    );
    for a in apis {
        let _ = writeln!(out, "/// A [`{}`].\n{}({}),", model(a), a.name(), model(a));
    }
    out.push_str("}\n\n");
    let mut key_arms = String::new();
    let mut enc_arms = String::new();
    let mut dec_arms = String::new();
    let mut froms = String::new();
    for a in apis {
        let (n, m) = (a.name(), model(a));
        let _ = writeln!(key_arms, "{ty}::{n}(_) => ApiKey::{n},");
        let _ = writeln!(enc_arms, "{ty}::{n}(m) => m.encode(buf, version),");
        let _ = writeln!(
            dec_arms,
            "ApiKey::{n} => {ty}::{n}({m}::decode(buf, version)?),"
        );
        let _ = writeln!(
            froms,
            "impl From<{m}> for {ty} {{\nfn from(m: {m}) -> Self {{\n{ty}::{n}(m)\n}}\n}}\n"
        );
    }
    let _ = writeln!(
        out,
        r#"impl {ty} {{
/// The API this {what} belongs to.
pub fn api_key(&self) -> ApiKey {{
match self {{
{key_arms}}}
}}

/// Appends the body's encoding at `version` (no size prefix, no header).
pub fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<(), EncodeError> {{
match self {{
{enc_arms}}}
}}

/// Decodes the {what} body of API `api_key` at `version` from the front of `buf`.
pub fn decode(api_key: ApiKey, version: i16, buf: &mut Bytes) -> Result<Self, DecodeError> {{
Ok(match api_key {{
{dec_arms}}})
}}
}}

{froms}"#
    );
}

/// The generated round-trip property tests: one per message.
pub fn roundtrip_file(models: &[MessageModel]) -> String {
    let mut tests = String::new();
    for m in models {
        let helper = match m.spec.kind {
            Kind::Request => "roundtrip_request",
            Kind::Response => "roundtrip_response",
            Kind::Header | Kind::Data => "roundtrip_message",
        };
        let _ = writeln!(
            tests,
            "#[test]\nfn {}(seed in any::<u64>()) {{\n{helper}::<{}>(seed)?;\n}}\n",
            m.module, m.spec.name
        );
    }
    format!(
        r#"{HEADER}
//! Round trip of every message at every valid version with random values:
//! encode, decode, compare, re-encode and compare bytes.

use proptest::prelude::*;

use super::testgen::{{roundtrip_message, roundtrip_request, roundtrip_response}};
use super::*;

proptest! {{
#![proptest_config(ProptestConfig {{ cases: 64, ..ProptestConfig::default() }})]

{tests}}}
"#
    )
}
