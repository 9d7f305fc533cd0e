//! The controller that renders `hostname`, `hosts` and `resolv.conf` under `etc/` from
//! the machine and network config and the DHCP leases, writing each file atomically and
//! only when its content changes.
//!
//! On a device the slot's `/etc` is read-only and PID 1 bind-mounts each rendered file
//! over its place (`/etc/resolv.conf`). A bind mount follows the inode, and a file is
//! rendered by rename (a new inode), so after each write the controller mounts the new
//! file there again ([`RenderedFiles::binding_over`]): readers see the old or the new
//! file whole, never a half-written one.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use skerry_runtime::{
    Controller, ControllerError, Input, Output, ReconcileContext, Requeue, ResourceSpec, Selector,
};
use skerryd_core::resources::{ActiveMachine, ActiveNetwork, SINGLETON};
use skerryd_core::{EventLog, NewEvent};

use crate::render::{self, Rendered, MAX_RENDERED_BYTES};
use crate::resources::{DhcpLease, RenderedFile};

/// The controller's name.
pub const NAME: &str = "network.rendered";

/// Renders the files the daemon owns.
#[derive(Debug)]
pub struct RenderedFiles {
    etc: PathBuf,
    events: EventLog,
    bind_over: Option<PathBuf>,
}

impl RenderedFiles {
    /// Renders into `etc` (the layout's `etc/`), recording each write in `events`.
    pub fn new(etc: PathBuf, events: EventLog) -> Self {
        RenderedFiles {
            etc,
            events,
            bind_over: None,
        }
    }

    /// After each write, bind-mounts the file over its namesake in `dir` (`/etc` on a
    /// device), replacing the mount of its previous inode.
    pub fn binding_over(mut self, dir: PathBuf) -> Self {
        self.bind_over = Some(dir);
        self
    }
}

/// Mounts `file` over `target`, first detaching what was mounted there (a stale bind of
/// the file's previous inode).
pub fn rebind(file: &Path, target: &Path) -> std::io::Result<()> {
    use rustix::mount::{mount_bind, unmount, UnmountFlags};
    match unmount(target, UnmountFlags::DETACH) {
        Ok(()) | Err(rustix::io::Errno::INVAL) => {}
        Err(e) => return Err(e.into()),
    }
    mount_bind(file, target)?;
    Ok(())
}

/// The file's current content, if it is a regular file of at most the rendered limit.
fn current(path: &Path) -> Option<Vec<u8>> {
    // Not opened unless it is a regular file: opening a FIFO for reading waits for a
    // writer, and would stall the controller for good. Anything else is replaced.
    if !std::fs::symlink_metadata(path).ok()?.is_file() {
        return None;
    }
    let file = std::fs::File::open(path).ok()?;
    let mut bytes = Vec::new();
    file.take(MAX_RENDERED_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .ok()?;
    Some(bytes)
}

/// Writes `content` to `path` unless it already holds exactly that; true if it wrote.
pub fn write_if_changed(path: &Path, content: &[u8]) -> Result<bool, skerry_medium::MediumError> {
    if current(path).as_deref() == Some(content) {
        return Ok(false);
    }
    skerry_medium::write_atomic(path, content)?;
    Ok(true)
}

impl RenderedFiles {
    fn publish(&self, ctx: &mut ReconcileContext, file: &Rendered) -> Result<(), ControllerError> {
        let path = self.etc.join(file.name);
        let written = write_if_changed(&path, file.content.as_bytes())
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
        let spec = RenderedFile {
            path: path.display().to_string(),
            blake3: blake3::hash(file.content.as_bytes()).to_hex().to_string(),
            bytes: file.content.len() as u64,
        };
        ctx.apply(file.name, spec.clone())?;
        if written {
            if let Some(dir) = &self.bind_over {
                let target = dir.join(file.name);
                rebind(&path, &target).map_err(|e| {
                    format!(
                        "bind-mounting {} over {}: {e}",
                        path.display(),
                        target.display()
                    )
                })?;
            }
            tracing::info!(path = %spec.path, "rendered");
            self.events.push(
                NewEvent::new("network.rendered", format!("rendered {}", spec.path))
                    .about(RenderedFile::NAMESPACE, RenderedFile::TYPE, file.name)
                    .with("path", &spec.path)
                    .with("blake3", &spec.blake3),
            );
        }
        Ok(())
    }
}

impl Controller for RenderedFiles {
    fn name(&self) -> &str {
        NAME
    }

    fn inputs(&self) -> Vec<Input> {
        vec![
            Input::weak::<ActiveMachine>(),
            Input::weak::<ActiveNetwork>(),
            Input::weak::<DhcpLease>(),
        ]
    }

    fn outputs(&self) -> Vec<Output> {
        vec![Output::exclusive::<RenderedFile>()]
    }

    async fn reconcile(&mut self, ctx: &mut ReconcileContext) -> Result<Requeue, ControllerError> {
        let machine = ctx.get::<ActiveMachine>(SINGLETON)?.map(|r| r.spec.0);
        let network = ctx.get::<ActiveNetwork>(SINGLETON)?.map(|r| r.spec.0);
        let leases: Vec<DhcpLease> = ctx
            .list::<DhcpLease>(&Selector::all())?
            .into_iter()
            .map(|r| r.spec)
            .collect();
        let mut files = Vec::new();
        if let Some(machine) = &machine {
            files.push(render::hostname(machine));
        }
        files.push(render::hosts(machine.as_ref(), network.as_ref()));
        files.push(render::resolv_conf(network.as_ref(), &leases));
        let mut first_error: Option<ControllerError> = None;
        for file in files {
            let done = match file {
                Ok(file) => self.publish(ctx, &file),
                Err(e) => Err(e.into()),
            };
            if let Err(e) = done {
                tracing::warn!(error = %e, "a rendered file was not written");
                first_error.get_or_insert(e);
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        // A file no longer rendered (no machine config: no hostname) is left on disk
        // but no longer claimed.
        ctx.cleanup_untouched::<RenderedFile>()?;
        Ok(Requeue::OnChange)
    }
}
