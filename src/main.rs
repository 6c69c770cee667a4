use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = grpcdoc::cli::grpcurl_spellings(std::env::args_os());
    match grpcdoc::cli::Cli::try_parse_from(args) {
        Ok(cli) => grpcdoc::commands::main(cli),
        Err(e) => {
            // clap quotes the bad value: a secret given with -H must not
            // reach the terminal or a CI log.
            let text = grpcdoc::redact::text(&e.render().to_string());
            if e.use_stderr() {
                eprint!("{text}");
            } else {
                print!("{text}");
            }
            std::process::ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
        }
    }
}
