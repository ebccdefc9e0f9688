//! Entry point of the `garage` binary: parses the command line, sets up logging, and runs the
//! daemon or an admin command. Any error ends the program with exit code 1 and one line that
//! says what is wrong.

fn main() {
    let cli = garage::cli::parse();
    // The daemon logs its work; a CLI command only reports problems.
    let is_server = matches!(cli.command, garage::cli::Command::Server { .. });
    init_logging(if is_server {
        "garage=info"
    } else {
        "garage=warn"
    });
    if let Err(e) = garage::cli::run(cli) {
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

fn init_logging(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}
