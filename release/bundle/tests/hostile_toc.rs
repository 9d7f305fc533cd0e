//! Hostile tables of contents: each structural fault is refused with the error that
//! names it, and arbitrary bytes or tables never panic. Well-formed tables round-trip.

#[path = "../../fuzz/entries/bundle.rs"]
#[expect(dead_code, reason = "the tests use the raw encoder and seeds only")]
mod entries;

use entries::raw_toc;
use proptest::prelude::*;
use skerry_bundle::toc::FilePlan;
use skerry_bundle::{BundleError, Toc};

fn refused(bytes: &[u8]) -> BundleError {
    Toc::parse_prefix(bytes).expect_err("a hostile table was accepted")
}

#[test]
fn each_fault_gets_its_own_error() {
    let good = entries::good();
    assert!(Toc::parse_prefix(&good).is_ok());
    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x40;
    let mut many = good.clone();
    many[12..16].copy_from_slice(&(2u32 << 20).to_le_bytes());
    type Check = fn(&BundleError) -> bool;
    let table: Vec<(&str, Vec<u8>, Check)> = vec![
        ("not a bundle", b"hello".to_vec(), |e| {
            matches!(e, BundleError::BadMagic)
        }),
        ("header cut short", good[..30].to_vec(), |e| {
            matches!(e, BundleError::Truncated { part: "header", .. })
        }),
        ("toc cut short", good[..good.len() - 1].to_vec(), |e| {
            matches!(
                e,
                BundleError::Truncated {
                    part: "table of contents",
                    ..
                }
            )
        }),
        ("toc damaged", flipped, |e| {
            matches!(e, BundleError::TocDamaged)
        }),
        ("too many extents", many, |e| {
            matches!(
                e,
                BundleError::OverLimit {
                    what: "extents",
                    ..
                }
            )
        }),
        (
            "duplicate",
            raw_toc(&[("a/b", 1, &[(0, 1)]), ("a/b", 1, &[(0, 1)])], None),
            |e| matches!(e, BundleError::Duplicate { name } if name == "a/b"),
        ),
        (
            "traversal",
            raw_toc(&[("a/../../b", 1, &[(0, 1)])], None),
            |e| matches!(e, BundleError::BadName { .. }),
        ),
        (
            "non-ASCII",
            raw_toc(&[("\u{fffd}", 1, &[(0, 1)])], None),
            |e| matches!(e, BundleError::BadName { .. }),
        ),
        (
            "overlap",
            raw_toc(&[("p", 9, &[(0, 5), (4, 2)])], None),
            |e| matches!(e, BundleError::BadExtent { .. }),
        ),
        (
            "unsorted",
            raw_toc(&[("p", 9, &[(6, 2), (0, 2)])], None),
            |e| matches!(e, BundleError::BadExtent { .. }),
        ),
        (
            "past the file",
            raw_toc(&[("p", 9, &[(8, 2)])], None),
            |e| matches!(e, BundleError::BadExtent { .. }),
        ),
        (
            "file over the limit",
            raw_toc(&[("p", u64::MAX, &[(0, 2)])], None),
            |e| matches!(e, BundleError::OverLimit { .. }),
        ),
        (
            "outside the data",
            raw_toc(&[("p", 9, &[(0, 9)])], Some(8)),
            |e| {
                matches!(
                    e,
                    BundleError::OutsideData {
                        declared: 9,
                        data_len: 8
                    }
                )
            },
        ),
    ];
    for (what, bytes, check) in table {
        let err = refused(&bytes);
        assert!(check(&err), "{what}: refused with {err:?}");
        // Every refusal reads as a sentence naming the bundle.
        assert!(err.to_string().contains("bundle"), "{what}: {err}");
    }
}

fn plan_strategy() -> impl Strategy<Value = Vec<FilePlan>> {
    let file = (
        "[a-z0-9]{1,8}(/[a-z0-9._+-]{1,12}){0,3}",
        proptest::collection::vec((1u64..5000, 1u64..5000), 1..6),
    )
        .prop_map(|(name, gaps)| {
            // Gaps then lengths: sorted, separate, non-empty ranges.
            let (mut at, mut ranges) = (0u64, Vec::new());
            for (gap, len) in gaps {
                at += gap;
                ranges.push((at, len));
                at += len;
            }
            FilePlan {
                name: name.replace("/.", "/x").replace("..", "x"),
                len: at + 3,
                ranges,
            }
        });
    proptest::collection::vec(file, 1..8).prop_map(|mut files| {
        files.sort_by(|a, b| a.name.cmp(&b.name));
        files.dedup_by(|a, b| a.name == b.name);
        files
    })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = entries::toc(&bytes);
        let _ = Toc::parse_prefix(&bytes);
    }

    #[test]
    fn mutated_tables_never_panic(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6)) {
        let mut bytes = entries::good();
        for (at, value) in flips {
            let at = at % bytes.len();
            bytes[at] = value;
        }
        // Through the hash gate too: mode 1 rehashes the table.
        let _ = entries::toc(&[&[1u8][..], &bytes].concat());
    }

    #[test]
    fn written_tables_round_trip(plan in plan_strategy()) {
        let (bytes, toc) = Toc::encode(&plan).unwrap();
        prop_assert_eq!(Toc::parse_prefix(&bytes).unwrap(), toc.clone());
        let mut data_at = bytes.len() as u64;
        for file in &plan {
            let entry = toc.file(&file.name).unwrap();
            for &(offset, len) in &file.ranges {
                prop_assert_eq!(entry.locate(offset, offset + len), Some(data_at));
                if len > 1 {
                    prop_assert_eq!(entry.locate(offset + 1, offset + len), Some(data_at + 1));
                }
                // One byte either side of a held range is not held.
                prop_assert_eq!(entry.locate(offset - 1, offset + 1), None);
                prop_assert_eq!(entry.locate(offset, offset + len + 1), None);
                data_at += len;
            }
        }
        prop_assert_eq!(toc.header.bundle_len(), data_at);
    }
}
