//! The command line: every command and option (clap derive), and the code that runs them. The
//! CLI is the edge of the program: errors are reported with `anyhow` context here and nowhere
//! below. Commands that need the cluster talk to a daemon through the admin RPC ([`remote`]).

pub mod bucket;
pub mod layout;
pub mod ops;
pub mod remote;
pub mod status;
pub mod table;

use std::path::PathBuf;

use anyhow::Context;
use clap::{ArgAction, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::admin::{AdminResponse, AdminRpc};
use crate::config::{read_config, Config, SecretOverrides, DEFAULT_CONFIG_PATH};
use crate::net::node_key::NodeKey;
use remote::{AdminClient, RemoteOpts};

/// Garage: a geo-distributed, self-hosted S3 object store.
#[derive(Debug, Parser)]
#[command(name = "garage", version, about, long_about = None)]
pub struct Cli {
    /// Path to the configuration file
    #[arg(
        short = 'c',
        long = "config",
        env = "GARAGE_CONFIG_FILE",
        default_value = DEFAULT_CONFIG_PATH
    )]
    pub config_file: PathBuf,

    /// Node to talk to, as <node id>@<host>:<port> (default: the local daemon)
    #[arg(short = 'h', long = "rpc-host", env = "GARAGE_RPC_HOST")]
    pub rpc_host: Option<String>,

    /// The cluster's rpc_secret (default: from the configuration file)
    #[arg(
        short = 's',
        long = "rpc-secret",
        env = "GARAGE_RPC_SECRET",
        hide_env_values = true
    )]
    pub rpc_secret: Option<String>,

    /// File holding the cluster's rpc_secret
    #[arg(long = "rpc-secret-file", env = "GARAGE_RPC_SECRET_FILE")]
    pub rpc_secret_file: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the Garage daemon (storage node, S3 API, web endpoint)
    Server {
        /// Make this node a working cluster on its own: assign a one-node layout if none exists,
        /// create (or reuse) a key and a bucket, and print how to reach them. Without a
        /// configuration file, uses an embedded one with everything under --data-dir
        #[arg(long)]
        single_node: bool,
        /// Where the embedded single-node configuration keeps everything
        #[arg(long, default_value = crate::config::SINGLE_NODE_DEFAULT_DIR)]
        data_dir: PathBuf,
    },
    /// Show the nodes of the cluster: healthy ones, then failed ones
    Status,
    /// Operations on this node (identity, connecting to other nodes)
    #[command(subcommand)]
    Node(NodeCommand),
    /// Cluster layout: node roles (zone, capacity, gateway) and the partition assignment
    #[command(subcommand)]
    Layout(layout::LayoutCommand),
    /// Buckets: create, delete, list, aliases, permissions
    #[command(subcommand)]
    Bucket(bucket::BucketCommand),
    /// S3 access keys: create, import, delete, permissions
    #[command(subcommand)]
    Key(bucket::KeyCommand),
    /// Data blocks: errors, information, retries, purge
    #[command(subcommand)]
    Block(bucket::BlockCommand),
    /// Background workers of the node
    #[command(subcommand)]
    Worker(ops::WorkerCommand),
    /// Statistics of the node's metadata tables
    Stats,
    /// Start a repair operation on the node
    Repair {
        /// Confirm the operation (required)
        #[arg(long)]
        yes: bool,
        #[command(subcommand)]
        what: ops::RepairWhat,
    },
}

#[cfg(test)]
mod tests {
    #[test]
    fn command_definition_is_consistent() {
        super::command().debug_assert();
    }

    /// `garage --help` and `garage <cmd> --help` explain every command and every option.
    #[test]
    fn every_command_and_option_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} <{}>", arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                let sub_path = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() && sub.get_long_about().is_none() {
                    missing.push(sub_path.clone());
                }
                walk(sub, &sub_path, missing);
            }
        }
        let mut missing = vec![];
        let mut cmd = super::command();
        cmd.build();
        walk(&cmd, "garage", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:?}");
    }
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
    /// Connect the daemon to another node, given as <node id>@<host>:<port>; the node stays in
    /// the mesh afterwards (the connection is remembered and re-established)
    Connect {
        /// The node to connect to: <node id>@<host>:<port>
        node: String,
    },
}

/// `-h` means `--rpc-host` (as in the original CLI): help is `--help` only, on every command.
fn without_short_help(cmd: clap::Command) -> clap::Command {
    cmd.disable_help_flag(true)
        .arg(
            clap::Arg::new("help")
                .long("help")
                .action(ArgAction::Help)
                .help("Print help"),
        )
        .mut_subcommands(without_short_help)
}

/// Parses the command line (exits with clap's message on a usage error).
pub fn parse() -> Cli {
    let matches = without_short_help(Cli::command()).get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// The help text of the whole CLI (for documentation checks).
pub fn command() -> clap::Command {
    without_short_help(Cli::command())
}

impl Cli {
    fn secret_overrides(&self) -> SecretOverrides {
        let mut o = SecretOverrides::from_env();
        if self.rpc_secret.is_some() {
            o.rpc_secret = self.rpc_secret.clone();
        }
        if self.rpc_secret_file.is_some() {
            o.rpc_secret_file = self.rpc_secret_file.clone();
        }
        o
    }

    /// Loads the configuration named on the command line. When there is no file there but a
    /// single-node server started from this directory (`./garage-data`), its embedded
    /// configuration is used, so `garage status` works next to `garage server --single-node`.
    pub fn load_config(&self) -> anyhow::Result<Config> {
        let local = std::path::Path::new(crate::config::SINGLE_NODE_DEFAULT_DIR);
        if !self.config_file.exists() && local.join("rpc_secret").exists() {
            return Ok(crate::config::single_node_config(local)?);
        }
        Ok(read_config(&self.config_file, &self.secret_overrides())?)
    }

    fn remote_opts(&self) -> anyhow::Result<RemoteOpts> {
        let mut secret = self.rpc_secret.clone();
        if secret.is_none() {
            if let Some(p) = &self.rpc_secret_file {
                secret = Some(
                    std::fs::read_to_string(p)
                        .with_context(|| format!("cannot read --rpc-secret-file {}", p.display()))?
                        .trim()
                        .to_string(),
                );
            }
        }
        Ok(RemoteOpts {
            rpc_host: self.rpc_host.clone(),
            rpc_secret: secret,
        })
    }

    /// The configuration, optional when --rpc-host and the secret are given on the command line.
    fn config_for_remote(&self, opts: &RemoteOpts) -> anyhow::Result<Option<Config>> {
        match self.load_config() {
            Ok(c) => Ok(Some(c)),
            Err(_) if opts.rpc_host.is_some() && opts.rpc_secret.is_some() => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Runs the command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Server {
            single_node,
            data_dir,
        } => {
            let config = if *single_node && !cli.config_file.exists() {
                eprintln!(
                    "No configuration file at {}: using the embedded single-node configuration (data in {}).",
                    cli.config_file.display(),
                    data_dir.display()
                );
                crate::config::single_node_config(data_dir)?
            } else {
                cli.load_config()?
            };
            runtime()?.block_on(crate::server::run_server(config, *single_node))?;
            Ok(())
        }
        Command::Node(NodeCommand::Id { quiet }) => node_id(&cli.load_config()?, *quiet),
        Command::Status => with_admin(&cli, |client| async move {
            match client.call(AdminRpc::Status).await? {
                AdminResponse::Status(s) => {
                    print!("{}", status::format_status(&s));
                    Ok(())
                }
                other => anyhow::bail!("unexpected answer: {:?}", other),
            }
        }),
        Command::Layout(cmd) => {
            let req = layout::request(cmd)?;
            with_admin(&cli, |client| async move {
                let resp = client.call(req).await?;
                layout::print(cmd, resp)
            })
        }
        Command::Bucket(cmd) => {
            let req = bucket::bucket_request(cmd)?;
            with_admin(&cli, |client| async move {
                bucket::print(client.call(req).await?)
            })
        }
        Command::Key(cmd) => {
            let req = bucket::key_request(cmd)?;
            with_admin(&cli, |client| async move {
                bucket::print(client.call(req).await?)
            })
        }
        Command::Block(cmd) => {
            let req = bucket::block_request(cmd)?;
            with_admin(&cli, |client| async move {
                bucket::print(client.call(req).await?)
            })
        }
        Command::Worker(ops::WorkerCommand::List) => with_admin(&cli, |client| async move {
            ops::print(client.call(AdminRpc::WorkerList).await?)
        }),
        Command::Stats => with_admin(&cli, |client| async move {
            ops::print(client.call(AdminRpc::Stats).await?)
        }),
        Command::Repair { yes, what } => {
            if !*yes {
                anyhow::bail!("add --yes to start the repair (e.g. `garage repair --yes tables`)");
            }
            let req = ops::repair_request(what);
            with_admin(
                &cli,
                |client| async move { ops::print(client.call(req).await?) },
            )
        }
        Command::Node(NodeCommand::Connect { node }) => {
            let node = node.clone();
            with_admin(&cli, |client| async move {
                print_done(client.call(AdminRpc::Connect { peer: node }).await?)
            })
        }
    }
}

fn print_done(resp: AdminResponse) -> anyhow::Result<()> {
    match resp {
        AdminResponse::Done(text) => {
            println!("{}", text);
            Ok(())
        }
        other => anyhow::bail!("unexpected answer: {:?}", other),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Connects to the daemon and runs `f` with the client.
fn with_admin<F, Fut>(cli: &Cli, f: F) -> anyhow::Result<()>
where
    F: FnOnce(AdminClient) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let opts = cli.remote_opts()?;
    let config = cli.config_for_remote(&opts)?;
    runtime()?.block_on(async move {
        let client = AdminClient::connect(&opts, config.as_ref()).await?;
        f(client).await
    })
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
