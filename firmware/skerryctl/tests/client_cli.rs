//! skerryctl's machine commands against a fake machine: a `MachineService` written
//! here, which records every request and answers with canned answers and streams,
//! served by `skerry_api::serve` (real mutual TLS and the real role gate) on
//! 127.0.0.1 with the certificates `skerryctl gen secrets` wrote into a temp dir. Each
//! test runs the built binary and reads what it prints and how it exits.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::pin::Pin;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prost::Message as _;
use skerry_api::{pb, MachineService, ServerTls};
use tokio::sync::Notify;
use tokio_stream::Stream;
use tonic::{Code, Request, Response, Status};

type Answers<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Exit codes skerryctl documents.
const USAGE: i32 = 2;
const UNREACHABLE: i32 = 3;
const REFUSED: i32 = 4;
const NOT_PERMITTED: i32 = 5;

/// The config the fake refuses (it holds this marker) and the problems it names.
const BAD_MARKER: &str = "mtu: 100";

fn problems() -> pb::ConfigurationProblems {
    pb::ConfigurationProblems {
        problems: vec![
            pb::ConfigurationProblem {
                document: "NetworkConfig".into(),
                path: "links[0].mtu".into(),
                line: 9,
                message: "MTU 100 is below 576, the least IPv4 allows".into(),
            },
            pb::ConfigurationProblem {
                document: "MachineConfig".into(),
                path: "hostname".into(),
                line: 3,
                message: "`bad_name` is not a valid host name".into(),
            },
        ],
    }
}

const DIFF: &str = "--- in effect\n+++ submitted\n-hostname: edge-1\n+hostname: edge-2\n";

fn resource(id: &str, version: u64) -> pb::Resource {
    pb::Resource {
        r#ref: Some(pb::ResourceRef {
            namespace: "config".into(),
            r#type: "ActiveMachine".into(),
            id: id.into(),
        }),
        version,
        owner: "config".into(),
        phase: pb::ResourcePhase::Running.into(),
        finalizers: vec![],
        created: None,
        updated: Some(prost_types::Timestamp {
            seconds: 1_790_000_000,
            nanos: 0,
        }),
        spec_yaml: format!("hostname: {id}-host\nlabels:\n  site: dock\n"),
    }
}

fn service(id: &str, state: pb::ServiceState) -> pb::Service {
    pb::Service {
        id: id.into(),
        state: state.into(),
        health: pb::HealthStatus::Healthy.into(),
        pid: 42,
        restarts: 1,
        state_since: None,
        message: String::new(),
    }
}

/// The fake machine: records one line per request, answers from fixed data.
#[derive(Clone, Default)]
struct Fake {
    requests: Arc<Mutex<Vec<String>>>,
    /// `logs -f` holds its stream open after two lines until this is notified.
    more_logs: Arc<Notify>,
}

impl Fake {
    fn record(&self, line: String) {
        self.requests.lock().unwrap().push(line);
    }
}

fn stream<T: Send + 'static>(items: Vec<T>) -> Answers<T> {
    Box::pin(tokio_stream::iter(items.into_iter().map(Ok)))
}

#[tonic::async_trait]
impl MachineService for Fake {
    async fn version(
        &self,
        _r: Request<pb::VersionRequest>,
    ) -> Result<Response<pb::VersionResponse>, Status> {
        self.record("Version".into());
        Ok(Response::new(pb::VersionResponse {
            daemon_version: "9.9.9".into(),
            api_version: "skerry.machine.v1".into(),
            release_version: "2026.12.1".into(),
            board: "rpi4".into(),
            booted_slot: "A".into(),
        }))
    }

    async fn health(
        &self,
        _r: Request<pb::HealthRequest>,
    ) -> Result<Response<pb::HealthResponse>, Status> {
        self.record("Health".into());
        Ok(Response::new(pb::HealthResponse {
            overall: pb::HealthStatus::Unhealthy.into(),
            checks: vec![pb::HealthCheck {
                name: "web/http".into(),
                critical: true,
                status: pb::HealthStatus::Unhealthy.into(),
                message: "connection refused".into(),
                last_run: None,
                consecutive_failures: 3,
            }],
        }))
    }

    async fn apply_configuration(
        &self,
        r: Request<pb::ApplyConfigurationRequest>,
    ) -> Result<Response<pb::ApplyConfigurationResponse>, Status> {
        let r = r.into_inner();
        let text = String::from_utf8_lossy(&r.configuration).into_owned();
        self.record(format!(
            "ApplyConfiguration mode={} dry_run={} try_timeout={:?} config={text:?}",
            r.mode,
            r.dry_run,
            r.try_timeout.map(|d| d.seconds)
        ));
        if text.contains(BAD_MARKER) && r.dry_run {
            return Ok(Response::new(pb::ApplyConfigurationResponse {
                problems: problems().problems,
                unchanged: true,
                ..Default::default()
            }));
        }
        if text.contains(BAD_MARKER) {
            return Err(Status::with_details(
                Code::InvalidArgument,
                // As skerryd words it: a summary line, then every problem again.
                "the configuration has 2 problem(s):\n  - NetworkConfig `links[0].mtu` (line 9): MTU 100 is below 576, the least IPv4 allows\n  - MachineConfig `hostname` (line 3): `bad_name` is not a valid host name",
                problems().encode_to_vec().into(),
            ));
        }
        Ok(Response::new(pb::ApplyConfigurationResponse {
            diff: DIFF.into(),
            problems: vec![],
            unchanged: r.dry_run,
            generation: if r.dry_run { 0 } else { 7 },
            revert_at: None,
            reboot_pending: false,
        }))
    }

    async fn confirm_configuration(
        &self,
        r: Request<pb::ConfirmConfigurationRequest>,
    ) -> Result<Response<pb::ConfirmConfigurationResponse>, Status> {
        self.record(format!(
            "ConfirmConfiguration generation={}",
            r.into_inner().generation
        ));
        Ok(Response::new(pb::ConfirmConfigurationResponse {}))
    }

    type UpgradeStream = Answers<pb::UpgradeProgress>;

    async fn upgrade(
        &self,
        r: Request<pb::UpgradeRequest>,
    ) -> Result<Response<Self::UpgradeStream>, Status> {
        let r = r.into_inner();
        self.record(format!(
            "Upgrade version={} force={}",
            r.release_version, r.force
        ));
        let step = |phase: pb::UpgradePhase, done, total| pb::UpgradeProgress {
            phase: phase.into(),
            done_bytes: done,
            total_bytes: total,
            release_version: "2026.12.2".into(),
            target_slot: "B".into(),
            message: String::new(),
        };
        use pb::UpgradePhase as P;
        if r.release_version == "in-probation" {
            return Ok(Response::new(Box::pin(tokio_stream::iter(vec![
                Ok(step(P::RefreshingMetadata, 0, 0)),
                Err(Status::failed_precondition(
                    "the booted slot is in probation: no upgrade until it is committed",
                )),
            ]))));
        }
        Ok(Response::new(stream(vec![
            step(P::RefreshingMetadata, 0, 0),
            step(P::Downloading, 0, 1000),
            step(P::Downloading, 500, 1000),
            step(P::Downloading, 1000, 1000),
            step(P::Writing, 1000, 1000),
            step(P::Verifying, 1000, 1000),
            step(P::TrialReady, 0, 0),
        ])))
    }

    async fn rollback(
        &self,
        r: Request<pb::RollbackRequest>,
    ) -> Result<Response<pb::RollbackResponse>, Status> {
        self.record(format!("Rollback reason={}", r.into_inner().reason));
        Ok(Response::new(pb::RollbackResponse {
            target_slot: "A".into(),
        }))
    }

    async fn reboot(
        &self,
        _r: Request<pb::RebootRequest>,
    ) -> Result<Response<pb::RebootResponse>, Status> {
        self.record("Reboot".into());
        Ok(Response::new(pb::RebootResponse {}))
    }

    async fn shutdown(
        &self,
        _r: Request<pb::ShutdownRequest>,
    ) -> Result<Response<pb::ShutdownResponse>, Status> {
        self.record("Shutdown".into());
        Ok(Response::new(pb::ShutdownResponse {}))
    }

    async fn service_list(
        &self,
        _r: Request<pb::ServiceListRequest>,
    ) -> Result<Response<pb::ServiceListResponse>, Status> {
        self.record("ServiceList".into());
        Ok(Response::new(pb::ServiceListResponse {
            services: vec![
                service("web", pb::ServiceState::Running),
                service("db", pb::ServiceState::Backoff),
            ],
        }))
    }

    async fn service_start(
        &self,
        r: Request<pb::ServiceStartRequest>,
    ) -> Result<Response<pb::ServiceActionResponse>, Status> {
        let id = r.into_inner().id;
        self.record(format!("ServiceStart id={id}"));
        if id == "nope" {
            return Err(Status::not_found("no service `nope` in the config"));
        }
        Ok(Response::new(pb::ServiceActionResponse {
            service: Some(service(&id, pb::ServiceState::Starting)),
        }))
    }

    async fn service_stop(
        &self,
        r: Request<pb::ServiceStopRequest>,
    ) -> Result<Response<pb::ServiceActionResponse>, Status> {
        let id = r.into_inner().id;
        self.record(format!("ServiceStop id={id}"));
        Ok(Response::new(pb::ServiceActionResponse {
            service: Some(service(&id, pb::ServiceState::Stopping)),
        }))
    }

    async fn service_restart(
        &self,
        r: Request<pb::ServiceRestartRequest>,
    ) -> Result<Response<pb::ServiceActionResponse>, Status> {
        let id = r.into_inner().id;
        self.record(format!("ServiceRestart id={id}"));
        Ok(Response::new(pb::ServiceActionResponse {
            service: Some(service(&id, pb::ServiceState::Starting)),
        }))
    }

    type LogsStream = Answers<pb::LogEntry>;

    async fn logs(
        &self,
        r: Request<pb::LogsRequest>,
    ) -> Result<Response<Self::LogsStream>, Status> {
        let r = r.into_inner();
        self.record(format!(
            "Logs service={} follow={} tail={}",
            r.service_id, r.follow, r.tail_lines
        ));
        let line = |text: &str| pb::LogEntry {
            time: None,
            stream: pb::LogStream::Stdout.into(),
            line: text.as_bytes().to_vec(),
            dropped_before: 0,
        };
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let more = self.more_logs.clone();
        tokio::spawn(async move {
            let _ = tx.send(Ok(line("listening on :8080"))).await;
            let _ = tx.send(Ok(line("GET / 200"))).await;
            if r.follow {
                more.notified().await;
                let _ = tx.send(Ok(line("GET /later 200"))).await;
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    type EventsStream = Answers<pb::Event>;

    async fn events(
        &self,
        r: Request<pb::EventsRequest>,
    ) -> Result<Response<Self::EventsStream>, Status> {
        let r = r.into_inner();
        self.record(format!("Events after={} watch={}", r.after_id, r.watch));
        let after: u64 = r.after_id.parse().unwrap_or(0);
        let events = (40..44)
            .filter(|id| *id > after)
            .map(|id| pb::Event {
                id: id.to_string(),
                time: None,
                kind: "service.state".into(),
                resource: None,
                message: format!("event {id}"),
                attributes: [("service".to_owned(), "web".to_owned())].into(),
            })
            .collect();
        Ok(Response::new(stream(events)))
    }

    async fn resource_get(
        &self,
        r: Request<pb::ResourceGetRequest>,
    ) -> Result<Response<pb::ResourceGetResponse>, Status> {
        let reference = r.into_inner().r#ref.unwrap_or_default();
        self.record(format!(
            "ResourceGet {}/{}/{}",
            reference.namespace, reference.r#type, reference.id
        ));
        if reference.id != "active" {
            return Err(Status::not_found(format!(
                "no {}/{} with id {}",
                reference.namespace, reference.r#type, reference.id
            )));
        }
        Ok(Response::new(pb::ResourceGetResponse {
            resource: Some(resource("active", 3)),
        }))
    }

    async fn resource_list(
        &self,
        r: Request<pb::ResourceListRequest>,
    ) -> Result<Response<pb::ResourceListResponse>, Status> {
        let r = r.into_inner();
        self.record(format!("ResourceList {}/{}", r.namespace, r.r#type));
        Ok(Response::new(pb::ResourceListResponse {
            resources: vec![resource("active", 3), resource("previous", 1)],
        }))
    }

    type ResourceWatchStream = Answers<pb::ResourceWatchEvent>;

    async fn resource_watch(
        &self,
        r: Request<pb::ResourceWatchRequest>,
    ) -> Result<Response<Self::ResourceWatchStream>, Status> {
        let r = r.into_inner();
        self.record(format!(
            "ResourceWatch {}/{} id={} bootstrap={}",
            r.namespace, r.r#type, r.id, r.bootstrap
        ));
        use pb::ResourceEventKind as K;
        let event = |kind: K, resource: Option<pb::Resource>| pb::ResourceWatchEvent {
            kind: kind.into(),
            resource,
        };
        Ok(Response::new(stream(vec![
            event(K::Created, Some(resource("active", 3))),
            event(K::Bootstrapped, None),
            event(K::Updated, Some(resource("active", 4))),
        ])))
    }

    async fn dependencies(
        &self,
        _r: Request<pb::DependenciesRequest>,
    ) -> Result<Response<pb::DependenciesResponse>, Status> {
        self.record("Dependencies".into());
        Ok(Response::new(pb::DependenciesResponse {
            controllers: vec![pb::Controller {
                name: "network".into(),
                dependencies: vec![
                    pb::ControllerDependency {
                        namespace: "config".into(),
                        r#type: "ActiveNetwork".into(),
                        kind: pb::DependencyKind::WeakInput.into(),
                    },
                    pb::ControllerDependency {
                        namespace: "network".into(),
                        r#type: "Link".into(),
                        kind: pb::DependencyKind::ExclusiveOutput.into(),
                    },
                ],
            }],
        }))
    }
}

/// The fake served over mutual TLS with fresh secrets; stopped when dropped.
struct Machine {
    fake: Fake,
    runtime: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    port: u16,
}

impl Machine {
    fn start() -> Machine {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("secrets");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let gen = Command::new(env!("CARGO_BIN_EXE_skerryctl"))
            .args(["gen", "secrets", "--context", "edge", "--out"])
            .arg(&dir)
            .arg("--endpoint")
            .arg(format!("https://127.0.0.1:{port}"))
            .output()
            .unwrap();
        assert!(
            gen.status.success(),
            "{}",
            String::from_utf8_lossy(&gen.stderr)
        );
        let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
        let tls = ServerTls::from_pem(read("node.crt"), read("node.key"), read("ca.crt"));
        let fake = Fake::default();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = fake.clone();
        runtime.spawn(async move {
            skerry_api::serve(listener, &tls, served, async {
                let _ = stopped.await;
            })
            .await
        });
        Machine {
            fake,
            runtime,
            stop: Some(stop),
            _tmp: tmp,
            dir,
            port,
        }
    }

    fn config(&self) -> PathBuf {
        self.dir.join("skerryconfig.json")
    }

    /// `skerryctl ARGS --config <the client config>`, not yet run.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_skerryctl"));
        command.args(args).arg("--config").arg(self.config());
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn requests(&self) -> Vec<String> {
        self.fake.requests.lock().unwrap().clone()
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = &self.runtime;
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "skerryctl failed ({:?}): {}",
        out.status.code(),
        stderr(out)
    );
    stdout(out)
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

const GOOD_CONFIG: &str =
    "apiVersion: skerry.dev/v1alpha1\nkind: MachineConfig\nhostname: edge-2\n";

#[test]
fn apply_config_with_problems_prints_each_problem_and_exits_refused() {
    let machine = Machine::start();
    let bad = machine.file(
        "bad.yaml",
        &format!("{GOOD_CONFIG}---\napiVersion: skerry.dev/v1alpha1\nkind: NetworkConfig\nlinks:\n- name: eth0\n  {BAD_MARKER}\n"),
    );
    let out = machine.run(&["apply-config", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(REFUSED), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("problem: NetworkConfig links[0].mtu (line 9): MTU 100 is below 576"),
        "{err}"
    );
    assert!(
        err.contains(
            "problem: MachineConfig hostname (line 3): `bad_name` is not a valid host name"
        ),
        "{err}"
    );
    assert!(
        err.contains(
            "ApplyConfiguration refused: INVALID_ARGUMENT: the configuration has 2 problem(s)\n"
        ),
        "{err}"
    );
    assert_eq!(err.matches("MTU 100 is below 576").count(), 1, "{err}");

    // For scripts: the problems as one JSON document on stdout, the same exit code.
    let out = machine.run(&["apply-config", bad.to_str().unwrap(), "--output", "json"]);
    assert_eq!(out.status.code(), Some(REFUSED));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(doc["problems"].as_array().unwrap().len(), 2);
    assert_eq!(doc["problems"][0]["path"], "links[0].mtu");
    assert_eq!(doc["problems"][0]["line"], 9);
    assert_eq!(doc["problems"][1]["document"], "MachineConfig");

    // A dry run answers the problems in the response: printed the same, the same code.
    let out = machine.run(&["apply-config", bad.to_str().unwrap(), "--dry-run"]);
    assert_eq!(out.status.code(), Some(REFUSED));
    let err = stderr(&out);
    assert!(
        err.contains("problem: NetworkConfig links[0].mtu (line 9): MTU 100 is below 576")
            && err.contains("the dry run found 2 problem(s)"),
        "{err}"
    );
}

#[test]
fn dry_run_prints_the_diff_and_modes_reach_the_machine() {
    let machine = Machine::start();
    let good = machine.file("good.yaml", GOOD_CONFIG);
    let text = ok(&machine.run(&["apply-config", good.to_str().unwrap(), "--dry-run"]));
    assert!(text.starts_with(DIFF), "{text}");
    assert!(
        text.contains("dry run: the config is valid; nothing changed"),
        "{text}"
    );

    let text = ok(&machine.run(&[
        "apply-config",
        good.to_str().unwrap(),
        "--mode",
        "try",
        "--try-timeout",
        "5m",
    ]));
    assert!(
        text.contains("applied as generation 7 (mode try)"),
        "{text}"
    );
    ok(&machine.run(&["confirm-config", "7"]));

    let requests = machine.requests();
    let applies: Vec<_> = requests
        .iter()
        .filter(|r| r.starts_with("ApplyConfiguration"))
        .collect();
    assert!(
        applies[0].contains("mode=1 dry_run=true try_timeout=None"),
        "{}",
        applies[0]
    );
    assert!(applies[0].contains("hostname: edge-2"), "{}", applies[0]);
    assert!(
        applies[1].contains("mode=4 dry_run=false try_timeout=Some(300)"),
        "{}",
        applies[1]
    );
    assert!(requests.contains(&"ConfirmConfiguration generation=7".to_owned()));

    // A try timeout without try mode is a usage error, and nothing is sent.
    let out = machine.run(&[
        "apply-config",
        good.to_str().unwrap(),
        "--mode",
        "staged",
        "--try-timeout",
        "5m",
    ]);
    assert_eq!(out.status.code(), Some(USAGE));
    assert!(stderr(&out).contains("--try-timeout is only for --mode try"));
    assert_eq!(machine.requests().len(), requests.len());
}

#[test]
fn patch_applies_to_the_base_file_and_sends_the_result() {
    let machine = Machine::start();
    let base = machine.file(
        "base.yaml",
        "apiVersion: skerry.dev/v1alpha1\nkind: MachineConfig\nhostname: edge-1\n",
    );
    let patch = machine.file(
        "patch.yaml",
        "apiVersion: skerry.dev/v1alpha1\nkind: MachineConfig\nhostname: edge-9\n",
    );
    let local = ok(&machine.run(&[
        "patch",
        patch.to_str().unwrap(),
        "--base",
        base.to_str().unwrap(),
        "--local",
    ]));
    assert!(local.contains("hostname: edge-9"), "{local}");
    assert!(machine.requests().is_empty(), "--local sent something");

    let json6902 = r#"[{"op":"replace","path":"/MachineConfig/hostname","value":"edge-7"}]"#;
    ok(&machine.run(&[
        "patch",
        "--patch",
        json6902,
        "--type",
        "json6902",
        "--base",
        base.to_str().unwrap(),
        "--dry-run",
    ]));
    let requests = machine.requests();
    assert_eq!(requests.len(), 1);
    assert!(requests[0].contains("dry_run=true"), "{}", requests[0]);
    assert!(requests[0].contains("hostname: edge-7"), "{}", requests[0]);

    let out = machine.run(&[
        "patch",
        "--patch",
        r#"[{"op":"remove","path":"/NoSuchKind"}]"#,
        "--type",
        "json6902",
        "--base",
        base.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("patching"), "{}", stderr(&out));
    assert_eq!(machine.requests().len(), 1);
}

#[test]
fn upgrade_prints_each_phase_as_json_lines_and_lines_without_a_terminal() {
    let machine = Machine::start();
    let out = ok(&machine.run(&[
        "upgrade",
        "--version",
        "2026.12.2",
        "--force",
        "--output",
        "json",
    ]));
    let items = json_lines(&out);
    let phases: Vec<&str> = items.iter().map(|i| i["phase"].as_str().unwrap()).collect();
    assert_eq!(
        phases,
        [
            "refreshing-metadata",
            "downloading",
            "downloading",
            "downloading",
            "writing",
            "verifying",
            "trial-ready"
        ]
    );
    assert_eq!(items[2]["done_bytes"], 500);
    assert_eq!(items[2]["total_bytes"], 1000);
    assert!(machine
        .requests()
        .contains(&"Upgrade version=2026.12.2 force=true".to_owned()));

    // stdout is a pipe here: a line per phase, no bar (no carriage returns or escapes).
    let text = ok(&machine.run(&["upgrade"]));
    assert!(!text.contains('\r') && !text.contains('\x1b'), "{text:?}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "refreshing-metadata 2026.12.2 into slot B");
    assert_eq!(lines[1], "downloading 2026.12.2 into slot B");
    assert_eq!(lines[2], "writing 2026.12.2 into slot B");
    assert!(
        text.contains("the trial of 2026.12.2 in slot B is ready"),
        "{text}"
    );

    // A refusal in the middle of the stream ends the command with the machine's words.
    let out = machine.run(&["upgrade", "--version", "in-probation", "--output", "json"]);
    assert_eq!(out.status.code(), Some(REFUSED));
    assert_eq!(json_lines(&stdout(&out)).len(), 1);
    assert!(
        stderr(&out)
            .contains("Upgrade refused: FAILED_PRECONDITION: the booted slot is in probation"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn upgrade_on_a_terminal_draws_a_bar_instead_of_phase_lines() {
    let machine = Machine::start();
    // util-linux's `script` runs the command on a pseudo-terminal.
    let command = format!(
        "{} upgrade --config {}",
        env!("CARGO_BIN_EXE_skerryctl"),
        machine.config().display()
    );
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .unwrap_or_else(|e| panic!("running `script` (install bsdutils / util-linux): {e}"));
    let text = ok(&out);
    assert!(
        text.contains("the trial of 2026.12.2 in slot B is ready"),
        "{text:?}"
    );
    assert!(!text.contains("writing 2026.12.2 into slot B"), "{text:?}");
    assert!(text.contains('\x1b'), "no terminal drawing: {text:?}");
}

#[test]
fn get_lists_gets_and_watches_in_json_and_yaml() {
    let machine = Machine::start();
    let list: serde_json::Value = serde_json::from_str(&ok(&machine.run(&[
        "get",
        "config/ActiveMachine",
        "--output",
        "json",
    ])))
    .unwrap();
    let resources = list["resources"].as_array().unwrap();
    assert_eq!(resources.len(), 2);
    assert_eq!(resources[0]["id"], "active");
    assert_eq!(resources[0]["spec"]["hostname"], "active-host");
    assert_eq!(resources[0]["spec"]["labels"]["site"], "dock");
    assert_eq!(resources[0]["updated"], "2026-09-21T14:13:20Z");

    let one = ok(&machine.run(&[
        "get",
        "ActiveMachine",
        "active",
        "--namespace",
        "config",
        "--output",
        "yaml",
    ]));
    assert!(one.contains("id: active\n"), "{one}");
    assert!(
        one.contains("spec:\n  hostname: active-host\n  labels:\n    site: dock\n"),
        "{one}"
    );

    let table = ok(&machine.run(&["get", "config/ActiveMachine"]));
    let mut rows = table.lines();
    assert!(
        rows.next().unwrap().starts_with("NAMESPACE  TYPE"),
        "{table}"
    );
    assert!(
        rows.next()
            .unwrap()
            .starts_with("config     ActiveMachine  active"),
        "{table}"
    );

    let watched = json_lines(&ok(&machine.run(&[
        "get",
        "config/ActiveMachine",
        "--watch",
        "--output",
        "json",
    ])));
    let kinds: Vec<&str> = watched
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["created", "bootstrapped", "updated"]);
    assert_eq!(watched[2]["resource"]["version"], 4);

    let yaml_watch =
        ok(&machine.run(&["get", "config/ActiveMachine", "--watch", "--output", "yaml"]));
    assert_eq!(yaml_watch.matches("---\n").count(), 3, "{yaml_watch}");
    assert!(yaml_watch.contains("event: updated\n"), "{yaml_watch}");

    let missing = machine.run(&["get", "config/ActiveMachine", "other"]);
    assert_eq!(missing.status.code(), Some(REFUSED));
    assert!(
        stderr(&missing)
            .contains("ResourceGet refused: NOT_FOUND: no config/ActiveMachine with id other"),
        "{}",
        stderr(&missing)
    );

    let requests = machine.requests();
    assert!(requests.contains(&"ResourceList config/ActiveMachine".to_owned()));
    assert!(requests.contains(&"ResourceGet config/ActiveMachine/active".to_owned()));
    assert!(requests.contains(&"ResourceWatch config/ActiveMachine id= bootstrap=true".to_owned()));
}

#[test]
fn events_after_passes_the_id_and_prints_one_object_per_line() {
    let machine = Machine::start();
    let events = json_lines(&ok(
        &machine.run(&["events", "--after", "41", "--watch", "--output", "json"])
    ));
    let ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["42", "43"]);
    assert_eq!(events[0]["attributes"]["service"], "web");
    assert!(machine
        .requests()
        .contains(&"Events after=41 watch=true".to_owned()));
    let text = ok(&machine.run(&["events"]));
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(text.lines().next().unwrap().starts_with("40  "), "{text}");
}

#[test]
fn logs_follow_prints_lines_as_they_come() {
    let machine = Machine::start();
    let mut child = machine
        .command(&["logs", "web", "-f", "--tail", "20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel();
    let reader = BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in reader.lines() {
            if lines_tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    // The two buffered lines arrive while the machine still holds the stream open.
    let guard = Duration::from_secs(60);
    assert_eq!(lines.recv_timeout(guard).unwrap(), "listening on :8080");
    assert_eq!(lines.recv_timeout(guard).unwrap(), "GET / 200");
    assert!(
        child.try_wait().unwrap().is_none(),
        "skerryctl exited early"
    );
    machine.fake.more_logs.notify_one();
    assert_eq!(lines.recv_timeout(guard).unwrap(), "GET /later 200");
    assert!(child.wait().unwrap().success());
    assert!(machine
        .requests()
        .contains(&"Logs service=web follow=true tail=20".to_owned()));
}

#[test]
fn a_reader_refused_by_the_machine_sees_permission_denied() {
    let machine = Machine::start();
    // Readers may read...
    let version = ok(&machine.run(&["version", "--context", "edge-reader"]));
    assert!(version.contains("daemon:   skerryd 9.9.9"), "{version}");
    // ...but not reboot: the machine's role gate refuses before the method runs.
    let out = machine.run(&["reboot", "--context", "edge-reader"]);
    assert_eq!(out.status.code(), Some(NOT_PERMITTED), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("Reboot refused: PERMISSION_DENIED: ")
            && err.contains("requires the role os:operator")
            && err.contains("os:reader"),
        "{err}"
    );
    assert!(
        err.contains("hint: use a context whose certificate has the role"),
        "{err}"
    );
    assert_eq!(machine.requests(), ["Version"]);
    // The operator may.
    ok(&machine.run(&["reboot", "--context", "edge-operator"]));
    assert_eq!(machine.requests(), ["Version", "Reboot"]);
}

#[test]
fn a_bad_client_config_and_an_unreachable_machine_are_clear() {
    let machine = Machine::start();
    let out = Command::new(env!("CARGO_BIN_EXE_skerryctl"))
        .args(["version", "--config", "/nonexistent/skerryconfig.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(USAGE));
    let err = stderr(&out);
    assert!(
        err.contains("cannot read the client config /nonexistent/skerryconfig.json")
            && err.contains("gen secrets"),
        "{err}"
    );

    // The environment variable names the file when --config is absent.
    let out = Command::new(env!("CARGO_BIN_EXE_skerryctl"))
        .args(["version"])
        .env("SKERRYCONFIG", machine.config())
        .output()
        .unwrap();
    assert!(ok(&out).contains("9.9.9"));

    let out = machine.run(&["version", "--context", "nosuch"]);
    assert_eq!(out.status.code(), Some(USAGE));
    assert!(
        stderr(&out)
            .contains("no context \"nosuch\" (it has: edge-admin, edge-operator, edge-reader)"),
        "{}",
        stderr(&out)
    );

    // Nothing listens on a port we bound and closed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let endpoint = format!("https://127.0.0.1:{port}");
    let out = machine.run(&["health", "--endpoint", &endpoint]);
    assert_eq!(out.status.code(), Some(UNREACHABLE), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("could not reach the machine API (context edge-admin)")
            && err.contains(&endpoint)
            && err.contains("onnection refused"),
        "{err}"
    );
    assert_ne!(machine.port, port);

    // Certificates from another machine's CA: the TLS handshake fails, which is a
    // connection failure, not a refusal.
    let other = machine.dir.parent().unwrap().join("other");
    ok(&Command::new(env!("CARGO_BIN_EXE_skerryctl"))
        .args(["gen", "secrets", "--out"])
        .arg(&other)
        .arg("--endpoint")
        .arg(format!("https://127.0.0.1:{}", machine.port))
        .output()
        .unwrap());
    let out = Command::new(env!("CARGO_BIN_EXE_skerryctl"))
        .arg("version")
        .arg("--config")
        .arg(other.join("skerryconfig.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(UNREACHABLE), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("could not reach the machine API (context skerry-admin)")
            && err.contains("certificate")
            && err.contains("hint: the TLS handshake failed"),
        "{err}"
    );
    assert!(machine.requests().iter().all(|r| r == "Version"));
}

#[test]
fn services_health_version_dependencies_and_power_commands() {
    let machine = Machine::start();
    let list = ok(&machine.run(&["services"]));
    assert!(list.starts_with("ID   STATE    HEALTH"), "{list}");
    assert!(list.contains("db   backoff"), "{list}");
    let restarted = ok(&machine.run(&["services", "restart", "web"]));
    assert_eq!(restarted, "restarted web: now starting\n");
    let out = machine.run(&["services", "start", "nope"]);
    assert_eq!(out.status.code(), Some(REFUSED));
    assert!(stderr(&out).contains("ServiceStart refused: NOT_FOUND: no service `nope`"));
    ok(&machine.run(&["services", "stop", "web", "--output", "json"]));

    let health: serde_json::Value =
        serde_json::from_str(&ok(&machine.run(&["health", "--output", "json"]))).unwrap();
    assert_eq!(health["overall"], "unhealthy");
    assert_eq!(health["checks"][0]["consecutive_failures"], 3);

    let version: serde_json::Value =
        serde_json::from_str(&ok(&machine.run(&["version", "--output", "json"]))).unwrap();
    assert_eq!(version["board"], "rpi4");
    assert_eq!(version["client_version"], env!("CARGO_PKG_VERSION"));

    let dot = ok(&machine.run(&["dependencies", "--output", "dot"]));
    assert!(dot.starts_with("digraph controllers {"), "{dot}");
    assert!(
        dot.contains("\"config/ActiveNetwork\" -> \"network\""),
        "{dot}"
    );
    let out = machine.run(&["services", "--output", "dot"]);
    assert_eq!(out.status.code(), Some(USAGE));

    let yaml = ok(&machine.run(&["dependencies", "--output", "yaml"]));
    assert!(
        yaml.starts_with("controllers:\n- dependencies:\n  - kind: weak-input\n"),
        "{yaml}"
    );
    assert!(yaml.contains("\n  name: network\n"), "{yaml}");

    let rolled = ok(&machine.run(&["rollback", "--reason", "camera crashes"]));
    assert_eq!(rolled, "rolling back: the machine reboots into slot A\n");
    ok(&machine.run(&["shutdown"]));

    let requests = machine.requests();
    for expected in [
        "ServiceList",
        "ServiceRestart id=web",
        "ServiceStart id=nope",
        "ServiceStop id=web",
        "Health",
        "Version",
        "Dependencies",
        "Rollback reason=camera crashes",
        "Shutdown",
    ] {
        assert!(
            requests.contains(&expected.to_owned()),
            "{expected}: {requests:?}"
        );
    }
}

#[test]
fn completions_name_the_machine_commands() {
    let out = Command::new(env!("CARGO_BIN_EXE_skerryctl"))
        .args(["completions", "bash"])
        .output()
        .unwrap();
    let script = ok(&out);
    for command in [
        "apply-config",
        "confirm-config",
        "patch",
        "upgrade",
        "rollback",
        "dependencies",
        "events",
        "logs",
    ] {
        assert!(
            script.contains(command),
            "{command} missing from completions"
        );
    }
    let help = Command::new(env!("CARGO_BIN_EXE_skerryctl"))
        .arg("--help")
        .output()
        .unwrap();
    let help = ok(&help);
    assert!(
        help.contains("Exit codes:") && help.contains("PERMISSION_DENIED"),
        "{help}"
    );
}

#[test]
fn gen_config_writes_a_config_that_decodes_and_validates_and_never_replaces_it() {
    let tmp = tempfile::tempdir().unwrap();
    let secrets = tmp.path().join("secrets");
    let out = tmp.path().join("edge-1.yaml");
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_skerryctl"))
            .args(["gen", "config", "--secrets"])
            .arg(&secrets)
            .arg("--out")
            .arg(&out)
            .args(extra)
            .output()
            .unwrap()
    };
    let first = run(&["--hostname", "edge-1"]);
    assert_eq!(first.status.code(), Some(USAGE));
    assert!(
        stderr(&first).contains("run `skerryctl gen secrets --out"),
        "{}",
        stderr(&first)
    );
    assert!(!out.exists());

    let gen = Command::new(env!("CARGO_BIN_EXE_skerryctl"))
        .args(["gen", "secrets", "--out"])
        .arg(&secrets)
        .output()
        .unwrap();
    ok(&gen);
    let full = [
        "--hostname",
        "edge-1",
        "--address",
        "10.0.0.5/24",
        "--gateway",
        "10.0.0.1",
        "--dns",
        "10.0.0.1",
        "--repository",
        "https://updates.example.com/repo",
        "--board",
        "rpi4",
        "--watchdog",
        "/dev/watchdog0",
        "--output",
        "json",
    ];
    let report: serde_json::Value = serde_json::from_str(&ok(&run(&full))).unwrap();
    assert_eq!(
        report["kinds"],
        serde_json::json!([
            "MachineConfig",
            "NetworkConfig",
            "TimeConfig",
            "WatchdogConfig",
            "UpdateConfig"
        ])
    );
    let text = std::fs::read_to_string(&out).unwrap();
    let config = skerry_config::decode(&text).unwrap();
    skerry_config::validate(&config, None).unwrap();
    assert_eq!(config.machine.unwrap().hostname, "edge-1");
    assert_eq!(config.update.unwrap().board, "rpi4");
    let network = config.network.unwrap();
    assert!(!network.links[0].dhcp);
    assert_eq!(network.routes[0].gateway.to_string(), "10.0.0.1");

    let again = run(&["--hostname", "edge-2"]);
    assert_eq!(again.status.code(), Some(USAGE));
    assert!(
        stderr(&again).contains("never replaces"),
        "{}",
        stderr(&again)
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), text);

    let bad = run(&["--hostname", "not_a_host"]);
    assert_eq!(bad.status.code(), Some(USAGE));
    assert!(stderr(&bad).contains("hostname"), "{}", stderr(&bad));
}
