//! A read that fails for any reason but a missing file is an error, never an empty
//! store: a commit over a file it could not read would drop the lines and variables
//! that are not ours, and a load would start from nothing. Also: the tryboot store
//! refuses a record whose slots are not the configured ones, and the memory medium the
//! fuzz entry points use keeps what is written and refuses reads past its end.

use std::path::Path;

use skerry_boot_state::grub::GrubEnvStore;
use skerry_boot_state::medium::{Medium, MediumError, MemoryMedium};
use skerry_boot_state::tryboot::TrybootStore;
use skerry_boot_state::{BootState, BootStore, SlotName, StoreError};

fn name(s: &str) -> SlotName {
    SlotName::new(s).unwrap()
}

/// Memory whose reads fail with an I/O error (EIO) when `failing`; its length is known.
#[derive(Debug)]
struct FlakyRead {
    inner: MemoryMedium,
    failing: bool,
}

impl FlakyRead {
    fn eio(&self) -> MediumError {
        MediumError::io("reading", self.inner.path())(std::io::Error::from_raw_os_error(5))
    }
}

impl Medium for FlakyRead {
    fn path(&self) -> &Path {
        self.inner.path()
    }
    fn len(&self) -> Result<u64, MediumError> {
        self.inner.len()
    }
    fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>, MediumError> {
        if self.failing {
            return Err(self.eio());
        }
        self.inner.read_at(offset, len)
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), MediumError> {
        self.inner.write_at(offset, data)
    }
    fn flush(&mut self) -> Result<(), MediumError> {
        self.inner.flush()
    }
    fn replace_all(&mut self, data: &[u8]) -> Result<(), MediumError> {
        self.inner.replace_all(data)
    }
}

fn is_io(e: &StoreError) -> bool {
    matches!(e, StoreError::Io { source, .. } if source.raw_os_error() == Some(5))
}

fn ab_state() -> BootState {
    let mut s = BootState::new(&[name("A"), name("B")], 1).unwrap();
    s.begin_trial(&name("B")).unwrap();
    s
}

#[test]
fn tryboot_commit_over_an_unreadable_file_fails_and_writes_nothing() {
    let mut store = TrybootStore::new(
        FlakyRead {
            inner: MemoryMedium::new(b"# keep me\nfoo=1\n".to_vec()),
            failing: true,
        },
        vec![(name("A"), 2), (name("B"), 3)],
    );
    let err = store.commit(&ab_state()).unwrap_err();
    assert!(is_io(&err), "{err}");
    assert_eq!(store.medium().inner.bytes(), b"# keep me\nfoo=1\n");
}

#[test]
fn grub_commit_over_an_unreadable_block_fails_and_writes_nothing() {
    let mut good = GrubEnvStore::new(MemoryMedium::new(Vec::new()));
    good.commit(&BootState::new(&[name("A"), name("B")], 3).unwrap())
        .unwrap();
    let bytes = good.into_medium().bytes().to_vec();
    let mut store = GrubEnvStore::new(FlakyRead {
        inner: MemoryMedium::new(bytes.clone()),
        failing: true,
    });
    assert!(is_io(&store.load().unwrap_err()));
    let err = store.commit(&ab_state()).unwrap_err();
    assert!(is_io(&err), "{err}");
    assert_eq!(store.into_medium().inner.bytes(), &bytes[..]);
}

#[test]
fn tryboot_refuses_a_record_of_other_slots_or_a_shared_partition() {
    let commit_with = |slots: Vec<(SlotName, u32)>| {
        let mut store = TrybootStore::new(MemoryMedium::new(Vec::new()), slots);
        store.commit(&ab_state())
    };
    // The state's slots are A and B; the store is configured with A and C.
    let err = commit_with(vec![(name("A"), 2), (name("C"), 3)]).unwrap_err();
    assert!(err.to_string().contains("configured with A,C"), "{err}");
    // One slot too many.
    let err = commit_with(vec![(name("A"), 2), (name("B"), 3), (name("C"), 4)]).unwrap_err();
    assert!(err.to_string().contains("configured with A,B,C"), "{err}");
    // Two slots on one partition.
    let err = commit_with(vec![(name("A"), 2), (name("B"), 2)]).unwrap_err();
    assert!(err.to_string().contains("another slot uses too"), "{err}");
    // A file whose record names other slots than the store's loads as an error too.
    let mut ab = TrybootStore::new(
        MemoryMedium::new(Vec::new()),
        vec![(name("A"), 2), (name("B"), 3)],
    );
    ab.commit(&ab_state()).unwrap();
    let bytes = ab.into_medium().bytes().to_vec();
    let same = TrybootStore::new(
        MemoryMedium::new(bytes.clone()),
        vec![(name("A"), 2), (name("B"), 3)],
    );
    assert_eq!(same.load().unwrap(), ab_state());
    let other = TrybootStore::new(
        MemoryMedium::new(bytes),
        vec![(name("A"), 2), (name("C"), 3)],
    );
    assert!(other.load().is_err());
}

#[test]
fn memory_medium_refuses_reads_past_its_end() {
    let m = MemoryMedium::new(vec![1, 2, 3, 4]);
    assert_eq!(m.read_at(1, 3).unwrap(), vec![2, 3, 4]);
    assert!(m.read_at(2, 3).is_err());
    assert!(m.read_at(5, 0).is_err());
}
