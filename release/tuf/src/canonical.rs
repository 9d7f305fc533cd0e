//! Canonical JSON: the byte form TUF signs and hashes.
//!
//! This is the dialect of securesystemslib (and so of python-tuf, go-tuf and tough):
//! object keys sorted by code point, no whitespace, strings escaped only for `"` and `\`
//! (everything else, control and non-ASCII characters included, is written raw), integers
//! only. Floats cannot be signed and are rejected.

use serde_json::Value;

use crate::error::TufError;

/// Returns the canonical JSON bytes of `value`.
pub fn to_canonical(value: &Value) -> Result<Vec<u8>, TufError> {
    let mut out = Vec::with_capacity(1024);
    write_value(value, &mut out)?;
    Ok(out)
}

/// Serializes `value` with serde and returns its canonical JSON bytes.
pub fn to_canonical_of<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, TufError> {
    let value = serde_json::to_value(value).map_err(|source| TufError::Json {
        what: "metadata to sign".into(),
        source,
    })?;
    to_canonical(&value)
}

fn write_value(value: &Value, out: &mut Vec<u8>) -> Result<(), TufError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.extend_from_slice(i.to_string().as_bytes());
            } else if let Some(u) = n.as_u64() {
                out.extend_from_slice(u.to_string().as_bytes());
            } else {
                return Err(TufError::NotCanonical {
                    reason: format!("the number {n} is not an integer"),
                });
            }
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(key, out);
                out.push(b':');
                write_value(&map[key], out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for byte in s.bytes() {
        if byte == b'"' || byte == b'\\' {
            out.push(b'\\');
        }
        out.push(byte);
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_keys_and_drops_whitespace() {
        let v = json!({"b": 1, "a": [true, null, "x"], "c": {"z": -2, "y": "q\"\\"}});
        let got = String::from_utf8(to_canonical(&v).unwrap()).unwrap();
        assert_eq!(
            got,
            r#"{"a":[true,null,"x"],"b":1,"c":{"y":"q\"\\","z":-2}}"#
        );
    }

    #[test]
    fn writes_control_and_unicode_raw() {
        let v = json!("a\nb\u{e9}");
        assert_eq!(to_canonical(&v).unwrap(), "\"a\nb\u{e9}\"".as_bytes());
    }

    #[test]
    fn rejects_floats() {
        assert!(matches!(
            to_canonical(&json!({"x": 1.5})),
            Err(TufError::NotCanonical { .. })
        ));
    }
}
