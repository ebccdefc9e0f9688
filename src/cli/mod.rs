//! The command line: every command and option (clap derive), and the code that runs the
//! commands that do not need the daemon. The CLI is the edge of the program: errors are
//! reported with `anyhow` context here and nowhere below.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::{read_config, Config, SecretOverrides, DEFAULT_CONFIG_PATH};
use crate::net::node_key::NodeKey;

/// Garage: a geo-distributed, self-hosted S3 object store.
#[derive(Debug, Parser)]
#[command(name = "garage", version, about, long_about = None)]
pub struct Cli {
    /// Path to the configuration file
    #[arg(
        short = 'c',
        long = "config",
        env = "GARAGE_CONFIG_FILE",
        default_value = DEFAULT_CONFIG_PATH,
        global = true
    )]
    pub config_file: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the Garage daemon (storage node, S3 API, web endpoint)
    Server,
    /// Information about this node
    #[command(subcommand)]
    Node(NodeCommand),
}

/// `garage node …`
#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Print this node's identifier, as `<node id>@<rpc_public_addr>` when a public address is
    /// configured (the form other nodes use in `bootstrap_peers` and `garage node connect`)
    Id {
        /// Print only the identifier, without hints
        #[arg(short, long)]
        quiet: bool,
    },
}

/// Loads the configuration named on the command line (secrets from the environment win).
pub fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    Ok(read_config(&cli.config_file, &SecretOverrides::from_env())?)
}

/// `garage node id`: reads the node key from `metadata_dir`.
pub fn node_id(config: &Config, quiet: bool) -> anyhow::Result<()> {
    let id =
        NodeKey::read_public(&config.metadata_dir).context("cannot read this node's identity")?;
    match &config.rpc_public_addr {
        Some(addr) => println!("{}@{}", id, addr),
        None => {
            println!("{}", id);
            if !quiet {
                eprintln!(
                    "Hint: no rpc_public_addr is configured; other nodes reach this one with `{}@<this node's address>:{}`.",
                    id,
                    config.rpc_bind_addr.port()
                );
            }
        }
    }
    Ok(())
}
