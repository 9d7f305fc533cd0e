//! Canonical YAML rendering of a JSON value: block style, two-space indent, keys in the order
//! given, strings plain only when they read back as the same string.

use serde_json::Value;

use super::de::plain_is_string;

/// Renders one document (without the `---` separator).
pub fn render(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => write_map(&mut out, map, 0),
        Value::Array(items) if !items.is_empty() => write_seq(&mut out, items, 0),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

fn safe_plain(s: &str) -> bool {
    !s.is_empty()
        && plain_is_string(s)
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'/' | b'_' | b'-' | b'@' | b'+')
        })
        && !s.starts_with(['-', '@'])
}

fn scalar(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if safe_plain(s) => s.clone(),
        // A JSON string literal is a valid YAML double-quoted scalar.
        Value::String(s) => Value::String(s.clone()).to_string(),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

fn key(k: &str) -> String {
    if safe_plain(k) {
        k.to_string()
    } else {
        Value::String(k.to_string()).to_string()
    }
}

fn indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn write_map(out: &mut String, map: &serde_json::Map<String, Value>, depth: usize) {
    for (k, v) in map {
        indent(out, depth);
        write_entry(out, k, v, depth);
    }
}

fn write_entry(out: &mut String, k: &str, v: &Value, depth: usize) {
    out.push_str(&key(k));
    out.push(':');
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            write_map(out, m, depth + 2);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            write_seq(out, a, depth);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

fn write_seq(out: &mut String, items: &[Value], depth: usize) {
    for item in items {
        indent(out, depth);
        out.push_str("- ");
        match item {
            Value::Object(m) if !m.is_empty() => {
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        indent(out, depth + 2);
                    }
                    write_entry(out, k, v, depth + 2);
                }
            }
            Value::Array(a) if !a.is_empty() => {
                out.push('\n');
                write_seq(out, a, depth + 2);
            }
            other => {
                out.push_str(&scalar(other));
                out.push('\n');
            }
        }
    }
}
