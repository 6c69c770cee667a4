use clap::Parser;

fn main() -> std::process::ExitCode {
    grpcdoc::commands::main(grpcdoc::cli::Cli::parse())
}
