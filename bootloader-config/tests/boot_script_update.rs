//! What a boot script update refuses and what it leaves on the ESP: bounds, versions,
//! idempotence, and a torn environment block read through its second copy.

use skerry_boot_state::grub::boot_script::{
    Applied, BootScriptError, BootScriptUpdate, InstalledScript, ENV_FILE, MAX_SCRIPT_SIZE,
    PRIMARY_SCRIPT, SCRIPT_VAR, SECOND_SCRIPT, VERSION_VAR,
};
use skerry_boot_state::grub::GrubEnvStore;
use skerry_boot_state::{BootState, BootStore, SlotName};
use skerry_medium::lossy::{LossyFs, Mode};
use skerry_medium::FsMedium;

fn esp() -> LossyFs {
    let fs = LossyFs::new(Mode::Fat).with_file(PRIMARY_SCRIPT, b"# factory\n");
    let slots = [SlotName::new("A").unwrap(), SlotName::new("B").unwrap()];
    GrubEnvStore::new(FsMedium::in_dir(fs.clone(), ENV_FILE))
        .commit(&BootState::new(&slots, 3).unwrap())
        .unwrap();
    fs
}

fn installed(fs: &LossyFs) -> InstalledScript {
    BootScriptUpdate::new(fs.clone()).installed().unwrap()
}

#[test]
fn updates_alternate_between_the_two_names_and_keep_the_old_script() {
    let fs = esp();
    assert_eq!(
        installed(&fs),
        InstalledScript {
            name: PRIMARY_SCRIPT,
            version: 0
        }
    );
    let mut update = BootScriptUpdate::new(fs.clone());
    let first = update.apply(b"# v1\n", 1).unwrap();
    assert_eq!(
        first,
        Applied::Installed(InstalledScript {
            name: SECOND_SCRIPT,
            version: 1
        })
    );
    assert_eq!(fs.read(SECOND_SCRIPT).unwrap(), b"# v1\n");
    assert_eq!(fs.read(PRIMARY_SCRIPT).unwrap(), b"# factory\n");
    let vars = GrubEnvStore::new(FsMedium::in_dir(fs.clone(), ENV_FILE))
        .variables()
        .unwrap();
    assert_eq!(vars.get(SCRIPT_VAR), Some(Ok(SECOND_SCRIPT)));
    assert_eq!(vars.get(VERSION_VAR), Some(Ok("1")));
    // The boot state is untouched by the switch.
    let state = GrubEnvStore::new(FsMedium::in_dir(fs.clone(), ENV_FILE))
        .load()
        .unwrap();
    assert_eq!(state.order().count(), 2);

    // The next one goes back to grub.cfg, cut to its own length.
    update.apply(b"# v2\n", 2).unwrap();
    assert_eq!(installed(&fs).name, PRIMARY_SCRIPT);
    assert_eq!(fs.read(PRIMARY_SCRIPT).unwrap(), b"# v2\n");
    assert_eq!(fs.read(SECOND_SCRIPT).unwrap(), b"# v1\n");
}

#[test]
fn the_same_script_again_writes_nothing() {
    let fs = esp();
    let mut update = BootScriptUpdate::new(fs.clone());
    update.apply(b"# v1\n", 1).unwrap();
    let ops = fs.ops();
    let again = update.apply(b"# v1\n", 1).unwrap();
    assert!(matches!(again, Applied::Unchanged(_)), "{again:?}");
    assert_eq!(fs.ops(), ops, "an unchanged script writes nothing");
}

#[test]
fn refusals_name_what_was_wrong() {
    let fs = esp();
    let mut update = BootScriptUpdate::new(fs.clone());
    update.apply(b"# v5\n", 5).unwrap();
    let ops = fs.ops();
    let older = update.apply(b"# v4\n", 4).unwrap_err();
    assert!(
        matches!(
            older,
            BootScriptError::Older {
                offered: 4,
                installed: 5
            }
        ),
        "{older:?}"
    );
    assert!(
        older.to_string().contains("older than version 5"),
        "{older}"
    );
    let differs = update.apply(b"# other v5\n", 5).unwrap_err();
    assert!(
        matches!(differs, BootScriptError::SameVersionDiffers { version: 5 }),
        "{differs:?}"
    );
    let big = vec![b'#'; MAX_SCRIPT_SIZE + 1];
    let too_large = update.apply(&big, 6).unwrap_err();
    assert!(
        too_large.to_string().contains(&MAX_SCRIPT_SIZE.to_string()),
        "{too_large}"
    );
    assert!(matches!(update.apply(b"", 6), Err(BootScriptError::Empty)));
    assert_eq!(fs.ops(), ops, "a refused script writes nothing");
    assert_eq!(installed(&fs).version, 5);
}

#[test]
fn a_garbled_version_or_missing_environment_is_an_error() {
    let fs = esp();
    GrubEnvStore::new(FsMedium::in_dir(fs.clone(), ENV_FILE))
        .commit_variables(&[(VERSION_VAR, Some("7x"))])
        .unwrap();
    let err = BootScriptUpdate::new(fs.clone())
        .apply(b"# v8\n", 8)
        .unwrap_err();
    assert!(err.to_string().contains("\"7x\""), "{err}");
    assert!(fs.read(SECOND_SCRIPT).is_none(), "nothing written");

    let bare = LossyFs::new(Mode::Fat).with_file(PRIMARY_SCRIPT, b"# factory\n");
    let err = BootScriptUpdate::new(bare.clone())
        .apply(b"# v1\n", 1)
        .unwrap_err();
    assert!(matches!(err, BootScriptError::Env(_)), "{err:?}");
    assert!(bare.read(SECOND_SCRIPT).is_none(), "nothing written");
}

#[test]
fn a_torn_block_is_read_through_its_second_copy() {
    let fs = esp();
    BootScriptUpdate::new(fs.clone())
        .apply(b"# v1\n", 1)
        .unwrap();
    let whole = fs.read(ENV_FILE).unwrap();
    BootScriptUpdate::new(fs.clone())
        .apply(b"# v2\n", 2)
        .unwrap();
    // The block's first sector from the update to v1, its last from v2: torn.
    let mut torn = fs.read(ENV_FILE).unwrap();
    torn[..512].copy_from_slice(&whole[..512]);
    let fs = LossyFs::new(Mode::Fat)
        .with_file(PRIMARY_SCRIPT, b"# v2\n")
        .with_file(ENV_FILE, &torn)
        .with_file(
            &format!("{ENV_FILE}.b"),
            &fs.read(&format!("{ENV_FILE}.b")).unwrap(),
        );
    assert_eq!(
        installed(&fs),
        InstalledScript {
            name: PRIMARY_SCRIPT,
            version: 2
        }
    );
    // The update run again writes no script but rewrites the copies from the whole one,
    // so no save_env of GRUB's can bring back the torn half's variables.
    let mut update = BootScriptUpdate::new(fs.clone());
    assert!(!update.copies_agree().unwrap());
    let again = update.apply(b"# v2\n", 2).unwrap();
    assert!(matches!(again, Applied::Unchanged(_)), "{again:?}");
    assert!(update.copies_agree().unwrap());
    assert!(fs.read(SECOND_SCRIPT).is_none(), "no script written");
    assert_eq!(installed(&fs).version, 2);
}

#[test]
fn the_store_s_generations_cannot_be_set_as_variables() {
    let fs = esp();
    let err = GrubEnvStore::new(FsMedium::in_dir(fs, ENV_FILE))
        .commit_variables(&[("SKERRY_GEN_HEAD", Some("1"))])
        .unwrap_err();
    assert!(err.to_string().contains("SKERRY_GEN_HEAD"), "{err}");
}
