//! `opti`: the Opti-Quality command line. Each subcommand lives in its own module; a
//! subcommand is added here only once it works end to end.

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
    /// Print the classes of the default production line and the default configuration.
    Info,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Info => {
            let config = opti_core::Config::default();
            println!(
                "classes: {}",
                opti_core::ClassNames::default_line().0.join(", ")
            );
            println!("{}", serde_json::to_string_pretty(&config)?);
        }
    }
    Ok(())
}
