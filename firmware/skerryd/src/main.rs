//! `skerryd`: wiring only. As PID 1 it is init ([`skerryd::init`]); otherwise parse the
//! arguments, start the daemon, wait for it to stop, exit with its status.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    if skerryd::init::is_pid1() {
        skerryd::init::run();
    }
    let options = skerryd::daemon::Options::parse();
    skerryd::logging::init(options.log_format, options.device);
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
    match runtime.block_on(skerryd::daemon::run(options)) {
        Ok(stopped) => {
            tracing::info!(reason = %stopped, "skerryd stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            let mut message = format!("skerryd: {e}");
            let mut source = std::error::Error::source(&*e);
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            tracing::error!("{message}");
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}
