//! `skerryd`: wiring only. As PID 1 it is init ([`skerryd::init`]); otherwise parse the
//! arguments, start the daemon, wait for it to stop, exit with its status.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    if skerryd::init::is_pid1() {
        skerryd::init::run();
    }
    let options = skerryd::daemon::Options::parse();
    // What the daemon logs is also kept for the log server (`skerry.logs=`).
    let console = skerryd_fleet::ship::console_outbox();
    skerryd::logging::init(options.log_format, options.device, Some(console.clone()));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("skerryd: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(skerryd::daemon::run(options, console)) {
        Ok(stopped) => {
            tracing::info!(reason = %stopped, "skerryd stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            // The log line went out with the rest (daemon::run); this one is for
            // whoever reads stderr without a log filter.
            eprintln!("skerryd: {}", skerryd::daemon::error_chain(&e));
            ExitCode::FAILURE
        }
    }
}
