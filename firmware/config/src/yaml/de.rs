//! A serde deserializer over a [`Node`] that says where each error is.
//!
//! Errors carry the mark of the innermost node that failed and the key path down to it,
//! filled in as the error travels back out through the maps and sequences.

use std::fmt;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use super::tree::{Mark, Node, NodeKind};

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// Renders a path as `links[0].addresses[1]`.
pub fn render_path(path: &[Segment]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Segment::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Segment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// What kind of decoding problem this is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A key the type does not have.
    UnknownKey { key: String, expected: Vec<String> },
    /// A required key is absent.
    MissingKey { key: String },
    /// A value of the wrong type or form.
    Invalid { message: String },
}

/// A decoding error with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeError {
    pub problem: Problem,
    pub mark: Option<Mark>,
    /// Innermost segment last once the error has left the deserializer.
    pub path: Vec<Segment>,
}

impl DeError {
    fn at(mut self, mark: Mark) -> Self {
        self.mark.get_or_insert(mark);
        self
    }
    fn within(mut self, seg: Segment) -> Self {
        self.path.insert(0, seg);
        self
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.problem {
            Problem::UnknownKey { key, expected } => {
                write!(f, "unknown key `{key}`")?;
                if !expected.is_empty() {
                    write!(f, " (known keys: {})", expected.join(", "))?;
                }
                Ok(())
            }
            Problem::MissingKey { key } => write!(f, "missing required key `{key}`"),
            Problem::Invalid { message } => f.write_str(message),
        }
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            problem: Problem::Invalid {
                message: msg.to_string(),
            },
            mark: None,
            path: Vec::new(),
        }
    }
    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        DeError {
            problem: Problem::UnknownKey {
                key: field.to_string(),
                expected: expected.iter().map(|s| s.to_string()).collect(),
            },
            mark: None,
            path: Vec::new(),
        }
    }
    fn missing_field(field: &'static str) -> Self {
        DeError {
            problem: Problem::MissingKey {
                key: field.to_string(),
            },
            mark: None,
            path: Vec::new(),
        }
    }
}

/// Deserializes a node.
#[derive(Debug, Clone, Copy)]
pub struct NodeDeserializer<'a> {
    node: &'a Node,
}

impl<'a> NodeDeserializer<'a> {
    pub fn new(node: &'a Node) -> Self {
        NodeDeserializer { node }
    }
}

/// Deserializes `T` from a node; the error's path is outermost first.
pub fn from_node<'de, T: de::Deserialize<'de>>(node: &Node) -> Result<T, DeError> {
    T::deserialize(NodeDeserializer::new(node)).map_err(|e| e.at(node.mark))
}

/// How a plain scalar resolves under the YAML 1.2 core schema.
enum Resolved<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(&'a str),
}

fn resolve(value: &str, plain: bool) -> Resolved<'_> {
    if !plain {
        return Resolved::Str(value);
    }
    match value {
        "" | "~" | "null" | "Null" | "NULL" => return Resolved::Null,
        "true" | "True" | "TRUE" => return Resolved::Bool(true),
        "false" | "False" | "FALSE" => return Resolved::Bool(false),
        _ => {}
    }
    let digits = value.strip_prefix(['-', '+']).unwrap_or(value);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(u) = value.trim_start_matches('+').parse::<u64>() {
            return Resolved::Uint(u);
        }
        if let Ok(i) = value.parse::<i64>() {
            return Resolved::Int(i);
        }
    }
    let looks_float = value.bytes().any(|b| b.is_ascii_digit())
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'));
    if looks_float {
        if let Ok(f) = value.parse::<f64>() {
            return Resolved::Float(f);
        }
    }
    Resolved::Str(value)
}

/// True when a plain scalar with this text would read back as the string itself.
pub fn plain_is_string(value: &str) -> bool {
    matches!(resolve(value, true), Resolved::Str(_))
}

impl<'de> de::Deserializer<'de> for NodeDeserializer<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.kind {
            NodeKind::Scalar { value, plain } => match resolve(value, *plain) {
                Resolved::Null => visitor.visit_unit(),
                Resolved::Bool(b) => visitor.visit_bool(b),
                Resolved::Int(i) => visitor.visit_i64(i),
                Resolved::Uint(u) => visitor.visit_u64(u),
                Resolved::Float(f) => visitor.visit_f64(f),
                Resolved::Str(s) => visitor.visit_str(s),
            },
            NodeKind::Seq(items) => visitor.visit_seq(SeqAccess {
                items: items.iter(),
                index: 0,
            }),
            NodeKind::Map(entries) => visitor.visit_map(MapAccess {
                entries: entries.iter(),
                value: None,
            }),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.kind {
            NodeKind::Scalar { value, plain }
                if !matches!(resolve(value, *plain), Resolved::Null) =>
            {
                visitor.visit_str(value)
            }
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.node.kind {
            NodeKind::Scalar { value, .. } => {
                visitor.visit_enum(value.as_str().into_deserializer())
            }
            NodeKind::Map(entries) if entries.len() == 1 => {
                let (key, value) = &entries[0];
                visitor.visit_enum(EnumAccess { key, value })
            }
            _ => Err(de::Error::custom(
                "expected a variant name, or a mapping with exactly one key naming the variant",
            )),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier
    }
}

struct SeqAccess<'a> {
    items: std::slice::Iter<'a, Node>,
    index: usize,
}

impl<'de> de::SeqAccess<'de> for SeqAccess<'_> {
    type Error = DeError;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some(item) = self.items.next() else {
            return Ok(None);
        };
        let index = self.index;
        self.index += 1;
        seed.deserialize(NodeDeserializer::new(item))
            .map(Some)
            .map_err(|e| e.at(item.mark).within(Segment::Index(index)))
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct MapAccess<'a> {
    entries: std::slice::Iter<'a, (Node, Node)>,
    value: Option<(&'a Node, &'a Node)>,
}

fn key_name(key: &Node) -> String {
    key.as_scalar().unwrap_or_default().to_string()
}

impl<'de> de::MapAccess<'de> for MapAccess<'_> {
    type Error = DeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some((key, value));
        seed.deserialize(NodeDeserializer::new(key))
            .map(Some)
            .map_err(|e| e.at(key.mark).within(Segment::Key(key_name(key))))
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let Some((key, value)) = self.value.take() else {
            return Err(de::Error::custom("value requested before its key"));
        };
        seed.deserialize(NodeDeserializer::new(value))
            .map_err(|e| e.at(value.mark).within(Segment::Key(key_name(key))))
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

struct EnumAccess<'a> {
    key: &'a Node,
    value: &'a Node,
}

impl<'de, 'a> de::EnumAccess<'de> for EnumAccess<'a> {
    type Error = DeError;
    type Variant = VariantAccess<'a>;
    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, VariantAccess<'a>), DeError> {
        let variant = seed
            .deserialize(NodeDeserializer::new(self.key))
            .map_err(|e| e.at(self.key.mark))?;
        Ok((
            variant,
            VariantAccess {
                key: self.key,
                value: self.value,
            },
        ))
    }
}

struct VariantAccess<'a> {
    key: &'a Node,
    value: &'a Node,
}

impl<'de> de::VariantAccess<'de> for VariantAccess<'_> {
    type Error = DeError;
    fn unit_variant(self) -> Result<(), DeError> {
        if self.value.is_null() {
            Ok(())
        } else {
            Err(
                <DeError as de::Error>::custom("this variant takes no value")
                    .at(self.value.mark)
                    .within(Segment::Key(key_name(self.key))),
            )
        }
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        seed.deserialize(NodeDeserializer::new(self.value))
            .map_err(|e| {
                e.at(self.value.mark)
                    .within(Segment::Key(key_name(self.key)))
            })
    }
    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_seq(NodeDeserializer::new(self.value), visitor).map_err(|e| {
            e.at(self.value.mark)
                .within(Segment::Key(key_name(self.key)))
        })
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_map(NodeDeserializer::new(self.value), visitor).map_err(|e| {
            e.at(self.value.mark)
                .within(Segment::Key(key_name(self.key)))
        })
    }
}
