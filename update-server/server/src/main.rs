//! `skerry-server --data DIR [--listen ADDR]` serves; `skerry-server rollout …` and
//! `skerry-server pin …` are operator commands on the same data directory. Wiring only.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use clap::{Parser, Subcommand};
use skerry_fleet_store::RolloutAction;
use skerry_rollout::UnixTime;
use skerry_server::admin::{self, NewRollout};
use skerry_server::fleet_db::FleetDb;
use skerry_server::logging::{self, LogFormat};
use skerry_server::timestamp::chain;
use skerry_server::ServerConfig;

/// The Skerry update server.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The data directory (created with its database and repository if missing).
    #[arg(long, global = true)]
    data: Option<PathBuf>,
    /// A PostgreSQL database (postgres://USER[:PASSWORD]@HOST[:PORT]/DB) instead of the
    /// embedded DIR/fleet.db; several instances may share it (and one data directory).
    /// Also read from SKERRY_DATABASE, which keeps a password out of `ps`.
    #[arg(long)]
    database: Option<String>,
    /// Where to listen in plaintext (HTTP/1.1 and HTTP/2, gRPC on the same port):
    /// the repository, the operator API, DDI, and device check-ins by the rules of
    /// --allow-plaintext-devices.
    #[arg(long, default_value = "127.0.0.1:8470")]
    listen: String,
    /// The device-facing TLS port (mutual TLS once enrolled): enrollment, check-ins,
    /// /device/v1/ logs, events and ca.pem. With it, devices are refused on the
    /// plaintext port unless --allow-plaintext-devices.
    #[arg(long)]
    tls_listen: Option<String>,
    /// A DNS name or IP address for the server certificate besides localhost,
    /// 127.0.0.1 and ::1 (repeat for several); the certificate is reissued at start.
    #[arg(long)]
    tls_name: Vec<String>,
    /// Take check-ins on the plaintext port unauthenticated, even from enrolled
    /// devices (tests and demos only: the device is who it says it is).
    #[arg(long)]
    allow_plaintext_devices: bool,
    /// How often devices are told to check in.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    poll_interval: std::time::Duration,
    /// How the server logs on stderr: text lines, or one JSON object per line.
    /// SKERRY_LOG filters (default info).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Rollouts of releases the repository holds.
    #[command(subcommand)]
    Rollout(RolloutCommand),
    /// Maintenance windows per label group.
    #[command(subcommand)]
    Window(WindowCommand),
    /// hawkBit DDI targets (devices running SWUpdate's suricatta).
    #[command(subcommand)]
    Ddi(DdiCommand),
    /// Join tokens a device exchanges for its certificate (docs/fleet-enrollment.md).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Enrolled devices: revocation, their console log and events.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Pins a device to a release (it is offered that and nothing else), or clears the pin.
    Pin {
        device: String,
        /// The release; omit with --clear.
        version: Option<String>,
        /// Offer it even if the device rolled back from it.
        #[arg(long)]
        force: bool,
        #[arg(long, conflicts_with = "version")]
        clear: bool,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Makes a token and prints it (the only time its secret is shown).
    Create {
        #[arg(long, default_value_t = 1)]
        uses: u32,
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        ttl: std::time::Duration,
        /// key=value; repeat for several.
        #[arg(long)]
        label: Vec<String>,
        /// https://HOST:PORT as devices reach the TLS port: also prints the join URL
        /// and the log and event sinks as the kernel arguments skerry.join=…,
        /// skerry.logs=… and skerry.events=….
        #[arg(long)]
        url: Option<String>,
    },
    List,
    Revoke {
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum DeviceCommand {
    /// The device's certificate is refused from now on; it cannot enroll again.
    Revoke { device: String },
    /// Prints the console log (or, with --events, the events) the device sent.
    Logs {
        device: String,
        #[arg(long)]
        events: bool,
    },
}

fn run_enrollment(db: &FleetDb, command: &Command) -> Option<Result<(), String>> {
    use skerry_server::enroll_admin as ea;
    let print = |lines: Vec<String>| lines.iter().for_each(|l| println!("{l}"));
    Some(match command {
        Command::Token(TokenCommand::Create {
            uses,
            ttl,
            label,
            url,
        }) => {
            let base = match url.as_deref().map(skerry_server::join_url::check_base) {
                Some(Err(e)) => return Some(Err(e.to_string())),
                Some(Ok(b)) => Some(b.to_string()),
                None => None,
            };
            let made = ea::create_token(db, *uses, *ttl, label, now());
            made.map_err(|e| e.to_string()).and_then(|t| {
                println!("{}", t.reveal());
                let ca = skerry_server::pki::load_server_ca(
                    &db.dir.pki(),
                    SystemTime::now(),
                )
                .map_err(|e| chain(&e).to_string())?;
                let fingerprint = skerry_server::pki::fingerprint(&ca);
                match base {
                    Some(base) => {
                        let url = skerry_server::join_url::join_url(&base, &t, &fingerprint)
                            .map_err(|e| e.to_string())?;
                        println!("skerry.join={url}");
                        for (arg, path) in [
                            ("skerry.logs", skerry_server::join_url::LOGS_PATH),
                            ("skerry.events", skerry_server::join_url::EVENTS_PATH),
                        ] {
                            let sink =
                                skerry_server::join_url::sink_url(&base, path, &t, &fingerprint)
                                    .map_err(|e| e.to_string())?;
                            println!("{arg}={sink}");
                        }
                        eprintln!(
                            "skerry-server: beside skerry.join=, the short skerry.logs={} skerry.events={} fit a bootloader's few bytes of kernel arguments",
                            skerry_server::join_url::LOGS_PATH,
                            skerry_server::join_url::EVENTS_PATH
                        );
                    }
                    None => eprintln!(
                        "skerry-server: the server CA is {fingerprint}; add --url https://HOST:PORT to print the join URL"
                    ),
                }
                Ok(())
            })
        }
        Command::Token(TokenCommand::List) => ea::list_tokens(db, now())
            .map(print)
            .map_err(|e| e.to_string()),
        Command::Token(TokenCommand::Revoke { id }) => {
            ea::revoke_token(db, id, now()).map_err(|e| e.to_string())
        }
        Command::Device(DeviceCommand::Revoke { device }) => {
            ea::revoke_device(db, device, now()).map_err(|e| e.to_string())
        }
        Command::Device(DeviceCommand::Logs { device, events }) => {
            ea::device_log(db, device, *events)
                .map(print)
                .map_err(|e| e.to_string())
        }
        _ => return None,
    })
}

#[derive(Debug, Subcommand)]
enum DdiCommand {
    /// Makes a DDI target (or gives it a new token) and prints its target token.
    Add {
        device: String,
        #[arg(long)]
        board: String,
        #[arg(long, default_value = "stable")]
        channel: String,
        /// The release it runs now.
        #[arg(long, default_value = "0.0.0")]
        version: String,
    },
}

#[derive(Debug, Subcommand)]
enum WindowCommand {
    /// Devices with all these labels are upgraded only inside this window (UTC).
    Add {
        /// key=value; repeat for several; none selects every device.
        #[arg(long)]
        group: Vec<String>,
        /// mon,tue,… or daily.
        #[arg(long, default_value = "daily")]
        days: String,
        /// HH:MM, UTC.
        #[arg(long)]
        start: String,
        /// e.g. 2h; may run past midnight.
        #[arg(long)]
        length: String,
    },
}

#[derive(Debug, Subcommand)]
enum RolloutCommand {
    /// Starts a rollout now.
    Create {
        #[arg(long)]
        id: String,
        #[arg(long)]
        board: String,
        #[arg(long)]
        version: String,
        #[arg(long, default_value = "stable")]
        channel: String,
        /// OFFSET:PERCENT,… after the start, e.g. 0:5%,1h:25%,1d:100%.
        #[arg(long, default_value = "0:100%")]
        waves: String,
        /// Pause when more than this share of a wave's devices failed or rolled back.
        #[arg(long, default_value = "20%")]
        max_bad: String,
        /// The share is taken over at least this many devices.
        #[arg(long, default_value_t = 1)]
        min_sample: u32,
        /// Offer also to devices that rolled back from this release.
        #[arg(long)]
        force: bool,
    },
    Pause {
        id: String,
        #[arg(long, default_value = "")]
        note: String,
    },
    Resume {
        id: String,
    },
    Abort {
        id: String,
    },
    List,
}

fn now() -> UnixTime {
    UnixTime::from_system(SystemTime::now())
}

fn run_admin(db: &FleetDb, command: Command) -> Result<(), admin::AdminError> {
    match command {
        Command::Ddi(_) | Command::Token(_) | Command::Device(_) => {} // answered in main
        Command::Pin {
            device,
            version,
            force,
            clear,
        } => {
            let pin = if clear {
                None
            } else {
                version.as_deref().map(|v| (v, force))
            };
            admin::pin(db, &device, pin)?;
        }
        Command::Rollout(RolloutCommand::Create {
            id,
            board,
            version,
            channel,
            waves,
            max_bad,
            min_sample,
            force,
        }) => {
            let new = NewRollout {
                id,
                board,
                version,
                channel,
                waves,
                max_bad,
                min_sample,
                force,
            };
            let r = admin::create_rollout(db, &new, now())?;
            println!(
                "rollout {} of {} {} ({}) started",
                r.id, r.release.board, r.release.version, r.release.channel
            );
        }
        Command::Rollout(RolloutCommand::Pause { id, note }) => {
            admin::act(db, &id, &RolloutAction::Pause { note }, now())?
        }
        Command::Rollout(RolloutCommand::Resume { id }) => {
            admin::act(db, &id, &RolloutAction::Resume, now())?
        }
        Command::Rollout(RolloutCommand::Abort { id }) => {
            admin::act(db, &id, &RolloutAction::Abort, now())?
        }
        Command::Window(WindowCommand::Add {
            group,
            days,
            start,
            length,
        }) => {
            let w = admin::add_window(
                db,
                &admin::NewWindow {
                    group,
                    days,
                    start,
                    length,
                },
            )?;
            println!(
                "window added: {} minutes from minute {} (UTC)",
                w.length_minutes, w.start_minute
            );
        }
        Command::Rollout(RolloutCommand::List) => {
            for line in admin::list(db)? {
                println!("{line}");
            }
        }
    }
    Ok(())
}

/// An operator command on the fleet database (`--database`, or the embedded one in
/// `--data`); runs on a blocking thread (PostgreSQL's client blocks).
fn run_command(
    data: &std::path::Path,
    database: Option<&str>,
    command: Command,
) -> Result<(), String> {
    let db = FleetDb::open(data, database).map_err(|e| chain(&e))?;
    if let Command::Ddi(DdiCommand::Add {
        device,
        board,
        channel,
        version,
    }) = &command
    {
        use skerry_server::ddi::admin as ddi_admin;
        let version = ddi_admin::running_version(version)?;
        let target = skerry_fleet_store::DdiTarget {
            device: device.clone(),
            board: board.clone(),
            channel: channel.clone(),
            version,
        };
        let token =
            ddi_admin::add_target(&db, &target, now()).map_err(|e| format!("ddi add: {e}"))?;
        println!("{token}");
        return Ok(());
    }
    if let Some(done) = run_enrollment(&db, &command) {
        return done;
    }
    run_admin(&db, command).map_err(|e| chain(&e))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let Some(data) = args.data else {
        eprintln!("skerry-server: --data DIR is required");
        return ExitCode::from(2);
    };
    let database = args.database.or_else(|| {
        std::env::var("SKERRY_DATABASE")
            .ok()
            .filter(|d| !d.is_empty())
    });
    if let Some(command) = args.command {
        let database = database.clone();
        let done =
            tokio::task::spawn_blocking(move || run_command(&data, database.as_deref(), command))
                .await;
        return match done {
            Ok(Ok(())) => ExitCode::SUCCESS,
            Ok(Err(e)) => {
                eprintln!("skerry-server: {e}");
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("skerry-server: {e}");
                ExitCode::FAILURE
            }
        };
    }
    logging::init(args.log_format);
    let listener = match tokio::net::TcpListener::bind(&args.listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(listen = %args.listen, error = %e, "cannot listen (--listen)");
            return ExitCode::FAILURE;
        }
    };
    let addr = listener
        .local_addr()
        .map_or(args.listen.clone(), |a| a.to_string());
    let tls = match &args.tls_listen {
        Some(at) => match tokio::net::TcpListener::bind(at).await {
            Ok(l) => {
                let a = l.local_addr().map_or(at.clone(), |a| a.to_string());
                tracing::info!(
                    url = %format!("https://{a}"),
                    "devices enroll and check in here (mutual TLS)"
                );
                Some(l)
            }
            Err(e) => {
                tracing::error!(listen = %at, error = %e, "cannot listen (--tls-listen)");
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    tracing::info!(
        data = %data.display(),
        url = %format!("http://{addr}"),
        database = if database.is_some() { "postgresql" } else { "embedded" },
        "serving (repository at /repository/, gRPC skerry.fleet.v1, operator API at /api/v1/)"
    );
    let mut config = ServerConfig::new(data);
    config.poll_interval = args.poll_interval;
    config.database = database;
    config.tls_names = args.tls_name;
    config.allow_plaintext_devices = args.allow_plaintext_devices;
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match skerry_server::serve_with_tls(listener, tls, config, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %chain(&e), "the server stopped");
            ExitCode::FAILURE
        }
    }
}
