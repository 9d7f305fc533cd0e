//! The operator API's answers as tables for people. Each reads the JSON shapes of the
//! server's `api/json.rs`; a field that is missing shows as `-`.

use serde_json::Value;

use crate::output::table;

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

pub fn releases(v: &Value) -> String {
    let rows: Vec<Vec<String>> = list(v, "releases")
        .iter()
        .map(|r| vec![cell(&r["board"]), cell(&r["version"]), cell(&r["channel"])])
        .collect();
    table(&["BOARD", "VERSION", "CHANNEL"], &rows)
}

pub fn rollouts(v: &Value) -> String {
    let rows: Vec<Vec<String>> = list(v, "rollouts")
        .iter()
        .map(|r| {
            let waves: Vec<String> = list(r, "waves")
                .iter()
                .map(|w| {
                    format!(
                        "{}%:{}/{}ok/{}bad",
                        cell(&w["percent"]),
                        cell(&w["started"]),
                        cell(&w["committed"]),
                        w["failed"].as_u64().unwrap_or(0) + w["rolled_back"].as_u64().unwrap_or(0)
                    )
                })
                .collect();
            vec![
                cell(&r["id"]),
                cell(&r["release"]["board"]),
                cell(&r["release"]["version"]),
                cell(&r["state"]),
                cell(&r["pause_reason"]),
                waves.join(" "),
            ]
        })
        .collect();
    table(
        &["ID", "BOARD", "VERSION", "STATE", "REASON", "WAVES"],
        &rows,
    )
}

pub fn devices(v: &Value) -> String {
    let rows: Vec<Vec<String>> = list(v, "devices")
        .iter()
        .map(|d| {
            vec![
                cell(&d["id"]),
                cell(&d["board"]),
                cell(&d["version"]),
                cell(&d["channel"]),
                cell(&d["health"]),
                cell(&d["last_seen"]),
                cell(&d["pin"]),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "ID",
            "BOARD",
            "VERSION",
            "CHANNEL",
            "HEALTH",
            "LAST SEEN",
            "PIN",
        ],
        &rows,
    );
    if let Some(next) = v.get("next_after").and_then(Value::as_str) {
        out.push_str(&format!("more: --after {next}\n"));
    }
    out
}

pub fn device(v: &Value) -> String {
    let pin = match &v["pin"] {
        Value::Null => "-".to_string(),
        p => format!(
            "{}{}",
            cell(&p["version"]),
            if p["force"] == Value::Bool(true) {
                " (forced)"
            } else {
                ""
            }
        ),
    };
    let mut out = format!(
        "device {}  board {}  version {}  channel {}  health {}  pin {}\n",
        cell(&v["id"]),
        cell(&v["board"]),
        cell(&v["version"]),
        cell(&v["channel"]),
        cell(&v["health"]),
        pin
    );
    let rows: Vec<Vec<String>> = list(v, "timeline")
        .iter()
        .map(|t| {
            vec![
                cell(&t["at"]),
                cell(&t["kind"]),
                cell(&t["version"]),
                cell(&t["detail"]),
            ]
        })
        .collect();
    out.push_str(&table(&["AT", "KIND", "VERSION", "DETAIL"], &rows));
    out
}

pub fn tokens(v: &Value) -> String {
    let rows: Vec<Vec<String>> = list(v, "tokens")
        .iter()
        .map(|t| {
            let labels: Vec<String> = t["labels"]
                .as_object()
                .map(|m| m.iter().map(|(k, v)| format!("{k}={}", cell(v))).collect())
                .unwrap_or_default();
            vec![
                cell(&t["id"]),
                cell(&t["state"]),
                format!("{}/{}", cell(&t["used"]), cell(&t["uses"])),
                cell(&t["expires_at"]),
                labels.join(","),
            ]
        })
        .collect();
    table(&["ID", "STATE", "USED", "EXPIRES", "LABELS"], &rows)
}

/// A new token: the secret alone on its line, so `| head -1` gives it to a script.
pub fn token_made(v: &Value) -> String {
    format!(
        "{}\n(token {} for {} enrollment(s), expires at {}; the secret is not shown again)\n",
        cell(&v["token"]),
        cell(&v["id"]),
        cell(&v["uses"]),
        cell(&v["expires_at"])
    )
}

/// An action's answer, as `key value` pairs on one line.
pub fn done(v: &Value) -> String {
    match v.as_object() {
        Some(m) => {
            let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k} {}", cell(v))).collect();
            format!("{}\n", parts.join("  "))
        }
        None => format!("{}\n", cell(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_device_shows_its_pin_and_timeline_and_a_page_its_cursor() {
        let d = json!({"id": "sim-1", "board": "pi", "version": "1.0.0", "channel": "stable",
            "health": "healthy", "pin": {"version": "1.0.0", "force": true},
            "timeline": [{"at": 5, "kind": "failed", "version": "2.0.0", "detail": "probe"}]});
        let text = device(&d);
        assert!(text.starts_with("device sim-1  board pi"), "{text}");
        assert!(text.contains("pin 1.0.0 (forced)"), "{text}");
        assert!(
            text.lines()
                .any(|l| l.starts_with("5 ") && l.contains("failed") && l.contains("probe")),
            "{text}"
        );
        let page = json!({"devices": [{"id": "a", "pin": null}], "next_after": "a"});
        let text = devices(&page);
        assert!(text.lines().nth(1).unwrap().starts_with("a "), "{text}");
        assert!(text.ends_with("more: --after a\n"), "{text}");
    }

    #[test]
    fn a_rollout_row_counts_bad_devices_per_wave() {
        let r = json!({"rollouts": [{"id": "r", "release": {"board": "pi", "version": "2.0.0"},
            "state": "paused", "pause_reason": "health",
            "waves": [{"percent": 10.0, "started": 4, "committed": 2, "failed": 1, "rolled_back": 1}]}]});
        let text = rollouts(&r);
        assert!(text.contains("10.0%:4/2ok/2bad"), "{text}");
        assert!(text.lines().nth(1).unwrap().contains("paused"), "{text}");
    }
}
