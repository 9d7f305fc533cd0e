//! `apply-config`, `confirm-config` and `patch`.
//!
//! The machine validates what it is sent and answers INVALID_ARGUMENT with every
//! problem in the status details (a `ConfigurationProblems` message); each is printed
//! with its document, key path and line.
//!
//! `patch` works on a base file (`--base`), not on a config read back from the machine:
//! the API has no method that returns the whole config in effect (the config resources
//! are per-kind views, and the services in it are admin-only), so the patch is applied
//! here to the file the operator keeps, and the result is sent like `apply-config`.
//! `--dry-run` shows the machine's diff against the config in effect, so a stale base
//! shows before anything changes.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use prost::Message as _;
use serde_json::json;
use skerry_api::pb;
use tonic::Code;

use super::exit::{refused, usage};
use super::render;
use super::target::{read_input, Target};
use crate::output::{self, Output};

/// The help after `apply-config`.
pub const APPLY_HELP: &str = "\
Examples:
  skerryctl apply-config machine.yaml --dry-run      # print the diff, change nothing
  skerryctl apply-config machine.yaml --mode try --try-timeout 5m
  skerryctl confirm-config 7                         # keep it before it is reverted

Modes: no-reboot (default; refused if a change needs a reboot), reboot, staged (takes
effect at the next boot), try (reverted after --try-timeout unless confirmed).
An invalid config prints every problem (document, key path, line) and exits 4.";

/// The help after `patch`.
pub const PATCH_HELP: &str = "\
Examples:
  skerryctl patch hostname.yaml --base machine.yaml --dry-run
  skerryctl patch --patch '[{\"op\":\"replace\",\"path\":\"/MachineConfig/hostname\",\"value\":\"edge-2\"}]' \\
      --type json6902 --base machine.yaml --local > machine-new.yaml

The patch is applied here to --base (the config file the machine was given): the API
has no method that returns the whole config in effect. --dry-run shows the machine's
diff against what it runs, so a stale base shows before anything changes; --local
prints the patched config and sends nothing.";

/// How long a `try` apply stays unless confirmed, when --try-timeout is not given.
pub const DEFAULT_TRY_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest --try-timeout.
pub const MAX_TRY_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);
/// The most problems printed one by one (the rest are counted).
pub const MAX_PROBLEMS_SHOWN: usize = 500;

/// How the machine applies a config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Now, without a reboot; refused if a change needs one.
    NoReboot,
    /// Now, then the machine reboots.
    Reboot,
    /// At the next boot.
    Staged,
    /// Now, reverted after --try-timeout unless confirmed.
    Try,
}

/// How to apply, shared by `apply-config` and `patch`.
#[derive(Debug, Clone, Args)]
pub struct ApplyOptions {
    /// How the machine applies the config.
    #[arg(long, value_enum, default_value_t = Mode::NoReboot)]
    mode: Mode,
    /// With --mode try: how long until the machine reverts it unless confirmed
    /// (default 1m, as the daemon's own, at most 24h).
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    try_timeout: Option<Duration>,
    /// Validate and print the diff; change nothing.
    #[arg(long)]
    dry_run: bool,
}

/// `apply-config`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The machine config: multi-document YAML, one `kind:` per document.
    file: PathBuf,
    #[command(flatten)]
    how: ApplyOptions,
    #[command(flatten)]
    target: Target,
}

/// `confirm-config`.
#[derive(Debug, Args)]
pub struct ConfirmArgs {
    /// The generation `apply-config --mode try` answered.
    generation: u64,
    #[command(flatten)]
    target: Target,
}

/// The patch formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PatchType {
    /// Strategic merge: YAML documents merged into the config by kind (services by name).
    Strategic,
    /// RFC 6902 JSON Patch over the config's JSON tree.
    Json6902,
}

/// `patch`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("patch-source").required(true).args(["file", "patch"]))]
pub struct PatchArgs {
    /// The patch file.
    file: Option<PathBuf>,
    /// The patch itself, instead of a file.
    #[arg(long, value_name = "TEXT")]
    patch: Option<String>,
    /// The patch format.
    #[arg(long = "type", value_enum, default_value_t = PatchType::Strategic)]
    kind: PatchType,
    /// The config file to patch (the one the machine was given).
    #[arg(long, value_name = "FILE")]
    base: PathBuf,
    /// Print the patched config and send nothing.
    #[arg(long)]
    local: bool,
    #[command(flatten)]
    how: ApplyOptions,
    #[command(flatten)]
    target: Target,
}

impl ApplyOptions {
    fn request(&self, configuration: Vec<u8>) -> anyhow::Result<pb::ApplyConfigurationRequest> {
        let try_timeout = match (self.mode, self.try_timeout) {
            (Mode::Try, t) => {
                let t = t.unwrap_or(DEFAULT_TRY_TIMEOUT);
                if t.is_zero() || t > MAX_TRY_TIMEOUT {
                    return Err(usage(format!(
                        "--try-timeout {} is outside 1s..24h",
                        humantime::format_duration(t)
                    )));
                }
                prost_types::Duration::try_from(t).ok()
            }
            (_, Some(_)) => return Err(usage("--try-timeout is only for --mode try")),
            (_, None) => None,
        };
        let mode = match self.mode {
            Mode::NoReboot => pb::ApplyMode::NoReboot,
            Mode::Reboot => pb::ApplyMode::Reboot,
            Mode::Staged => pb::ApplyMode::Staged,
            Mode::Try => pb::ApplyMode::Try,
        };
        Ok(pb::ApplyConfigurationRequest {
            configuration,
            mode: mode.into(),
            dry_run: self.dry_run,
            try_timeout,
        })
    }
}

/// Runs `apply-config`.
pub async fn apply_config(args: &ApplyArgs, output: Output) -> anyhow::Result<()> {
    let bytes = read_input(
        &args.file,
        "the machine config",
        skerry_api::MAX_REQUEST_BYTES,
    )?;
    let request = args.how.request(bytes)?;
    send(&args.target, request, output).await
}

/// The problems in an INVALID_ARGUMENT status's details: a `ConfigurationProblems`
/// message, or a `google.rpc.Status` whose details hold one.
pub fn problems_in(status: &tonic::Status) -> Vec<pb::ConfigurationProblem> {
    let details = status.details();
    if details.is_empty() {
        return Vec::new();
    }
    if let Ok(direct) = pb::ConfigurationProblems::decode(details) {
        if !direct.problems.is_empty() {
            return direct.problems;
        }
    }
    RpcStatus::decode(details)
        .map(|rich| {
            rich.details
                .iter()
                .filter(|any| {
                    any.type_url
                        .ends_with("/skerry.machine.v1.ConfigurationProblems")
                })
                .filter_map(|any| pb::ConfigurationProblems::decode(any.value.as_slice()).ok())
                .flat_map(|p| p.problems)
                .collect()
        })
        .unwrap_or_default()
}

/// `google.rpc.Status`, the other way servers put messages into status details.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<prost_types::Any>,
}

/// Prints every problem (on stderr for people; as one document on stdout for scripts).
fn print_problems(problems: &[pb::ConfigurationProblem], output: Output) -> anyhow::Result<()> {
    for p in problems.iter().take(MAX_PROBLEMS_SHOWN) {
        eprintln!("problem: {}", render::problem_line(p));
    }
    if problems.len() > MAX_PROBLEMS_SHOWN {
        eprintln!(
            "... and {} more problems",
            problems.len() - MAX_PROBLEMS_SHOWN
        );
    }
    if output.structured() {
        let doc = json!({ "problems": problems.iter().map(render::problem).collect::<Vec<_>>() });
        output::value(output, &doc, String::new)?;
    }
    Ok(())
}

async fn send(
    target: &Target,
    request: pb::ApplyConfigurationRequest,
    output: Output,
) -> anyhow::Result<()> {
    let dry_run = request.dry_run;
    let mode = request.mode;
    let mut client = target.connect().await?;
    let answer = match client.apply_configuration(request).await {
        Ok(answer) => answer.into_inner(),
        Err(status) => {
            if status.code() == Code::InvalidArgument {
                let problems = problems_in(&status);
                if !problems.is_empty() {
                    print_problems(&problems, output)?;
                    // The message lists the problems again below its first line; they
                    // were just printed one per line.
                    let first = status.message().lines().next().unwrap_or_default();
                    let summary = tonic::Status::invalid_argument(first.trim_end_matches(':'));
                    return Err(refused("ApplyConfiguration", summary));
                }
            }
            return Err(refused("ApplyConfiguration", status));
        }
    };
    if !answer.problems.is_empty() {
        print_problems(&answer.problems, output)?;
        return Err(refused(
            "ApplyConfiguration",
            tonic::Status::invalid_argument(format!(
                "the dry run found {} problem(s) in the configuration",
                answer.problems.len()
            )),
        ));
    }
    output::value(output, &render::apply(&answer), || {
        apply_text(&answer, dry_run, mode)
    })
}

fn apply_text(a: &pb::ApplyConfigurationResponse, dry_run: bool, mode: i32) -> String {
    let mut out = a.diff.clone();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    let mode = pb::ApplyMode::try_from(mode)
        .map(|m| {
            m.as_str_name()
                .trim_start_matches("APPLY_MODE_")
                .to_ascii_lowercase()
                .replace('_', "-")
        })
        .unwrap_or_default();
    let summary = if dry_run {
        if a.diff.is_empty() {
            "dry run: the config is valid and the same as the one in effect; nothing changed".into()
        } else {
            "dry run: the config is valid; nothing changed".into()
        }
    } else if a.unchanged {
        "unchanged: the machine already has this config".into()
    } else {
        let mut s = format!("applied as generation {} (mode {mode})", a.generation);
        if a.revert_at.is_some() {
            s.push_str(&format!(
                "; reverted at {} unless you run `skerryctl confirm-config {}`",
                render::time(a.revert_at.as_ref()),
                a.generation
            ));
        }
        if a.reboot_pending {
            s.push_str("; the machine reboots to finish applying it");
        }
        s
    };
    out.push_str(&summary);
    out.push('\n');
    out
}

/// Runs `confirm-config`.
pub async fn confirm(args: &ConfirmArgs, output: Output) -> anyhow::Result<()> {
    let mut client = args.target.connect().await?;
    client
        .confirm_configuration(pb::ConfirmConfigurationRequest {
            generation: args.generation,
        })
        .await
        .map_err(|s| refused("ConfirmConfiguration", s))?;
    output::value(output, &json!({ "confirmed": args.generation }), || {
        format!("confirmed generation {}: it stays\n", args.generation)
    })
}

/// Runs `patch`.
pub async fn patch(args: &PatchArgs, output: Output) -> anyhow::Result<()> {
    let limit = skerry_api::MAX_REQUEST_BYTES;
    let base_bytes = read_input(&args.base, "the base config", limit)?;
    let base_text = String::from_utf8(base_bytes).map_err(|_| {
        usage(format!(
            "the base config {} is not UTF-8",
            args.base.display()
        ))
    })?;
    let base = skerry_config::decode(&base_text).map_err(|e| {
        usage(format!(
            "the base config {} does not decode: {e}",
            args.base.display()
        ))
    })?;
    let patch_text = match (&args.file, &args.patch) {
        (Some(file), _) => String::from_utf8(read_input(file, "the patch", limit)?)
            .map_err(|_| usage(format!("the patch {} is not UTF-8", file.display())))?,
        (None, Some(text)) if text.len() <= limit => text.clone(),
        (None, Some(text)) => {
            return Err(usage(format!(
                "--patch is {} bytes, more than the limit of {limit}",
                text.len()
            )))
        }
        (None, None) => return Err(usage("give a patch FILE or --patch TEXT")),
    };
    let patched = match args.kind {
        PatchType::Strategic => skerry_config::patch::strategic_merge(&base, &patch_text),
        PatchType::Json6902 => skerry_config::patch::json_patch(&base, &patch_text),
    }
    .map_err(|e| anyhow::anyhow!("patching {}: {e}", args.base.display()))?;
    let yaml = patched.to_yaml();
    if args.local {
        print!("{yaml}");
        return Ok(());
    }
    let request = args.how.request(yaml.into_bytes())?;
    send(&args.target, request, output).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems() -> pb::ConfigurationProblems {
        pb::ConfigurationProblems {
            problems: vec![pb::ConfigurationProblem {
                document: "NetworkConfig".into(),
                path: "links[0].mtu".into(),
                line: 7,
                message: "MTU 100 is below 576".into(),
            }],
        }
    }

    #[test]
    fn problems_are_read_from_plain_and_rich_status_details() {
        let plain = tonic::Status::with_details(
            Code::InvalidArgument,
            "invalid",
            problems().encode_to_vec().into(),
        );
        assert_eq!(problems_in(&plain), problems().problems);
        let rich = RpcStatus {
            code: 3,
            message: "invalid".into(),
            details: vec![prost_types::Any {
                type_url: "type.googleapis.com/skerry.machine.v1.ConfigurationProblems".into(),
                value: problems().encode_to_vec(),
            }],
        };
        let rich = tonic::Status::with_details(
            Code::InvalidArgument,
            "invalid",
            rich.encode_to_vec().into(),
        );
        assert_eq!(problems_in(&rich), problems().problems);
        assert!(problems_in(&tonic::Status::invalid_argument("x")).is_empty());
    }

    #[test]
    fn try_timeout_belongs_to_try_mode() {
        let opts = ApplyOptions {
            mode: Mode::Staged,
            try_timeout: Some(Duration::from_secs(60)),
            dry_run: false,
        };
        assert!(opts.request(vec![]).is_err());
        let opts = ApplyOptions {
            mode: Mode::Try,
            try_timeout: None,
            dry_run: false,
        };
        let request = opts.request(vec![]).unwrap();
        assert_eq!(request.try_timeout.unwrap().seconds, 60);
        assert_eq!(request.mode, pb::ApplyMode::Try as i32);
    }
}
