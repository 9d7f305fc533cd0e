//! Bounds on what a client sends, checked before anything is looked up, and the
//! INVALID_ARGUMENT answers that name the field and the limit.

use tonic::Status;

/// The longest service id (a service's name in the config).
pub const MAX_SERVICE_ID_BYTES: usize = 253;
/// The longest resource namespace.
pub const MAX_NAMESPACE_BYTES: usize = 63;
/// The longest resource type name (`Plural.group.domain`).
pub const MAX_TYPE_BYTES: usize = 253;
/// The longest resource id (health checks are `SERVICE/CHECK`).
pub const MAX_RESOURCE_ID_BYTES: usize = 512;
/// The most buffered log lines one Logs call asks for.
pub const MAX_TAIL_LINES: u32 = 100_000;
/// The longest release version an Upgrade names.
pub const MAX_RELEASE_VERSION_BYTES: usize = 128;
/// The longest reason a Rollback records.
pub const MAX_REASON_BYTES: usize = 1024;
/// The most streams that follow the machine open at once, across every client:
/// Events with watch, ResourceWatch and Logs with follow. Each one a client does not
/// read holds what HTTP/2 buffers for it (hundreds of KiB for a chatty service's log),
/// so their number is what bounds the daemon's memory against such clients.
pub const MAX_FOLLOW_STREAMS: usize = 64;
/// The most of a refused value an answer quotes back.
const QUOTED_BYTES: usize = 64;

/// `value` cut to a length fit for an error message.
pub fn quoted(value: &str) -> String {
    if value.len() <= QUOTED_BYTES {
        return format!("{value:?}");
    }
    let mut end = QUOTED_BYTES;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}… ({} bytes)", &value[..end], value.len())
}

/// A name the request must carry: non-empty, at most `max` bytes, no control
/// characters. `field` is its name in the request (`ref.type`, `service_id`).
pub fn required(field: &str, value: &str, max: usize) -> Result<(), Status> {
    if value.is_empty() {
        return Err(Status::invalid_argument(format!(
            "{field} is empty; it is required"
        )));
    }
    bounded(field, value, max)
}

/// Free text the request may carry (possibly empty): at most `max` bytes, no control
/// characters but newlines and tabs.
pub fn text(field: &str, value: &str, max: usize) -> Result<(), Status> {
    if value.len() > max {
        return Err(Status::invalid_argument(format!(
            "{field} is {} bytes; the limit is {max}",
            value.len()
        )));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(Status::invalid_argument(format!(
            "{field} {} contains a control character",
            quoted(value)
        )));
    }
    Ok(())
}

fn bounded(field: &str, value: &str, max: usize) -> Result<(), Status> {
    if value.len() > max {
        return Err(Status::invalid_argument(format!(
            "{field} {} is {} bytes; the limit is {max}",
            quoted(value),
            value.len()
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(Status::invalid_argument(format!(
            "{field} {} contains a control character",
            quoted(value)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn refusals_name_the_field_and_the_limit() {
        let empty = required("service_id", "", 10).unwrap_err();
        assert_eq!(empty.code(), Code::InvalidArgument);
        assert!(
            empty.message().contains("service_id is empty"),
            "{}",
            empty.message()
        );
        let long = required("ref.type", &"x".repeat(11), 10).unwrap_err();
        assert!(long.message().contains("ref.type"), "{}", long.message());
        assert!(long.message().contains("limit is 10"), "{}", long.message());
        let control = required("ref.id", "a\u{0}b", 10).unwrap_err();
        assert!(
            control.message().contains("control character"),
            "{}",
            control.message()
        );
        assert!(required("ref.id", "web/http", 10).is_ok());
        assert!(text("reason", "two\nlines", 20).is_ok());
        assert!(text("reason", "bell\u{7}", 20).is_err());
        assert!(text("reason", &"r".repeat(21), 20).is_err());
    }

    #[test]
    fn long_values_are_quoted_cut_on_a_character_boundary() {
        let value = "é".repeat(100);
        let shown = quoted(&value);
        assert!(shown.contains("(200 bytes)"), "{shown}");
        assert!(shown.len() < 100, "{shown}");
    }
}
