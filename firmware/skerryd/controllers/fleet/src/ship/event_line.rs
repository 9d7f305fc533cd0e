//! An event as the JSON line the events sink takes (`docs/fleet-enrollment.md` §4): at
//! most 4 KiB, `"kind"`, `"at"` (RFC 3339), `"detail"`, and the event's id, resource
//! and attributes while they fit.

use std::time::SystemTime;

use serde_json::{json, Value};
use skerryd_core::Event;

/// The longest event line the server takes.
pub const MAX_EVENT_LINE: usize = 4 * 1024;

fn at(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

fn cut_chars(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// `fields` as one line, shrunk to fit: first without the attributes, then with the
/// detail cut.
fn fitted(mut fields: serde_json::Map<String, Value>) -> String {
    let line = Value::Object(fields.clone()).to_string();
    if line.len() <= MAX_EVENT_LINE {
        return line;
    }
    fields.remove("attributes");
    if let Some(Value::String(detail)) = fields.get_mut("detail") {
        // A character is at most 6 bytes escaped in JSON: 400 of them leave room.
        *detail = cut_chars(detail, 400);
    }
    Value::Object(fields).to_string()
}

/// The line for one event of the daemon's log.
pub fn event_line(event: &Event) -> String {
    let mut fields = serde_json::Map::new();
    fields.insert("kind".into(), json!(cut_chars(&event.kind, 128)));
    fields.insert("at".into(), json!(at(event.time)));
    fields.insert("detail".into(), json!(event.message));
    fields.insert("id".into(), json!(event.id));
    if let Some((namespace, type_name, id)) = &event.resource {
        let resource = cut_chars(&format!("{namespace}/{type_name}/{id}"), 256);
        fields.insert("resource".into(), json!(resource));
    }
    if !event.attributes.is_empty() {
        fields.insert("attributes".into(), json!(event.attributes));
    }
    fitted(fields)
}

/// A line the shipper itself makes (`kind`, now, `detail`).
pub fn note_line(kind: &str, detail: &str) -> String {
    let mut fields = serde_json::Map::new();
    fields.insert("kind".into(), json!(kind));
    fields.insert("at".into(), json!(at(SystemTime::now())));
    fields.insert("detail".into(), json!(detail));
    fitted(fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn event(message: String, attributes: BTreeMap<String, String>) -> Event {
        Event {
            id: "00000002-000000000007".into(),
            time: SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000),
            kind: "upgrade.phase".into(),
            resource: Some(("upgrade".into(), "Status".into(), "current".into())),
            message,
            attributes,
        }
    }

    #[test]
    fn an_event_becomes_one_json_line_the_server_takes() {
        let attrs = BTreeMap::from([("phase".to_string(), "installed".to_string())]);
        let line = event_line(&event("installed v2 in slot B".into(), attrs));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["kind"], "upgrade.phase");
        assert_eq!(v["at"], "2027-01-15T08:00:00.000Z");
        assert_eq!(v["detail"], "installed v2 in slot B");
        assert_eq!(v["resource"], "upgrade/Status/current");
        assert_eq!(v["attributes"]["phase"], "installed");
        assert!(!line.contains('\n'));
    }

    #[test]
    fn a_huge_event_is_shrunk_to_fit_and_stays_valid_json() {
        let attrs = (0..32)
            .map(|i| (format!("k{i}"), "v".repeat(4096)))
            .collect();
        let line = event_line(&event("\u{1}\"é".repeat(2000), attrs));
        assert!(line.len() <= MAX_EVENT_LINE, "{}", line.len());
        let v: Value = serde_json::from_str(&line).unwrap();
        assert!(v.get("attributes").is_none());
        assert_eq!(v["kind"], "upgrade.phase");
    }
}
