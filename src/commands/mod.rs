//! One module per command: each turns its arguments into a validated config,
//! wires producers to reporters and returns an [`Exit`].

mod call;
mod doctor;
mod explain;
mod load;
mod lower;
mod pcap;
mod proxy;
mod report;
mod scenario;
mod serve;
pub mod watch;

use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::exit::Exit;

/// Waits for SIGINT (Ctrl-C) or SIGTERM.
/// After it, a second Ctrl-C (or SIGTERM) exits at once with 130, for when
/// stopping what was started takes longer than the user will wait.
pub(crate) async fn signalled(term: &mut tokio::signal::unix::Signal) {
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    if let Ok(mut again) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
    {
        tokio::spawn(async move {
            again.recv().await;
            eprintln!("grpcdoc: interrupted again; exiting now");
            std::process::exit(130);
        });
    }
}

/// Event lines for `-o human|json`; human lines may explain (watch).
pub(crate) fn event_writer(
    output: crate::cli::Output,
    color: crate::cli::ColorChoice,
    explainer: Option<crate::diagnose::Explainer>,
) -> Box<dyn crate::report::EventWriter> {
    match output {
        crate::cli::Output::Human => Box::new(crate::report::HumanEvents::new(
            crate::report::style::Style::for_stdout(color.forced()),
            explainer,
        )),
        crate::cli::Output::Json => Box::new(crate::report::JsonEvents { explainer }),
    }
}

/// A command's manual page, named `grpcdoc-NAME` as its file is; the
/// version flag is grpcdoc's alone.
fn man_page(cmd: &clap::Command, name: &str) -> Option<clap::Command> {
    if matches!(name, "completions" | "man" | "help") {
        return None;
    }
    let sub = cmd.find_subcommand(name)?;
    Some(
        sub.clone()
            .name(format!("grpcdoc-{name}"))
            .disable_version_flag(true),
    )
}

fn man(page: clap::Command) -> clap_mangen::Man {
    clap_mangen::Man::new(page).source(format!("grpcdoc {}", crate::VERSION))
}

/// `grpcdoc.1` and `grpcdoc-CMD.1` for every command but completions and
/// man: the files written.
fn write_man_pages(
    cmd: &clap::Command,
    dir: &std::path::Path,
) -> std::io::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    let mut write = |file: String, page: clap::Command| -> std::io::Result<()> {
        let path = dir.join(file);
        let mut f = std::fs::File::create(&path)?;
        man(page).render(&mut f)?;
        written.push(path);
        Ok(())
    };
    write("grpcdoc.1".into(), cmd.clone())?;
    for sub in cmd.get_subcommands() {
        let name = sub.get_name();
        if matches!(name, "completions" | "man" | "help") {
            continue;
        }
        if let Some(page) = man_page(cmd, name) {
            write(format!("grpcdoc-{name}.1"), page)?;
        }
    }
    Ok(written)
}

/// Prints what the clap definitions generate: completions and the man page.
fn generated(cli: &Cli) -> Option<ExitCode> {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    let mut out = std::io::stdout();
    let written = match &cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut cmd, "grpcdoc", &mut out);
            Ok(())
        }
        Command::Man { command, out: None } => {
            let page = match command {
                None => cmd,
                Some(name) => match man_page(&cmd, name) {
                    Some(p) => p,
                    None => {
                        let names: Vec<&str> = cmd
                            .get_subcommands()
                            .map(|c| c.get_name())
                            .filter(|n| !matches!(*n, "completions" | "man" | "help"))
                            .collect();
                        eprintln!(
                            "grpcdoc man: no command `{name}`; one of: {}",
                            names.join(", ")
                        );
                        return Some(Exit::Input.into());
                    }
                },
            };
            man(page).render(&mut out)
        }
        Command::Man { out: Some(dir), .. } => {
            return Some(match write_man_pages(&cmd, dir) {
                Ok(files) => {
                    for f in files {
                        println!("{}", f.display());
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!(
                        "grpcdoc: cannot write the manual pages to {}: {e}",
                        dir.display()
                    );
                    Exit::Input.into()
                }
            });
        }
        _ => return None,
    };
    Some(match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("grpcdoc: cannot write to stdout: {e}");
            Exit::Input.into()
        }
    })
}

/// Runs the parsed command line; errors are printed as one line (with their
/// causes) on stderr and exit with 2.
pub fn main(cli: Cli) -> ExitCode {
    if let Some(code) = generated(&cli) {
        return code;
    }
    // load runs on one thread, like h2load: a call's task and its
    // connection's task then never wake each other across threads, and the
    // other core is left to the server when both share a machine.
    let mut builder = match cli.command {
        Command::Load(_) => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    let rt = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("grpcdoc: cannot start the async runtime: {e}");
            return Exit::Input.into();
        }
    };
    let result = rt.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(args, cli.color).await,
            Command::Watch(args) => watch::run(args, cli.color).await,
            Command::Call(args) => call::run(args, cli.color).await,
            Command::Load(args) => load::run(*args, cli.color).await,
            Command::Proxy(args) => proxy::run(args, cli.color).await,
            Command::Scenario(args) => scenario::run(args, cli.color).await,
            Command::Doctor(args) => doctor::run(args, cli.color).await,
            Command::Explain(args) => explain::run(args, cli.color),
            Command::Pcap(args) => pcap::run(args, cli.color),
            Command::Report(cmd) => report::run(cmd, cli.color),
            Command::Completions { .. } | Command::Man { .. } => Ok(Exit::Success),
        }
    });
    // Connection tasks still running (a forced stop) must not hold the exit.
    rt.shutdown_background();
    match result {
        Ok(exit) => exit.into(),
        Err(e) => {
            eprintln!("grpcdoc: {}", crate::redact::text(&format!("{e:#}")));
            Exit::Input.into()
        }
    }
}
