//! berthd: parses flags, sets up logging, and runs the daemon (`run.rs`) until SIGTERM or
//! SIGINT; SIGHUP reloads the configuration file. All behaviour lives in the library crates.

mod locks;
mod observability;
mod run;

use std::process::ExitCode;

use anyhow::Context;
use berth_config::{DaemonConfig, Flags};
use clap::Parser;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(berth_daemon::UNTAR_HELPER) {
        // berthd re-executed to unpack a tar inside a container's root (`docker cp`).
        let code = berth_daemon::untar_helper_main(&args[2..]);
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let flags = Flags::parse();
    if flags.validate {
        return validate(&flags);
    }
    let config = match DaemonConfig::load(&flags) {
        Ok(c) => c,
        Err(e) => return fail(&anyhow::Error::new(e)),
    };
    let log = observability::init(config.effective_log_level());
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .and_then(|rt| {
            let r = rt.block_on(run::run(flags, config, log));
            // Output copiers of containers that live on (live-restore) block in reads on
            // their FIFOs; they are not waited for.
            rt.shutdown_timeout(std::time::Duration::from_millis(200));
            r
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            fail(&e)
        }
    }
}

/// `--validate`: the configuration (flags, file, runtimes) is checked as at start-up, with
/// wrapper scripts written to a throw-away folder, and nothing else happens.
#[allow(clippy::print_stdout)]
fn validate(flags: &Flags) -> ExitCode {
    let check = || -> anyhow::Result<()> {
        let config = DaemonConfig::load(flags)?;
        let scratch = tempfile::tempdir().context("cannot make a scratch folder")?;
        let ctx = berth_runtimes::DeriveContext::new(scratch.path(), config.paths().runc_root());
        berth_runtimes::Runtimes::derive(&config, &ctx)?;
        Ok(())
    };
    match check() {
        Ok(()) => {
            println!("configuration OK");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

#[allow(clippy::print_stderr)]
fn fail(e: &anyhow::Error) -> ExitCode {
    eprintln!("berthd: {e:#}");
    ExitCode::FAILURE
}
