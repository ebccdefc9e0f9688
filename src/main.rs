//! Entry point of the `garage` binary: parses the command line, sets up logging, and runs the
//! daemon or an admin command. Any error ends the program with exit code 1 and one line that
//! says what is wrong.

use clap::Parser;

use garage::cli::{self, Cli, Command, NodeCommand};

fn main() {
    let cli = Cli::parse();
    init_logging();
    if let Err(e) = run(cli) {
        eprintln!("Error: {}", one_line(&e));
        std::process::exit(1);
    }
}

/// The error and its causes on one line, skipping a cause whose text the line already holds
/// (library errors often quote their source in their own message).
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace('\n', " ")
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("garage=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let config = cli::load_config(&cli)?;
    match cli.command {
        Command::Server => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(garage::server::run_server(config))?;
            Ok(())
        }
        Command::Node(NodeCommand::Id { quiet }) => cli::node_id(&config, quiet),
    }
}
