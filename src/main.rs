use clap::Parser;

fn main() -> std::process::ExitCode {
    let args: Vec<_> = grpcdoc::cli::grpcurl_spellings(std::env::args_os());
    match grpcdoc::cli::Cli::try_parse_from(args.clone()) {
        Ok(cli) => grpcdoc::commands::main(cli),
        Err(e) if negative(&e, &args).is_some() => {
            let (flag, value) = negative(&e, &args).unwrap_or_default();
            eprintln!(
                "error: invalid value '{value}' for '{flag}': it must be positive (a negative number or duration makes no sense here)\n\nFor more information, try '--help'."
            );
            std::process::ExitCode::from(2)
        }
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

/// A negative number or duration given to a flag, which clap reads as an
/// unknown flag: the flag and the value, to say what is wrong with it.
fn negative(e: &clap::Error, args: &[std::ffi::OsString]) -> Option<(String, String)> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    let Some(ContextValue::String(bad)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    let digits = bad.strip_prefix('-')?;
    if !digits.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return None;
    }
    // clap names `-3` of `-3s` (read as short flags): the whole word.
    let at = args
        .iter()
        .position(|a| a.to_str().is_some_and(|a| a.starts_with(bad.as_str())))?;
    let value = args.get(at)?.to_str()?;
    let flag = args.get(at.checked_sub(1)?)?.to_str()?;
    flag.starts_with('-')
        .then(|| (flag.to_string(), value.to_string()))
}
