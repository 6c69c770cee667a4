//! `grpcdoc call TARGET METHOD|list|describe`: checks the flags, makes the
//! call (`crate::call`), prints the responses on stdout as they come (or
//! one JSON record), the steps with -v and what explains a failure on
//! stderr; the exit code follows the status.

use std::io::Write;

use anyhow::Context as _;
use tokio::signal::unix::{signal, SignalKind};

use crate::call::{self, Action, Plan};
use crate::cli::{CallArgs, ColorChoice, ReportOutput};
use crate::exit::Exit;
use crate::report::style::Style;
use crate::rpc::MethodPath;

fn action(args: &CallArgs) -> anyhow::Result<Action> {
    let symbol = args.symbol.clone();
    let method = match args.what.as_str() {
        "list" => return Ok(Action::List(symbol)),
        "describe" => return Ok(Action::Describe(symbol)),
        m => MethodPath::parse(m).map_err(|e| anyhow::anyhow!("{e}, or list, or describe"))?,
    };
    if let Some(s) = symbol {
        anyhow::bail!("unexpected `{s}` after the method {method}: give the request with -d");
    }
    let data = match args.data.as_deref() {
        None => ("-d".to_string(), String::new()),
        // grpcurl's `-d @` arrives as `@-`; `-` is stdin too.
        Some("-") => crate::rpc::payload::read_data("@-")?,
        Some(d) => crate::rpc::payload::read_data(d)?,
    };
    Ok(Action::Call { method, data })
}

fn plan(args: &CallArgs) -> anyhow::Result<Plan> {
    super::lower::check_plaintext(&args.tls, &args.target)?;
    let tls = if args.target.tls {
        let opts = super::lower::tls_options(&args.tls);
        Some(crate::client::tls::client_config(
            &opts,
            args.target.server_name(),
        )?)
    } else {
        None
    };
    let metadata = super::lower::metadata(&args.metadata, args.deadline);
    let source = args.descriptors.source();
    Ok(Plan {
        target: args.target.clone(),
        action: action(args)?,
        tls,
        metadata,
        deadline: args.deadline,
        source,
        connect_timeout: args.connect_timeout,
    })
}

/// Prints a response as grpcurl does: pretty JSON, one after another.
fn print_response(v: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    // A closed stdout (`| head`) is not an error of the call.
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

pub async fn run(args: CallArgs, color: ColorChoice) -> anyhow::Result<Exit> {
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let plan = plan(&args)?;
    let json = args.output == ReportOutput::Json;
    let mut responses = Vec::new();
    let mut each = |v: serde_json::Value| {
        if json {
            responses.push(v);
        } else {
            print_response(&v);
        }
    };
    // The first signal ends the call and shows what was seen; a second
    // exits at once.
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        super::signalled(&mut term).await;
        let _ = stop_tx.send(true);
        std::future::pending::<()>().await;
    });
    let mut record = call::run(plan, stop, &mut each)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    record.responses = responses;
    let err_style = Style::for_stderr(color.forced());
    if let Some(e) = record.input_error.take() {
        // The steps until the mistake showed, then the mistake (exit 2).
        if args.verbose && !json {
            eprint!("{}", call::render::steps(&record, &err_style));
        }
        anyhow::bail!(e);
    }
    if json {
        let v = call::render::json(&record);
        let text = serde_json::to_string_pretty(&v).context("cannot render the record")?;
        let _ = writeln!(std::io::stdout().lock(), "{text}");
    } else {
        if args.verbose {
            eprint!("{}", call::render::steps(&record, &err_style));
        }
        print!("{}", record.text);
        eprint!(
            "{}",
            call::render::outcome(&record, &err_style, args.verbose)
        );
    }
    Ok(if record.interrupted {
        Exit::Interrupted
    } else if record.ok() {
        Exit::Success
    } else {
        Exit::CheckFailed
    })
}
