//! `grpcdoc doctor`: measures the connection policy of a live server and
//! the path to it - setup, a proxy in front, idle timeout or silent drop,
//! max age and grace, keepalive enforcement, max message size - within a
//! time budget and with at most four connections at once, then judges a
//! client configuration against it.
//!
//! The measurements run side by side, each on connections of its own:
//! the first connection ([`setup`], then [`size`], then the gaps of
//! [`idle::ladder`]), a quiet one ([`idle::quiet`]), a busy one ([`age`])
//! and the ones that provoke ([`enforce`]). Each returns what it saw; the
//! findings are made from all of them (`findings`), the verdicts in [`verdict`],
//! and reporters (`report::doctor`) render the [`model::Report`].

pub mod age;
pub mod budget;
pub mod enforce;
mod findings;
pub mod fingerprint;
pub mod idle;
pub mod link;
pub mod model;
pub mod setup;
pub mod size;
pub mod verdict;

use crate::catalogue::EntryId;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;

pub use budget::Budget;
use findings::{
    age_findings, drop_finding, enforce_findings, held_call_finding, idle_after_call_finding,
    idle_finding, quiet_stream_finding, server_pings,
};
use link::{ms, Dialer};
use model::{secs, Failure, Finding, Intermediary, Outcome, Report, Setup};

/// The client configuration the verdicts judge.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ClientConfig {
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "opt_ms")]
    pub keepalive_time: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "opt_ms")]
    pub keepalive_timeout: Option<Duration>,
    pub permit_without_stream: bool,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "opt_ms")]
    pub idle_timeout: Option<Duration>,
    /// The grpc-go service config (JSON), when given.
    #[serde(skip)]
    pub service_config: Option<String>,
    /// A retry policy covers UNAVAILABLE.
    pub retries_unavailable: bool,
}

fn opt_ms<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_f64(ms(*d)),
        None => s.serialize_none(),
    }
}

pub struct DoctorConfig {
    pub target: crate::target::Target,
    pub tls: crate::client::dial::TlsDial,
    pub metadata: http::HeaderMap,
    pub budget: Duration,
    pub connect_timeout: Duration,
    pub provoke: bool,
    /// Request paths (`/pkg.Service/Method`).
    pub hold_method: Option<String>,
    pub echo_method: Option<String>,
    pub client: ClientConfig,
}

/// What a run is doing, for a progress line.
#[derive(Clone, Debug)]
pub struct Progress {
    pub part: &'static str,
    pub text: String,
}

pub type ProgressTx = mpsc::UnboundedSender<Progress>;

fn say(p: &ProgressTx, part: &'static str, text: impl Into<String>) {
    let _ = p.send(Progress {
        part,
        text: text.into(),
    });
}

/// The catalogue's cause and fix of `id`, as one explanation.
fn entry_text(id: EntryId, lead: &str) -> String {
    let e = crate::catalogue::entry(id);
    format!("{lead}{}. Fix: {}", e.cause, e.fix)
}

/// Why the first connection failed, by the evidence: a TLS handshake that
/// succeeded says the peer is a TLS server, and its ALPN whether it chose
/// HTTP/2; a refusal of the certificate because it is a CA says so.
fn failure(e: &link::DialError, addr: &str) -> Failure {
    use crate::client::dial::ConnectError;
    let cause = e.error.cause();
    let cause_name = serde_json::to_value(cause)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let make = |entry: EntryId, explanation: String| Failure {
        error: e.error.to_string(),
        cause: cause_name.clone(),
        entry: Some(entry),
        explanation: Some(explanation),
    };
    if let Some(t) = &e.tls {
        let session = format!(
            "the TLS handshake succeeded ({}{}) but no HTTP/2 SETTINGS followed",
            t.version,
            t.subject
                .as_deref()
                .map(|s| format!(", certificate {s}"))
                .unwrap_or_default()
        );
        let fix = |id| crate::catalogue::entry(id).fix;
        return match t.alpn.as_deref() {
            Some("h2") => make(
                EntryId::NotGrpcEndpoint,
                format!(
                    "{session}, although the server chose h2 in ALPN: it does not speak gRPC over HTTP/2 here. Fix: {}",
                    fix(EntryId::NotGrpcEndpoint)
                ),
            ),
            alpn => make(
                EntryId::NoAlpnH2,
                format!(
                    "{session}, and the server chose {} in ALPN, not h2: a TLS server that does not speak gRPC (an HTTPS server speaking HTTP/1.1), or a TLS terminator without HTTP/2. Fix: {}",
                    alpn.map(|a| format!("`{a}`")).unwrap_or_else(|| "no protocol".into()),
                    fix(EntryId::NoAlpnH2)
                ),
            ),
        };
    }
    if let ConnectError::Tls { source, .. } = &e.error {
        let rustls_error = source
            .get_ref()
            .and_then(|x| x.downcast_ref::<tokio_rustls::rustls::Error>());
        if rustls_error.is_some_and(crate::client::tls::is_ca_as_end_entity) {
            return make(
                EntryId::TlsCaAsServer,
                entry_text(
                    EntryId::TlsCaAsServer,
                    "the server's certificate is a CA (CA:TRUE) that is not itself among the --cacert certificates: ",
                ),
            );
        }
    }
    Failure {
        error: e.error.to_string(),
        cause: cause_name,
        entry: crate::diagnose::connect_entry(cause),
        explanation: Some(crate::diagnose::connect_detail(cause, addr)),
    }
}

/// Runs every measurement within the budget (or until `stop`).
pub async fn run(
    cfg: DoctorConfig,
    stop: tokio::sync::watch::Receiver<bool>,
    progress: ProgressTx,
) -> Report {
    let budget = Budget::new(cfg.budget, stop);
    let mut report = Report {
        target: cfg.target.text.clone(),
        budget_ms: ms(cfg.budget),
        elapsed_ms: 0.0,
        interrupted: false,
        failure: None,
        setup: Setup::default(),
        intermediary: Intermediary::default(),
        findings: Vec::new(),
        verdicts: Vec::new(),
        conflict: false,
        incomplete: false,
        client: cfg.client.clone(),
    };
    say(&progress, "setup", "resolving");
    let addrs = match cfg.target.resolve().await {
        Ok(a) if !a.is_empty() => a,
        Ok(_) | Err(_) => {
            report.failure = Some(Failure {
                error: format!("{} resolves to no address", cfg.target.text),
                cause: "name_resolution".into(),
                entry: Some(EntryId::NameResolution),
                explanation: Some(entry_text(EntryId::NameResolution, "")),
            });
            report.elapsed_ms = budget.now_ms();
            return report;
        }
    };
    let authority = cfg
        .target
        .authority
        .parse()
        .unwrap_or_else(|_| http::uri::Authority::from_static("localhost"));
    let dialer = Dialer {
        addr: addrs[0].clone(),
        tls: cfg.tls.clone(),
        authority,
        metadata: cfg.metadata.clone(),
        connect_timeout: cfg.connect_timeout.min(cfg.budget),
        start: budget.start,
        frames: false,
    };
    report.setup.address = addrs[0].to_string();
    report.setup.addresses = addrs.len();

    say(&progress, "setup", "connecting");
    let first = match budget.run(dialer.open()).await {
        Some(Ok(l)) => l,
        Some(Err(e)) => {
            report.failure = Some(failure(&e, &report.setup.address));
            report.elapsed_ms = budget.now_ms();
            return report;
        }
        // Stopped (Ctrl-C) or out of budget while connecting.
        None => {
            report.failure = Some(Failure {
                error: format!(
                    "no connection to {} within the budget",
                    report.setup.address
                ),
                cause: "timeout".into(),
                entry: None,
                explanation: None,
            });
            report.interrupted = budget.stopped();
            report.elapsed_ms = budget.now_ms();
            return report;
        }
    };
    say(&progress, "setup", "inspecting");
    let mut setup = budget
        .run(setup::inspect(&first, cfg.hold_method.as_deref(), &budget))
        .await
        .unwrap_or_default();
    setup.address = report.setup.address.clone();
    setup.addresses = report.setup.addresses;
    report.intermediary = fingerprint::assess(&setup);
    let hold = setup.held_method.clone();
    // Health Watch answers at once and then stays quiet: a stream a proxy's
    // read timeout ends.
    let stream = setup
        .health
        .as_deref()
        .filter(|h| matches!(*h, "SERVING" | "NOT_SERVING"))
        .map(|_| setup::HEALTH_WATCH.to_string());
    say(&progress, "setup", "done");

    say(&progress, "idle", "quiet");
    let quiet = {
        let (d, b, p) = (dialer.clone(), budget.clone(), progress.clone());
        tokio::spawn(async move {
            let q = idle::quiet(&d, &b).await;
            say(&p, "idle", "done");
            q
        })
    };
    say(&progress, "age", "busy");
    let age = {
        let (d, b, h, p) = (
            dialer.clone(),
            budget.clone(),
            hold.clone(),
            progress.clone(),
        );
        tokio::spawn(async move {
            let a = age::measure(&d, h, stream, &b).await;
            say(&p, "age", "done");
            a
        })
    };
    let enforce = match (&hold, cfg.provoke) {
        (Some(h), true) => {
            say(&progress, "keepalive", "probing");
            let (mut d, b, h, p) = (dialer.clone(), budget.clone(), h.clone(), progress.clone());
            // Every frame is logged: WINDOW_UPDATEs reset strikes too.
            d.frames = true;
            Some(tokio::spawn(async move {
                let e = enforce::measure(&d, &h, &b).await;
                say(&p, "keepalive", "done");
                e
            }))
        }
        _ => None,
    };
    let size = match &cfg.echo_method {
        Some(m) => {
            say(&progress, "size", "bisecting");
            Some(
                budget
                    .run(size::measure(&first, m, &budget))
                    .await
                    .unwrap_or_else(|| {
                        Finding::new(
                            "max_message_size",
                            "max request message size",
                            Outcome::OutOfBudget,
                        )
                        .result("the bisection did not finish")
                    }),
            )
        }
        None => None,
    };
    say(&progress, "gaps", "calling after quiet gaps");
    let ladder = idle::ladder(&first, &budget).await;
    say(&progress, "gaps", "done");
    drop(first);

    // Each measurement stops at the budget's end but may be waiting for
    // an answer then: it gets 2 s more.
    let grace = tokio::time::Instant::from_std(budget.deadline.max(std::time::Instant::now()))
        + Duration::from_secs(2);
    let quiet = join(quiet, grace).await.and_then(|r| r);
    let age = join(age, grace).await.and_then(|r| r);
    let enforce = match enforce {
        Some(t) => Some(join(t, grace).await),
        None => None,
    };

    let proxy = report.intermediary.proxy;
    let mut age_finding = age_findings(&age, proxy);
    let age_ms = age_finding.0.value_ms;
    let idle = idle_finding(&quiet, age_ms, proxy);
    if let (Some(a), Outcome::NotMeasured, Some(other)) = (age_ms, idle.outcome, idle.lower_ms) {
        // The quiet connection's drain was the max age too: a second sample.
        let f = &mut age_finding.0;
        f.lower_ms = Some(a.min(other));
        f.upper_ms = Some(a.max(other));
        f.result
            .push_str(&format!(" (the quiet connection: after {})", secs(other)));
    }
    report.findings.push(idle);
    report
        .findings
        .push(idle_after_call_finding(&ladder, age_ms, proxy));
    report.findings.push(drop_finding(&ladder, &quiet));
    report.findings.push(age_finding.0);
    report.findings.push(age_finding.1);
    report.findings.push(held_call_finding(&age, proxy));
    report.findings.push(quiet_stream_finding(&age, proxy));
    report
        .findings
        .extend(enforce_findings(enforce, &hold, cfg.provoke, proxy));
    report.findings.push(size.unwrap_or_else(|| {
        Finding::new(
            "max_message_size",
            "max request message size",
            Outcome::Skipped,
        )
        .result("name a method that echoes with --echo-method")
    }));
    if let Ok(q) = &quiet {
        report.findings.push(server_pings(q));
    }
    report.setup = setup;
    report.verdicts = verdict::judge(&report, &cfg.client);
    report.conflict = report.verdicts.iter().any(|v| v.conflict);
    report.incomplete = report.verdicts.iter().any(|v| v.not_measured);
    report.interrupted = budget.stopped();
    report.elapsed_ms = budget.now_ms();
    report
}

/// A measurement's result, or why there is none (it overran the budget).
async fn join<T>(
    mut task: tokio::task::JoinHandle<T>,
    until: tokio::time::Instant,
) -> Result<T, String> {
    match tokio::time::timeout_at(until, &mut task).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => {
            task.abort();
            Err("still waiting for an answer when the budget ran out".into())
        }
    }
}
