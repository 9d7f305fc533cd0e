//! Maintenance windows per label group: devices whose labels match a window's selector
//! take an upgrade only inside one of their windows. A device no window selects may be
//! upgraded at any time. Windows are in UTC and may run past midnight.

use std::collections::BTreeMap;

use crate::time::UnixTime;

const MINUTES_PER_DAY: u32 = 24 * 60;

/// Days of the week a window recurs on, bit 0 = Monday … bit 6 = Sunday.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Weekdays(u8);

impl Weekdays {
    pub const EVERY_DAY: Weekdays = Weekdays(0x7f);

    /// From a bit mask; bits past Sunday are refused.
    pub fn from_bits(bits: u8) -> Result<Self, WindowError> {
        if bits == 0 || bits & 0x80 != 0 {
            return Err(WindowError::Days { bits });
        }
        Ok(Self(bits))
    }

    pub fn bits(self) -> u8 {
        self.0
    }

    fn has(self, monday_based: u32) -> bool {
        self.0 & (1 << monday_based) != 0
    }
}

/// Labels a device must all carry (with these values) to be in the group. An empty
/// selector selects every device.
pub type LabelSelector = BTreeMap<String, String>;

/// One recurring window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceWindow {
    pub group: LabelSelector,
    pub days: Weekdays,
    /// Minutes after midnight UTC when the window opens.
    pub start_minute: u16,
    pub length_minutes: u16,
}

/// Why a window was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error("weekday mask {bits:#04x} must name at least one day and only bits 0 (Monday) to 6 (Sunday)")]
    Days { bits: u8 },
    #[error("a window starts at minute {start} of the day; it must be below 1440")]
    Start { start: u16 },
    #[error("a window lasts {length} minutes; it must be 1 to 1440")]
    Length { length: u16 },
}

impl MaintenanceWindow {
    pub fn new(
        group: LabelSelector,
        days: Weekdays,
        start_minute: u16,
        length_minutes: u16,
    ) -> Result<Self, WindowError> {
        if u32::from(start_minute) >= MINUTES_PER_DAY {
            return Err(WindowError::Start {
                start: start_minute,
            });
        }
        if length_minutes == 0 || u32::from(length_minutes) > MINUTES_PER_DAY {
            return Err(WindowError::Length {
                length: length_minutes,
            });
        }
        Ok(Self {
            group,
            days,
            start_minute,
            length_minutes,
        })
    }

    /// Whether a device with `labels` is in this window's group.
    pub fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        self.group.iter().all(|(k, v)| labels.get(k) == Some(v))
    }

    /// Whether `now` falls inside the window (today's, or yesterday's running past
    /// midnight).
    pub fn is_open(&self, now: UnixTime) -> bool {
        let day = now.0 / 86_400;
        // 1970-01-01 was a Thursday: Monday-based index 3.
        let weekday = ((day + 3) % 7) as u32;
        let minute = ((now.0 % 86_400) / 60) as u32;
        let start = u32::from(self.start_minute);
        let end = start + u32::from(self.length_minutes);
        let today = self.days.has(weekday) && minute >= start && minute < end;
        let yesterday = (weekday + 6) % 7;
        let spill =
            self.days.has(yesterday) && end > MINUTES_PER_DAY && minute < end - MINUTES_PER_DAY;
        today || spill
    }
}

/// Whether a device with `labels` may be upgraded at `now` under `windows`.
pub fn allows(
    windows: &[MaintenanceWindow],
    labels: &BTreeMap<String, String>,
    now: UnixTime,
) -> bool {
    let mut mine = windows.iter().filter(|w| w.selects(labels)).peekable();
    if mine.peek().is_none() {
        return true;
    }
    mine.any(|w| w.is_open(now))
}
