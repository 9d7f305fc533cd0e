//! The U-Boot environment store against the conformance suite (torn writes included),
//! plus the on-medium behaviours the suite does not cover.

use skerry_boot_state::conformance::{boot_store_suite, Harness};
use skerry_boot_state::medium::MediumError;
use skerry_boot_state::uboot::{UbootEnvStore, UbootLayout};
use skerry_boot_state::{
    BootState, BootStore, FileMedium, Medium, MemoryMedium, PowerCutMedium, SlotName, StoreError,
};

/// Small copies keep the every-byte power-cut loop fast in debug builds.
const SIZE: usize = 0x200;
const OFFSET: u64 = 0x300;

fn slots() -> Vec<SlotName> {
    vec![SlotName::new("A").unwrap(), SlotName::new("B").unwrap()]
}

/// Bytes before the environment that every write must leave alone.
fn prefix() -> Vec<u8> {
    (0..OFFSET).map(|i| (i % 251) as u8).collect()
}

fn suite(layout: UbootLayout, blank: Vec<u8>) {
    boot_store_suite(&Harness {
        open: move |m: PowerCutMedium| UbootEnvStore::new(m, layout),
        take: |s: UbootEnvStore<PowerCutMedium>| {
            let m = s.into_medium();
            assert_eq!(
                &m.bytes()[..blank_prefix_len(layout)],
                &prefix()[..blank_prefix_len(layout)],
                "bytes before the environment changed"
            );
            m
        },
        blank: PowerCutMedium::new(blank),
        slots: slots(),
    });
}

fn blank_prefix_len(layout: UbootLayout) -> usize {
    layout.offset as usize
}

#[test]
fn single_env_whole_file_passes_the_suite() {
    suite(
        UbootLayout {
            offset: 0,
            size: SIZE,
            redundant: false,
        },
        Vec::new(),
    );
}

#[test]
fn single_env_at_offset_passes_the_suite() {
    let mut blank = prefix();
    blank.extend(vec![0xFF; SIZE]);
    suite(
        UbootLayout {
            offset: OFFSET,
            size: SIZE,
            redundant: false,
        },
        blank,
    );
}

#[test]
fn redundant_env_at_offset_passes_the_suite() {
    suite(
        UbootLayout {
            offset: OFFSET,
            size: SIZE,
            redundant: true,
        },
        prefix(),
    );
}

fn state() -> BootState {
    BootState::new(&slots(), 3).unwrap()
}

#[test]
fn init_creates_a_missing_file_and_keeps_it_whole() {
    let dir = tempfile::tempdir().unwrap();
    for redundant in [false, true] {
        let path = dir.path().join(format!("env-{redundant}"));
        let layout = UbootLayout {
            redundant,
            ..UbootLayout::default()
        };
        let mut store = UbootEnvStore::new(FileMedium::create(&path), layout);
        store.commit(&state()).unwrap();
        let copies = if redundant { 2 } else { 1 };
        assert_eq!(std::fs::metadata(&path).unwrap().len(), copies * 0x4000);
        let reopened = UbootEnvStore::new(FileMedium::open(&path).unwrap(), layout);
        assert_eq!(reopened.load().unwrap(), state());
    }
}

#[test]
fn redundant_commits_alternate_copies_with_rising_flags() {
    let layout = UbootLayout {
        offset: 0,
        size: SIZE,
        redundant: true,
    };
    let mut store = UbootEnvStore::new(PowerCutMedium::new(Vec::new()), layout);
    let mut s = state();
    store.commit(&s).unwrap();
    let b = SlotName::new("B").unwrap();
    s.begin_trial(&b).unwrap();
    store.commit(&s).unwrap();
    let m = store.into_medium();
    let bytes = m.bytes();
    assert_eq!((bytes[4], bytes[SIZE + 4]), (1, 2));
    let store = UbootEnvStore::new(m, layout);
    assert_eq!(store.load().unwrap(), s);
}

#[test]
fn garbage_is_not_overwritten() {
    let layout = UbootLayout {
        offset: 0,
        size: SIZE,
        redundant: false,
    };
    let garbage: Vec<u8> = (0..SIZE).map(|i| (i * 7 % 256) as u8).collect();
    let mut store = UbootEnvStore::new(PowerCutMedium::new(garbage.clone()), layout);
    let err = store.commit(&state()).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("CRC32 mismatch"), "{err}");
    assert_eq!(store.into_medium().bytes(), garbage.as_slice());
}

#[test]
fn other_variables_survive_a_commit() {
    let layout = UbootLayout {
        offset: 0,
        size: SIZE,
        redundant: true,
    };
    let mut store = UbootEnvStore::new(PowerCutMedium::new(Vec::new()), layout);
    store.commit(&state()).unwrap();
    let m = store.into_medium();
    // A board setting added by someone else, in the newest copy.
    let mut vars = UbootEnvStore::new(m.clone(), layout).variables().unwrap();
    vars.set("bootcmd", "run distro_bootcmd");
    let block = skerry_boot_state::uboot::env::encode(&vars, SIZE, Some(2)).unwrap();
    let mut m = m;
    m.write_at(SIZE as u64, &block).unwrap();
    let mut store = UbootEnvStore::new(m, layout);
    let mut s = state();
    s.begin_trial(&SlotName::new("B").unwrap()).unwrap();
    store.commit(&s).unwrap();
    let vars = store.variables().unwrap();
    assert_eq!(vars.get("bootcmd"), Some(Ok("run distro_bootcmd")));
    assert_eq!(vars.get("BOOT_ORDER"), Some(Ok("B A")));
}

/// A block device: it can be written in place, but not replaced atomically.
struct Device(MemoryMedium);

impl Medium for Device {
    fn path(&self) -> &std::path::Path {
        std::path::Path::new("/dev/mmcblk0p1")
    }
    fn len(&self) -> Result<u64, MediumError> {
        self.0.len()
    }
    fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>, MediumError> {
        self.0.read_at(offset, len)
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), MediumError> {
        self.0.write_at(offset, data)
    }
    fn flush(&mut self) -> Result<(), MediumError> {
        self.0.flush()
    }
    fn replace_all(&mut self, _: &[u8]) -> Result<(), MediumError> {
        Err(MediumError::Unsupported {
            path: self.path().to_owned(),
            reason: "a device".into(),
        })
    }
}

#[test]
fn single_env_on_a_device_is_refused_not_torn() {
    let layout = UbootLayout {
        offset: 0x1000,
        size: SIZE,
        redundant: false,
    };
    let device = Device(MemoryMedium::new(vec![0; 0x1000 + SIZE]));
    let mut store = UbootEnvStore::new(device, layout);
    let err = store.commit(&state()).unwrap_err();
    assert!(
        matches!(err, StoreError::Unsupported { .. }) && err.to_string().contains("redundant"),
        "{err}"
    );
    assert!(store.into_medium().0.bytes().iter().all(|&b| b == 0));
}

#[test]
fn a_character_device_or_directory_is_refused_by_name() {
    for path in ["/dev/zero", "/tmp"] {
        let err = StoreError::from(FileMedium::open(path).unwrap_err());
        assert!(
            err.to_string().contains(path) && matches!(err, StoreError::Unsupported { .. }),
            "{err}"
        );
    }
}

#[test]
fn bad_layout_is_an_error() {
    let layout = UbootLayout {
        offset: u64::MAX - 4,
        size: SIZE,
        redundant: true,
    };
    let store = UbootEnvStore::new(PowerCutMedium::new(Vec::new()), layout);
    assert!(matches!(store.load(), Err(StoreError::Unsupported { .. })));
    let tiny = UbootLayout {
        offset: 0,
        size: 3,
        redundant: false,
    };
    let store = UbootEnvStore::new(PowerCutMedium::new(vec![0; 3]), tiny);
    assert!(matches!(store.load(), Err(StoreError::Unsupported { .. })));
}
