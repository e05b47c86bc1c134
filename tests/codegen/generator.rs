//! Turns `openapi/queues.json` into `src/generated/models.rs`.
//!
//! The generator is deliberately small and opinionated: it understands exactly the
//! OpenAPI constructs the crate's own spec uses and fails loudly on anything else, so a
//! spec edit can never be silently dropped. Conventions it emits:
//!
//! * `type: object` schemas become `#[non_exhaustive]` structs; optional fields are
//!   `Option<T>` (or an empty `Vec`/map) with `#[serde(default)]`, unknown fields are
//!   ignored, and request-side `None`s are not serialised.
//! * string `enum`s become open enums with an `Unknown(String)` variant.
//! * `oneOf` + `discriminator` become enums tagged on the discriminator property, with an
//!   `Unknown(serde_json::Value)` variant that keeps kinds this crate does not know.
//! * `type: number` must say what it really is through `x-rust-type` (`u32`, `u64`,
//!   `secs`, `millis`): the API types integers and durations as floats, and the codecs in
//!   `src/codec.rs` accept both `5` and `5.0`.
//! * `x-rust-field` renames a field (the wire name is kept through `serde(rename)`),
//!   `x-rust-variant` names a union variant, `x-rust-handwritten` skips a schema that
//!   lives in handwritten code (`x-rust-default: true` when that type implements `Default`), `x-rust-op` names an operation constant and
//!   `x-idempotent` overrides the method's default idempotency.
//! * A property that refers to a handwritten schema marked `nullable: true` keeps
//!   "absent" (`None`) apart from "sent as null" (`Some` of the handwritten type, which
//!   decides what null means).

use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// What a component schema turns into.
enum Kind<'a> {
    Handwritten,
    Enum(Vec<&'a str>),
    Union {
        tag: &'a str,
        variants: Vec<(&'a str, &'a str)>,
    },
    Struct,
}

struct Spec<'a> {
    schemas: &'a Map<String, Value>,
}

impl<'a> Spec<'a> {
    fn schema(&self, name: &str) -> Result<&'a Value, String> {
        self.schemas
            .get(name)
            .ok_or_else(|| format!("$ref to unknown schema `{name}`"))
    }

    fn kind(&self, name: &str) -> Result<Kind<'a>, String> {
        let schema = self.schema(name)?;
        if schema.get("x-rust-handwritten").is_some() {
            return Ok(Kind::Handwritten);
        }
        if let Some(one_of) = schema.get("oneOf") {
            let disc = schema
                .get("discriminator")
                .ok_or_else(|| format!("`{name}`: oneOf without a discriminator"))?;
            let tag = str_at(disc, "propertyName", name)?;
            let mapping = disc
                .get("mapping")
                .and_then(Value::as_object)
                .ok_or_else(|| format!("`{name}`: discriminator without a mapping"))?;
            let mut variants = Vec::new();
            for member in one_of.as_array().into_iter().flatten() {
                let target = ref_name(member)
                    .ok_or_else(|| format!("`{name}`: every oneOf member must be a $ref"))?;
                let tag_value = mapping
                    .iter()
                    .find(|(_, r)| r.as_str().and_then(|r| r.rsplit('/').next()) == Some(target))
                    .map(|(k, _)| k.as_str())
                    .ok_or_else(|| format!("`{name}`: `{target}` has no discriminator value"))?;
                variants.push((tag_value, target));
            }
            if variants.len() != mapping.len() {
                return Err(format!("`{name}`: mapping and oneOf disagree"));
            }
            return Ok(Kind::Union { tag, variants });
        }
        match schema.get("type").and_then(Value::as_str) {
            Some("string") => {
                let values = schema
                    .get("enum")
                    .and_then(Value::as_array)
                    .ok_or_else(|| format!("`{name}`: a named string schema must be an enum"))?;
                values
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .ok_or_else(|| format!("`{name}`: non-string enum value"))
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Kind::Enum)
            }
            Some("object") => Ok(Kind::Struct),
            other => Err(format!("`{name}`: unsupported schema type {other:?}")),
        }
    }

    /// Whether `Default` can be derived for the named type.
    fn has_default(&self, name: &str) -> Result<bool, String> {
        match self.kind(name)? {
            Kind::Struct => {
                let schema = self.schema(name)?;
                for (wire, prop) in properties(schema) {
                    let field = self.field(name, wire, prop, is_required(schema, wire))?;
                    if !field.default {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            // A handwritten type says so when it implements `Default`.
            Kind::Handwritten => Ok(self
                .schema(name)?
                .get("x-rust-default")
                .and_then(Value::as_bool)
                .unwrap_or(false)),
            _ => Ok(false),
        }
    }

    fn field(
        &self,
        owner: &str,
        wire: &str,
        prop: &Value,
        required: bool,
    ) -> Result<Field, String> {
        let ctx = format!("`{owner}.{wire}`");
        let rust_name = match prop.get("x-rust-field").and_then(Value::as_str) {
            Some(n) => n.to_owned(),
            None => rust_ident(&snake_case(wire)),
        };
        let doc = prop
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("Wire field `{wire}`."));

        // Fields steered by a codec: (Rust type, module when required, module when optional).
        if let Some(codec) = prop.get("x-rust-type").and_then(Value::as_str) {
            let (ty, required_module, optional_module) = match codec {
                "u32" => ("u32", Some("flex_u32"), "opt_flex_u32"),
                "u64" => ("u64", Some("flex_u64"), "opt_flex_u64"),
                "secs" => ("std::time::Duration", Some("secs"), "opt_secs"),
                "millis" => ("std::time::Duration", Some("millis"), "opt_millis"),
                // Always optional: "" and absence both mean "not set".
                "empty-none" => ("String", None, "empty_none"),
                "lenient-bool" => ("bool", None, "opt_lenient_bool"),
                "ack-warnings" => {
                    let attrs = "default, with = \"crate::codec::ack_warnings\", skip_serializing_if = \"Vec::is_empty\"";
                    let ty = "Vec<crate::codec::AckWarning>".to_owned();
                    return Ok(Field {
                        rust_name,
                        wire: wire.to_owned(),
                        ty,
                        attrs: attrs.to_owned(),
                        doc,
                        default: true,
                    });
                }
                other => return Err(format!("{ctx}: unknown x-rust-type `{other}`")),
            };
            let (ty, attrs) = match required_module {
                Some(module) if required => (
                    ty.to_owned(),
                    format!("default, with = \"crate::codec::{module}\""),
                ),
                _ => (
                    format!("Option<{ty}>"),
                    format!(
                        "default, with = \"crate::codec::{optional_module}\", skip_serializing_if = \"Option::is_none\""
                    ),
                ),
            };
            return Ok(Field {
                rust_name,
                wire: wire.to_owned(),
                ty,
                attrs,
                doc,
                default: true,
            });
        }

        let nullable = self.nullable(&ctx, prop)?;
        let (base, base_default, collection) = self.value_type(&ctx, prop)?;
        let (ty, attrs, default) = if nullable {
            if required {
                return Err(format!("{ctx}: a nullable field must be optional"));
            }
            // `None` is "absent"; `Some` holds whatever was sent, null included, and the
            // handwritten type says what null means.
            (
                format!("Option<{base}>"),
                "default, deserialize_with = \"crate::codec::present\", skip_serializing_if = \"Option::is_none\"".to_owned(),
                true,
            )
        } else if let Some(empty_check) = collection {
            let attrs = if required {
                "default".to_owned()
            } else {
                format!("default, skip_serializing_if = \"{empty_check}\"")
            };
            (base, attrs, true)
        } else if required && base_default {
            (base, "default".to_owned(), true)
        } else if required {
            (base, String::new(), false)
        } else {
            (
                format!("Option<{base}>"),
                "default, skip_serializing_if = \"Option::is_none\"".to_owned(),
                true,
            )
        };
        Ok(Field {
            rust_name,
            wire: wire.to_owned(),
            ty,
            attrs,
            doc,
            default,
        })
    }

    /// Whether `null` is a value of its own for this property (not the same as absent).
    /// Only a `$ref` to a handwritten schema marked `nullable` can say so: generated
    /// types have no way to tell what null means.
    fn nullable(&self, ctx: &str, prop: &Value) -> Result<bool, String> {
        if prop.get("nullable").is_some() {
            return Err(format!(
                "{ctx}: mark the referenced handwritten schema nullable, not the property"
            ));
        }
        let Some(target) = ref_name(prop) else {
            return Ok(false);
        };
        let schema = self.schema(target)?;
        let nullable = schema.get("nullable").and_then(Value::as_bool) == Some(true);
        if nullable && schema.get("x-rust-handwritten").is_none() {
            return Err(format!(
                "{ctx}: nullable `{target}` must be handwritten (x-rust-handwritten)"
            ));
        }
        Ok(nullable)
    }

    /// Rust type of a property value: (type, derives Default, emptiness check for collections).
    fn value_type(
        &self,
        ctx: &str,
        prop: &Value,
    ) -> Result<(String, bool, Option<&'static str>), String> {
        if let Some(target) = ref_name(prop) {
            let path = match self
                .schema(target)?
                .get("x-rust-handwritten")
                .and_then(Value::as_str)
            {
                Some(path) => path.to_owned(),
                None => target.to_owned(),
            };
            return Ok((path, self.has_default(target)?, None));
        }
        match prop.get("type").and_then(Value::as_str) {
            None => Ok(("serde_json::Value".to_owned(), true, None)),
            Some("string") => {
                if prop.get("enum").is_some() {
                    return Err(format!(
                        "{ctx}: inline enums are not supported; name the enum"
                    ));
                }
                Ok(("String".to_owned(), true, None))
            }
            Some("boolean") => Ok(("bool".to_owned(), true, None)),
            Some("integer") => Ok(("u64".to_owned(), true, None)),
            Some("number") => Err(format!(
                "{ctx}: `number` needs an x-rust-type (u32, u64, secs, millis)"
            )),
            Some("array") => {
                let items = prop
                    .get("items")
                    .ok_or_else(|| format!("{ctx}: array without items"))?;
                let (inner, _, _) = self.value_type(ctx, items)?;
                Ok((format!("Vec<{inner}>"), true, Some("Vec::is_empty")))
            }
            Some("object") => {
                if prop
                    .get("properties")
                    .and_then(Value::as_object)
                    .is_some_and(|p| !p.is_empty())
                {
                    return Err(format!(
                        "{ctx}: inline objects are not supported; name the schema"
                    ));
                }
                match prop.get("additionalProperties") {
                    Some(ap) if ap.get("type").and_then(Value::as_str) == Some("string") => Ok((
                        "std::collections::BTreeMap<String, String>".to_owned(),
                        true,
                        Some("std::collections::BTreeMap::is_empty"),
                    )),
                    _ => Ok((
                        "serde_json::Map<String, serde_json::Value>".to_owned(),
                        true,
                        Some("serde_json::Map::is_empty"),
                    )),
                }
            }
            Some(other) => Err(format!("{ctx}: unsupported type `{other}`")),
        }
    }
}

struct Field {
    rust_name: String,
    wire: String,
    ty: String,
    attrs: String,
    doc: String,
    default: bool,
}

/// Renders the whole generated module. The output is not yet formatted.
pub fn render(spec: &Value) -> Result<String, String> {
    let schemas = spec
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .ok_or("spec has no components.schemas")?;
    let spec_view = Spec { schemas };

    // Union members with nothing but their tag become unit variants and get no struct.
    let mut unit_members = BTreeMap::new();
    for name in schemas.keys() {
        if let Kind::Union { variants, .. } = spec_view.kind(name)? {
            for (_, member) in variants {
                if properties(spec_view.schema(member)?).next().is_none() {
                    unit_members.insert(member.to_owned(), ());
                }
            }
        }
    }

    let mut out = String::new();
    out.push_str(HEADER);
    out.push_str("use serde::{Deserialize, Deserializer, Serialize, Serializer};\n\n");

    for (name, schema) in schemas {
        if unit_members.contains_key(name) {
            continue;
        }
        let doc = schema
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or(name);
        match spec_view.kind(name)? {
            Kind::Handwritten => {}
            Kind::Struct => render_struct(&spec_view, &mut out, name, schema, doc)?,
            Kind::Enum(values) => render_enum(&mut out, name, doc, &values, schema),
            Kind::Union { tag, variants } => render_union(
                &spec_view,
                &mut out,
                name,
                doc,
                tag,
                &variants,
                &unit_members,
            )?,
        }
    }

    render_ops(spec, &mut out)?;
    Ok(out)
}

const HEADER: &str = "// @generated by tests/codegen/generator.rs from openapi/queues.json. Do not edit.\n\
// Regenerate with: UPDATE_CODEGEN=1 cargo test --test codegen\n\n";

fn render_struct(
    spec: &Spec<'_>,
    out: &mut String,
    name: &str,
    schema: &Value,
    doc: &str,
) -> Result<(), String> {
    let mut fields = Vec::new();
    for (wire, prop) in properties(schema) {
        fields.push(spec.field(name, wire, prop, is_required(schema, wire))?);
    }
    let default = if fields.iter().all(|f| f.default) {
        ", Default"
    } else {
        ""
    };
    doc_comment(out, "", doc);
    let _ = writeln!(
        out,
        "#[derive(Debug, Clone, PartialEq, Serialize, Deserialize{default})]"
    );
    out.push_str("#[non_exhaustive]\n");
    let _ = writeln!(out, "pub struct {name} {{");
    for f in &fields {
        doc_comment(out, "    ", &f.doc);
        let mut attrs = Vec::new();
        if f.rust_name.trim_start_matches("r#") != f.wire {
            attrs.push(format!("rename = \"{}\"", f.wire));
        }
        if !f.attrs.is_empty() {
            attrs.push(f.attrs.clone());
        }
        if !attrs.is_empty() {
            let _ = writeln!(out, "    #[serde({})]", attrs.join(", "));
        }
        let _ = writeln!(out, "    pub {}: {},", f.rust_name, f.ty);
    }
    out.push_str("}\n\n");
    Ok(())
}

fn render_enum(out: &mut String, name: &str, doc: &str, values: &[&str], schema: &Value) {
    doc_comment(out, "", doc);
    out.push_str("#[derive(Debug, Clone, PartialEq, Eq, Hash)]\n#[non_exhaustive]\n");
    let _ = writeln!(out, "pub enum {name} {{");
    // `x-enum-descriptions` says what each value means; the wire value alone otherwise.
    let meanings = schema.get("x-enum-descriptions").and_then(Value::as_object);
    for v in values {
        match meanings.and_then(|m| m.get(*v)).and_then(Value::as_str) {
            Some(meaning) => {
                let _ = writeln!(out, "    /// `{v}`: {meaning}\n    {},", pascal_case(v));
            }
            None => {
                let _ = writeln!(out, "    /// `{v}`\n    {},", pascal_case(v));
            }
        }
    }
    out.push_str(
        "    /// A value this crate does not know yet, kept verbatim.\n    Unknown(String),\n}\n\n",
    );

    let _ = writeln!(out, "impl {name} {{");
    out.push_str(
        "    /// The wire spelling.\n    pub fn as_str(&self) -> &str {\n        match self {\n",
    );
    for v in values {
        let _ = writeln!(out, "            Self::{} => \"{v}\",", pascal_case(v));
    }
    out.push_str("            Self::Unknown(other) => other,\n        }\n    }\n}\n\n");

    let _ = writeln!(out, "impl From<&str> for {name} {{");
    out.push_str("    fn from(value: &str) -> Self {\n        match value {\n");
    for v in values {
        let _ = writeln!(out, "            \"{v}\" => Self::{},", pascal_case(v));
    }
    out.push_str("            other => Self::Unknown(other.to_owned()),\n        }\n    }\n}\n\n");

    let _ = writeln!(
        out,
        "impl std::fmt::Display for {name} {{\n    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {{\n        f.write_str(self.as_str())\n    }}\n}}\n"
    );
    let _ = writeln!(
        out,
        "impl Serialize for {name} {{\n    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {{\n        serializer.serialize_str(self.as_str())\n    }}\n}}\n"
    );
    let _ = writeln!(
        out,
        "impl<'de> Deserialize<'de> for {name} {{\n    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {{\n        let value = String::deserialize(deserializer)?;\n        Ok(Self::from(value.as_str()))\n    }}\n}}\n"
    );
}

fn render_union(
    spec: &Spec<'_>,
    out: &mut String,
    name: &str,
    doc: &str,
    tag: &str,
    variants: &[(&str, &str)],
    unit_members: &BTreeMap<String, ()>,
) -> Result<(), String> {
    struct Variant<'v> {
        tag_value: &'v str,
        ident: String,
        member: &'v str,
        unit: bool,
        doc: String,
    }
    let mut vs = Vec::new();
    for (tag_value, member) in variants {
        let schema = spec.schema(member)?;
        let ident = schema
            .get("x-rust-variant")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| pascal_case(tag_value));
        let vdoc = schema
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or(member);
        vs.push(Variant {
            tag_value,
            ident,
            member,
            unit: unit_members.contains_key(*member),
            doc: format!("{vdoc} (`{tag}: \"{tag_value}\"`)"),
        });
    }

    doc_comment(out, "", doc);
    out.push_str("#[derive(Debug, Clone, PartialEq)]\n#[non_exhaustive]\n");
    let _ = writeln!(out, "pub enum {name} {{");
    for v in &vs {
        doc_comment(out, "    ", &v.doc);
        if v.unit {
            let _ = writeln!(out, "    {},", v.ident);
        } else {
            let _ = writeln!(out, "    {}({}),", v.ident, v.member);
        }
    }
    let _ = writeln!(
        out,
        "    /// A kind this crate does not know yet, kept as the raw JSON object.\n    Unknown(serde_json::Value),\n}}\n"
    );

    let _ = writeln!(out, "impl {name} {{");
    let _ = writeln!(
        out,
        "    /// The `{tag}` value on the wire, when there is one.\n    pub fn kind(&self) -> Option<&str> {{\n        match self {{"
    );
    for v in &vs {
        let pat = if v.unit {
            String::new()
        } else {
            "(_)".to_owned()
        };
        let _ = writeln!(
            out,
            "            Self::{}{pat} => Some(\"{}\"),",
            v.ident, v.tag_value
        );
    }
    let _ = writeln!(
        out,
        "            Self::Unknown(raw) => raw.get(\"{tag}\").and_then(serde_json::Value::as_str),\n        }}\n    }}\n}}\n"
    );

    let _ = writeln!(
        out,
        "impl Serialize for {name} {{\n    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {{\n        match self {{"
    );
    for v in &vs {
        if v.unit {
            let _ = writeln!(
                out,
                "            Self::{} => crate::codec::serialize_tagged(serializer, \"{tag}\", \"{}\", &()),",
                v.ident, v.tag_value
            );
        } else {
            let _ = writeln!(
                out,
                "            Self::{}(inner) => crate::codec::serialize_tagged(serializer, \"{tag}\", \"{}\", inner),",
                v.ident, v.tag_value
            );
        }
    }
    out.push_str(
        "            Self::Unknown(raw) => raw.serialize(serializer),\n        }\n    }\n}\n\n",
    );

    let _ = writeln!(
        out,
        "impl<'de> Deserialize<'de> for {name} {{\n    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {{\n        let raw = serde_json::Value::deserialize(deserializer)?;\n        let kind = raw.get(\"{tag}\").and_then(serde_json::Value::as_str).map(str::to_owned);\n        match kind.as_deref() {{"
    );
    for v in &vs {
        if v.unit {
            let _ = writeln!(
                out,
                "            Some(\"{}\") => Ok(Self::{}),",
                v.tag_value, v.ident
            );
        } else {
            let _ = writeln!(
                out,
                "            Some(\"{}\") => crate::codec::from_tagged(raw).map(Self::{}),",
                v.tag_value, v.ident
            );
        }
    }
    out.push_str("            _ => Ok(Self::Unknown(raw)),\n        }\n    }\n}\n\n");
    Ok(())
}

fn render_ops(spec: &Value, out: &mut String) -> Result<(), String> {
    let paths = spec
        .get("paths")
        .and_then(Value::as_object)
        .ok_or("spec has no paths")?;
    let mut ops = Vec::new();
    for (path, item) in paths {
        let item = item
            .as_object()
            .ok_or_else(|| format!("path `{path}` is not an object"))?;
        for (method, op) in item {
            let upper = match method.as_str() {
                "get" | "put" | "post" | "patch" | "delete" => method.to_uppercase(),
                "parameters" | "summary" | "description" => continue,
                other => return Err(format!("`{path}`: unsupported method `{other}`")),
            };
            let id = str_at(op, "operationId", path)?;
            let konst = str_at(op, "x-rust-op", id)?;
            let summary = op.get("summary").and_then(Value::as_str).unwrap_or(id);
            let idempotent = op
                .get("x-idempotent")
                .and_then(Value::as_bool)
                .unwrap_or(upper != "POST");
            ops.push((
                konst.to_owned(),
                id.to_owned(),
                upper,
                path.clone(),
                summary.to_owned(),
                idempotent,
            ));
        }
    }
    ops.sort();

    out.push_str(
        "/// Every operation of the Queues REST API this crate calls: method, path template and idempotency.\n",
    );
    out.push_str(
        "pub mod ops {\n    use crate::transport::Operation;\n    use reqwest::Method;\n\n",
    );
    for (konst, id, method, path, summary, idempotent) in &ops {
        doc_comment(
            out,
            "    ",
            &format!("{summary}\n\n`{method} {path}` (`{id}`)"),
        );
        let _ = writeln!(
            out,
            "    pub const {konst}: Operation = Operation {{ id: \"{id}\", method: Method::{method}, path: \"{path}\", idempotent: {idempotent} }};\n"
        );
    }
    out.push_str(
        "    /// All operations, sorted by constant name.\n    pub const ALL: &[Operation] = &[\n",
    );
    for (konst, ..) in &ops {
        let _ = writeln!(out, "        {konst},");
    }
    out.push_str("    ];\n}\n");
    Ok(())
}

fn properties(schema: &Value) -> impl Iterator<Item = (&String, &Value)> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
}

fn is_required(schema: &Value, wire: &str) -> bool {
    schema
        .get("required")
        .and_then(Value::as_array)
        .is_some_and(|r| r.iter().any(|v| v.as_str() == Some(wire)))
}

fn ref_name(v: &Value) -> Option<&str> {
    v.get("$ref")?
        .as_str()?
        .strip_prefix("#/components/schemas/")
}

fn str_at<'v>(v: &'v Value, key: &str, ctx: &str) -> Result<&'v str, String> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("`{ctx}`: missing `{key}`"))
}

fn doc_comment(out: &mut String, indent: &str, text: &str) {
    for line in text.lines() {
        if line.is_empty() {
            let _ = writeln!(out, "{indent}///");
        } else {
            let _ = writeln!(out, "{indent}/// {line}");
        }
    }
}

/// `ackCount` -> `ack_count`, `batch_size` stays.
fn snake_case(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `http_pull` -> `HttpPull`, `workersAi.model` -> `WorkersAiModel`.
fn pascal_case(s: &str) -> String {
    s.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut cs = p.chars();
            cs.next()
                .map(|f| f.to_ascii_uppercase().to_string() + cs.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn rust_ident(s: &str) -> String {
    const KEYWORDS: &[&str] = &[
        "type", "ref", "match", "move", "self", "crate", "use", "mod", "fn", "impl",
    ];
    if KEYWORDS.contains(&s) {
        format!("r#{s}")
    } else {
        s.to_owned()
    }
}
