//! `opti`: the Opti-Quality command line. Each subcommand lives in its own module; a
//! subcommand is added here only once it works end to end.

mod bench;
mod demo;
mod drift_bench;
mod drift_watch;
mod inspect;
mod replay;
mod serve;
mod simulate;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "opti",
    version,
    about = "Opti-Quality: human-in-the-loop visual inspection"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a synthetic YOLO dataset, or stream simulated camera images to a service.
    Simulate(simulate::SimulateArgs),
    /// Serve the API and web UI on embedded storage (SQLite + files) with the shipped model.
    Serve(serve::ServeArgs),
    /// Manage local users and their bearer tokens.
    #[command(subcommand)]
    Users(serve::UsersCommand),
    /// Inspect image files or folders with the model and routing policy; one row per image.
    Inspect(inspect::InspectArgs),
    /// Benchmark the detector: per-stage latency, load time, peak memory, throughput.
    Bench(bench::BenchArgs),
    /// Benchmark drift analytics on the simulated line: false-alarm rate on an unchanged
    /// line and detection delay per drift knob.
    DriftBench(drift_bench::DriftBenchArgs),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("OPTI_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,opti=info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Simulate(args) => simulate::run(args),
        Command::Serve(args) => serve::serve(args),
        Command::Users(cmd) => serve::users(cmd),
        Command::Inspect(args) => inspect::run(args),
        Command::Bench(args) => bench::run(args),
        Command::DriftBench(args) => drift_bench::run(args),
    }
}
