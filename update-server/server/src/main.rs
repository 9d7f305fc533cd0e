//! `skerry-server --data DIR [--listen ADDR]`: wiring only.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use skerry_server::{serve, ServerConfig};

/// The Skerry update server.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The data directory (created with its database and repository if missing).
    #[arg(long)]
    data: PathBuf,
    /// Where to listen (HTTP/1.1 and HTTP/2, gRPC on the same port).
    #[arg(long, default_value = "127.0.0.1:8470")]
    listen: String,
    /// How often devices are told to check in.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    poll_interval: std::time::Duration,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let listener = match tokio::net::TcpListener::bind(&args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("skerry-server: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let addr = listener
        .local_addr()
        .map_or(args.listen.clone(), |a| a.to_string());
    eprintln!("skerry-server: serving {} on http://{addr} (repository at /repository/, gRPC skerry.fleet.v1)", args.data.display());
    let mut config = ServerConfig::new(args.data);
    config.poll_interval = args.poll_interval;
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match serve(listener, config, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("skerry-server: {}", skerry_server::timestamp::chain(&e));
            ExitCode::FAILURE
        }
    }
}
