//! `upgrade` (progress from the machine's UpgradeProgress stream), `rollback`, `reboot`
//! and `shutdown`.
//!
//! The progress bar is drawn only for people at a terminal: with `--output json` or
//! `yaml` each progress message is printed as it comes, and when standard output is not
//! a terminal a line is printed per phase instead of a bar.

use std::io::IsTerminal as _;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use skerry_api::pb;

use super::exit::refused;
use super::render;
use super::target::Target;
use crate::output::{self, Output};

/// `upgrade`.
#[derive(Debug, Args)]
pub struct UpgradeArgs {
    /// The release to install (default: the newest the update source offers).
    #[arg(long, value_name = "V")]
    version: Option<String>,
    /// Install even a release this machine rolled back from.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    target: Target,
}

/// `rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// Why, for the machine's upgrade history.
    #[arg(long, default_value = "rolled back by an operator")]
    reason: String,
    #[command(flatten)]
    target: Target,
}

/// `reboot` and `shutdown`.
#[derive(Debug, Args)]
pub struct PowerArgs {
    #[command(flatten)]
    target: Target,
}

/// How progress is shown.
enum Progress {
    /// A bar on the terminal.
    Bar(ProgressBar),
    /// A line per phase, for people reading a log.
    Lines { last: Option<i32> },
    /// Every message as JSON or YAML.
    Items(Output),
}

impl Progress {
    fn new(output: Output) -> Progress {
        if output.structured() {
            Progress::Items(output)
        } else if std::io::stdout().is_terminal() {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout());
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg:24} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            Progress::Bar(bar)
        } else {
            Progress::Lines { last: None }
        }
    }

    fn show(&mut self, p: &pb::UpgradeProgress) -> anyhow::Result<()> {
        match self {
            Progress::Bar(bar) => {
                bar.set_message(render::phase(p.phase));
                if p.total_bytes > 0 {
                    bar.set_length(p.total_bytes);
                }
                bar.set_position(p.done_bytes);
            }
            Progress::Lines { last } => {
                if *last != Some(p.phase) {
                    *last = Some(p.phase);
                    println!("{}", phase_line(p));
                }
            }
            Progress::Items(output) => {
                output::item(*output, &render::progress(p), String::new)?;
            }
        }
        Ok(())
    }

    fn finish(self) {
        if let Progress::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

fn phase_line(p: &pb::UpgradeProgress) -> String {
    let mut line = render::phase(p.phase);
    if !p.release_version.is_empty() {
        line.push_str(&format!(" {}", p.release_version));
    }
    if !p.target_slot.is_empty() {
        line.push_str(&format!(" into slot {}", p.target_slot));
    }
    if !p.message.is_empty() {
        line.push_str(&format!(": {}", p.message));
    }
    line
}

/// Runs `upgrade`.
pub async fn upgrade(args: &UpgradeArgs, output: Output) -> anyhow::Result<()> {
    let mut client = args.target.connect().await?;
    let mut stream = client
        .upgrade(pb::UpgradeRequest {
            release_version: args.version.clone().unwrap_or_default(),
            force: args.force,
        })
        .await
        .map_err(|s| refused("Upgrade", s))?
        .into_inner();
    let mut progress = Progress::new(output);
    let mut last: Option<pb::UpgradeProgress> = None;
    loop {
        match stream.message().await {
            Ok(Some(p)) => {
                progress.show(&p)?;
                last = Some(p);
            }
            Ok(None) => break,
            Err(status) => {
                progress.finish();
                return Err(refused("Upgrade", status));
            }
        }
    }
    progress.finish();
    if output.structured() {
        return Ok(());
    }
    match last {
        Some(p) if p.phase == pb::UpgradePhase::TrialReady as i32 => println!(
            "the trial of {} in slot {} is ready; the machine reboots into it and commits it after probation",
            p.release_version, p.target_slot
        ),
        Some(p) => println!("the machine ended the upgrade stream in phase {}", phase_line(&p)),
        None => println!("the machine sent no progress: nothing to upgrade"),
    }
    Ok(())
}

/// Runs `rollback`.
pub async fn rollback(args: &RollbackArgs, output: Output) -> anyhow::Result<()> {
    let mut client = args.target.connect().await?;
    let answer = client
        .rollback(pb::RollbackRequest {
            reason: args.reason.clone(),
        })
        .await
        .map_err(|s| refused("Rollback", s))?
        .into_inner();
    output::value(
        output,
        &json!({ "target_slot": answer.target_slot, "reason": args.reason }),
        || {
            format!(
                "rolling back: the machine reboots into slot {}\n",
                answer.target_slot
            )
        },
    )
}

/// Runs `reboot`.
pub async fn reboot(args: &PowerArgs, output: Output) -> anyhow::Result<()> {
    let mut client = args.target.connect().await?;
    client
        .reboot(pb::RebootRequest {})
        .await
        .map_err(|s| refused("Reboot", s))?;
    output::value(output, &json!({ "requested": "reboot" }), || {
        "the machine is rebooting\n".into()
    })
}

/// Runs `shutdown`.
pub async fn shutdown(args: &PowerArgs, output: Output) -> anyhow::Result<()> {
    let mut client = args.target.connect().await?;
    client
        .shutdown(pb::ShutdownRequest {})
        .await
        .map_err(|s| refused("Shutdown", s))?;
    output::value(output, &json!({ "requested": "shutdown" }), || {
        "the machine is shutting down\n".into()
    })
}
