//! Command-line definitions (clap derive); the value parsers for durations,
//! counts and addresses live in `parse`. Commands turn these into validated configs;
//! nothing below `commands/` sees clap types.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use crate::parse::{count, parse_duration, parse_listen, parse_metadata, total};

/// The exit codes, as every command's help ends.
macro_rules! exit_codes {
    () => {
        "Exit codes:
  0    success
  1    a check failed (scenario expectation, load threshold)
  2    bad input or environment: flag, address, duration, file, busy port
  130  interrupted (after printing what was gathered)"
    };
}

pub const EXIT_CODES: &str = exit_codes!();

pub const TOP_HELP: &str = concat!(
    "Examples:
  grpcdoc scenario scenarios/restart.yaml      # replay a failure on loopback, for CI
  grpcdoc watch 10.0.0.5:50051                 # every state change and HTTP/2 event
  grpcdoc call 10.0.0.5:50051 pkg.Svc/Method -d '{}' -v   # one call, every step timed
  grpcdoc load 10.0.0.5:50051 --call pkg.Svc/Method -d '{}' -c 1000
  grpcdoc doctor 10.0.0.5:50051                # the server's connection policy
  grpcdoc explain 'transport is closing'       # what a client's error means

",
    exit_codes!()
);

pub const SERVE_HELP: &str = concat!(
    "Examples:
  grpcdoc serve --listen 127.0.0.1:50051
  grpcdoc serve --max-connection-idle 15s --max-connection-age 30s --max-connection-age-grace 5s
  grpcdoc serve --keepalive-min-time 10s --keepalive-permit-without-stream
  grpcdoc serve --tls-cert cert.pem --tls-key key.pem --for 1m

",
    exit_codes!()
);

pub const WATCH_HELP: &str = concat!(
    "Examples:
  grpcdoc watch 10.0.0.5:50051
  grpcdoc watch dns:///my-svc.default.svc.cluster.local:50051 --lb round_robin --for 5m
  grpcdoc watch https://api.example.com --keepalive-time 10s --probe none -o json

",
    exit_codes!()
);

pub const LOAD_HELP: &str = concat!(
    "Examples:
  grpcdoc load 10.0.0.5:50051 --call helloworld.Greeter/SayHello -d '{\"name\": \"x\"}'
  grpcdoc load 10.0.0.5:50051 --call pkg.Svc/Method -c 10000 --connections 4 -z 1m
  grpcdoc load 10.0.0.5:50051 --call pkg.Svc/Method --rps 500 --fail-on 'p99>50ms' --fail-on 'code:UNAVAILABLE>0'
  grpcdoc load -plaintext 10.0.0.5:50051 --call pkg.Svc/Method -proto svc.proto -import-path protos -d @ < req.json
  grpcdoc load 10.0.0.5:50051 --call pkg.Svc/Method --threads 4 --connections 8 --stages 10s:100,30s:1000,10s:0
  grpcdoc load 10.0.0.5:50051 --call pkg.Svc/Get -d '{\"id\": {{rand 1 5000}}}' --expect 'name != \"\"' --fail-on 'checks<100%'

",
    exit_codes!()
);

pub const CALL_HELP: &str = "Examples:
  grpcdoc call 10.0.0.5:50051 helloworld.Greeter/SayHello -d '{\"name\": \"x\"}' -v
  grpcdoc call https://api.example.com pkg.Svc/Watch -d @req.json -H 'authorization: Bearer T'
  grpcdoc call 10.0.0.5:50051 pkg.Svc/Upload -d '{\"n\": 1} {\"n\": 2}' --deadline 5s -o json
  echo '{}' | grpcdoc call 10.0.0.5:50051 pkg.Svc/Get -d - --proto svc.proto -I protos
  grpcdoc call 10.0.0.5:50051 list
  grpcdoc call 10.0.0.5:50051 describe helloworld.Greeter

Exit codes:
  0    the call ended OK (list, describe: answered)
  1    the call ended with another status, or no connection could be made
       (UNAVAILABLE); the status and what explains it are on stderr
  2    bad input: flag, target, JSON, .proto, unknown method or symbol
  130  interrupted";

pub const PROXY_HELP: &str = "Examples:
  grpcdoc proxy --listen :20000 --upstream 127.0.0.1:50051 --fault latency:latency=200ms
  grpcdoc proxy --upstream 127.0.0.1:50051 --fault drop-ping:direction=upstream,acks=true,count=1
  grpcdoc proxy --upstream 127.0.0.1:50051 --api 127.0.0.1:8474   # toxiproxy's HTTP API
  grpcdoc proxy ctl add grpcdoc timeout:timeout=1s,direction=upstream
  grpcdoc proxy --list-faults

Exit codes:
  0    success (stopped by --for)
  2    bad input or environment: flag, fault, busy port; for ctl, an error from the API
  130  interrupted (Ctrl-C or SIGTERM), after the summary";

pub const CTL_HELP: &str = "Examples:
  grpcdoc proxy ctl list
  grpcdoc proxy ctl add grpcdoc latency:latency=200ms,direction=downstream
  grpcdoc proxy ctl add grpcdoc drop-ping:acks=true,count=1 --name lost-ack
  grpcdoc proxy ctl rm grpcdoc latency_downstream
  grpcdoc proxy ctl disable grpcdoc
  grpcdoc proxy ctl --api 127.0.0.1:8474 reset -o json

Exit codes:
  0    done
  2    bad input, the API cannot be reached, or the API refused (its error is shown)";

pub const SCENARIO_HELP: &str = concat!(
    "Examples:
  grpcdoc scenario scenarios/restart.yaml
  grpcdoc scenario scenarios/*.yaml -o junit --report junit.xml
  grpcdoc scenario --check my-failure.yaml
  grpcdoc scenario --schema > scenario.schema.json

",
    exit_codes!()
);

pub const REPORT_HELP: &str = "Examples:
  grpcdoc report merge load-0.json load-1.json load-2.json
  grpcdoc report merge reports/*.json -o json > all.json

Exit codes:
  0    merged
  2    a report that cannot be read, or that does not merge with the others";

pub const DOCTOR_HELP: &str = "Examples:
  grpcdoc doctor 10.0.0.5:50051
  grpcdoc doctor 10.0.0.5:50051 --client-keepalive-time 10s --client-permit-without-stream
  grpcdoc doctor https://api.example.com --echo-method pkg.Echo/Echo --budget 5m -o json

Exit codes:
  0    measured; no conflict with the client settings given
  1    a client setting conflicts with the measured policy
  2    bad input, or the target cannot be reached
  130  interrupted (after printing what was measured)";

pub const EXPLAIN_EXIT_CODES: &str = "Examples:
  grpcdoc explain 'rpc error: code = Unavailable desc = transport is closing'
  grpcdoc explain --stack java 'UNAVAILABLE: Keepalive failed. The connection is likely gone'
  grpcdoc explain app.log
  kubectl logs deploy/api | grpcdoc explain -
  grpcdoc explain -v -o json 'upstream connect error or disconnect/reset before headers'

A message that proves one cause gets that entry; a generic one (`transport is
closing`, `Socket closed`) gets the entries it fits, ranked by the rest of the
text, and how to tell them apart.

Exit codes:
  0    a known failure matched (one cause, or several that fit)
  1    nothing matched
  2    bad input: unreadable file, empty input, unknown --stack";

pub const PCAP_HELP: &str = "Examples:
  sudo tcpdump -i any -s 0 -w x.pcap port 50051      # then Ctrl-C
  grpcdoc pcap x.pcap
  grpcdoc pcap x.pcapng -o json --calls all --frames
  sudo tcpdump -i lo -U -w - | grpcdoc pcap -
  grpcdoc pcap x.pcap --report x.html

Exit codes:
  0    the capture was read
  2    bad input: unreadable file, not a pcap or pcapng file
  130  interrupted";

pub use crate::pcap::PcapCalls;
pub use crate::VERSION;

#[derive(Debug, Parser)]
#[command(
    name = "grpcdoc",
    version = VERSION,
    about = "The gRPC connection doctor: see, reproduce and explain gRPC connection failures",
    after_help = TOP_HELP
)]
pub struct Cli {
    /// When to color human output (NO_COLOR in the environment means never).
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the built-in gRPC test server (Echo, Greeter, health, reflection)
    /// with grpc-go's connection management: idle and age GOAWAYs, keepalive,
    /// ping enforcement.
    #[command(after_help = SERVE_HELP)]
    Serve(ServeArgs),
    /// Dial a target and log every connectivity state change and HTTP/2
    /// control event (GOAWAY, PING, SETTINGS, RST_STREAM) as it happens, with
    /// what it means; a summary at the end.
    #[command(after_help = WATCH_HELP)]
    Watch(WatchArgs),
    /// Drive gRPC load at any method and report what happened to the calls
    /// and to the connections under them; thresholds for CI (--fail-on).
    #[command(after_help = LOAD_HELP)]
    Load(Box<LoadArgs>),
    /// Make one call (unary or streaming) and print the responses as JSON;
    /// with -v, every step with its time on stderr: name resolution, TCP,
    /// TLS (the certificate chain), SETTINGS, HEADERS and DATA, each
    /// message, trailers, any GOAWAY, PING or RST_STREAM; on failure, what
    /// explains it. `list` and `describe` work as grpcurl's.
    #[command(after_help = CALL_HELP)]
    Call(CallArgs),
    /// A chaos proxy: forward connections to an upstream with faults, byte
    /// level (latency, blackhole, reset, ...) and, on cleartext HTTP/2, frame
    /// level (drop a PING ack, inject a GOAWAY, ...). --list-faults lists them.
    #[command(
        after_help = PROXY_HELP,
        subcommand_negates_reqs = true,
        args_conflicts_with_subcommands = true
    )]
    Proxy(ProxyArgs),
    /// Replay a connection failure from a YAML file on loopback (server,
    /// proxy, clients with load, a timeline) and check expectations: exit 0
    /// when all hold, 1 when one fails. For CI.
    #[command(after_help = SCENARIO_HELP)]
    Scenario(ScenarioArgs),
    /// Measure the connection policy of a live server and the path to it
    /// (TLS, SETTINGS, a proxy in front, idle timeout or silent drop, max
    /// age and grace, keepalive enforcement, max message size) within a
    /// budget, and say which client settings will break: exit 1 on a
    /// conflict.
    #[command(after_help = DOCTOR_HELP)]
    Doctor(DoctorArgs),
    /// Explain an error message or a log by meaning (grpc-go, C-core,
    /// grpc-java, grpc-js, .NET, Envoy, nginx, HAProxy, load balancers): the
    /// known failures it points to, each with its cause, what to look for
    /// on the wire, the fix in your stack's settings and the scenario that
    /// reproduces it. Reads the message, a log file, or `-`; no network.
    #[command(after_help = EXPLAIN_EXIT_CODES)]
    Explain(ExplainArgs),
    /// Read a packet capture (pcap or pcapng, `-` for stdin): the HTTP/2
    /// connections in it on any port, their frames, calls and closes as
    /// `watch` events with capture times, and what they mean. TLS
    /// connections show what TCP shows. No network.
    #[command(after_help = PCAP_HELP)]
    Pcap(PcapArgs),
    /// Work with saved reports: `grpcdoc report merge A.json B.json` merges
    /// `load -o json` reports from several machines into one.
    #[command(after_help = REPORT_HELP, subcommand)]
    Report(ReportCommand),
    /// Print a shell completion script, e.g.
    /// `grpcdoc completions bash > /etc/bash_completion.d/grpcdoc`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), e.g. `grpcdoc man > grpcdoc.1`, or a
    /// command's: `grpcdoc man load > grpcdoc-load.1`; `--out DIR` writes
    /// them all.
    Man {
        /// A command's page instead of grpcdoc's (tests/readme.rs checks
        /// that every command is listed).
        #[arg(value_parser = ["serve", "watch", "load", "proxy", "scenario", "doctor", "explain", "pcap", "call", "report"])]
        command: Option<String>,
        /// Write grpcdoc.1 and a page per command (grpcdoc-load.1, ...) into
        /// this directory instead of printing one page.
        #[arg(long, value_name = "DIR", conflicts_with = "command")]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The message (`'rpc error: code = Unavailable desc = transport is
    /// closing'`), a log file, or `-` for stdin.
    #[arg(value_name = "MESSAGE|FILE|-")]
    pub input: String,

    /// Output: the explanations, or one JSON object.
    #[arg(short = 'o', long, value_enum, default_value_t = ReportOutput::Human)]
    pub output: ReportOutput,

    /// The stack whose settings to show first in fixes, when the message
    /// does not say: go, core (python, cpp, ruby, php), java, node, dotnet,
    /// nginx, haproxy, envoy (istio), caddy, cloud.
    #[arg(long, value_name = "STACK")]
    pub stack: Option<String>,

    /// Show the evidence found for each entry and every stack's fix.
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

#[derive(Debug, Args)]
pub struct PcapArgs {
    /// The capture file (pcap or pcapng, as tcpdump, tshark or Wireshark
    /// write it), or `-` for stdin.
    #[arg(value_name = "FILE|-")]
    pub file: PathBuf,

    /// Output format: per-connection timelines, or one JSON object per
    /// event per line (watch's format; `sent` is client to server).
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Human)]
    pub output: Output,

    /// Which calls to show (all are counted in the summary).
    #[arg(long, value_enum, default_value_t = PcapCalls::Failed)]
    pub calls: PcapCalls,

    /// Every frame, HEADERS and DATA too.
    #[arg(long)]
    pub frames: bool,

    /// Also write an HTML page with each connection's timeline
    /// (FILE.html).
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ScenarioOutput {
    Human,
    Json,
    /// Human on stdout, JUnit XML in --report FILE.
    Junit,
}

#[derive(Debug, Args)]
pub struct ScenarioArgs {
    /// Scenario files (YAML), run one after the other; or the name of a
    /// shipped scenario (`restart`; see --list), from any directory.
    #[arg(required_unless_present_any = ["schema", "list", "show"], value_name = "FILE|NAME")]
    pub files: Vec<PathBuf>,

    /// List the shipped scenarios with what each is about.
    #[arg(long, conflicts_with_all = ["files", "show"])]
    pub list: bool,

    /// Print a shipped scenario's YAML (`--show restart > mine.yaml` to
    /// edit one).
    #[arg(long, value_name = "NAME", conflicts_with = "files")]
    pub show: Option<String>,

    /// Print the JSON Schema of the file format (for editor completion).
    #[arg(long)]
    pub schema: bool,

    /// Only check the files; run nothing.
    #[arg(long)]
    pub check: bool,

    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = ScenarioOutput::Human)]
    pub output: ScenarioOutput,

    /// Also write the report to FILE, in the format its extension names:
    /// `.html` (a timeline of every connection, expectations PASS/FAIL;
    /// one self-contained page), `.xml` (JUnit, as -o junit), `.json`.
    #[arg(long, value_name = "FILE", required_if_eq("output", "junit"))]
    pub report: Option<PathBuf>,

    /// Print every notable event as it happens, the variants' lines
    /// interleaved (the default on a terminal is one line per thing that
    /// happened, repeats folded, a block per variant).
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// Address to listen on (`:0` picks a port); the first stdout line is
    /// `listening on ADDR`.
    #[arg(long, default_value = "127.0.0.1:0", value_parser = parse_listen, value_name = "ADDR")]
    pub listen: SocketAddr,

    /// Where connections go: HOST:PORT.
    #[arg(
        long,
        required_unless_present_any = ["list_faults", "api"],
        value_hint = clap::ValueHint::Other, value_name = "HOST:PORT"
    )]
    pub upstream: Option<String>,

    /// Serve toxiproxy's HTTP API here (e.g. 127.0.0.1:8474; loopback
    /// unless an address says otherwise), so toxiproxy client libraries
    /// create proxies and add toxics - grpcdoc's HTTP/2 faults among them.
    /// With --upstream, that proxy is in the API as `grpcdoc`.
    #[arg(long, value_parser = parse_listen, value_name = "ADDR")]
    pub api: Option<SocketAddr>,

    /// A fault, NAME:KEY=VALUE,... (repeatable), e.g.
    /// latency:latency=200ms or drop-ping:direction=upstream,acks=true,count=1
    #[arg(long = "fault", value_parser = parse_fault, value_name = "SPEC")]
    pub faults: Vec<crate::proxy::FaultSpec>,

    /// List every fault with its parameters, and exit.
    #[arg(long)]
    pub list_faults: bool,

    /// Stop after this long (default: until Ctrl-C or SIGTERM).
    #[arg(long = "for", value_parser = parse_duration, value_name = "DURATION")]
    pub run_for: Option<Duration>,

    /// Calls that pass (cleartext HTTP/2 only): one line each with the
    /// connection, method, status (or reset) and latency; `failed` shows
    /// only those that did not end OK.
    #[arg(long, value_enum, default_value_t = CallsShown::Failed)]
    pub calls: CallsShown,

    /// Also write the traffic between the clients and the proxy to this
    /// pcap file, which Wireshark and `grpcdoc pcap` read.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<std::path::PathBuf>,

    /// Output format of the proxy's events on stdout.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Human)]
    pub output: Output,

    #[command(subcommand)]
    pub command: Option<ProxyCommand>,
}

#[derive(Debug, Subcommand)]
pub enum ProxyCommand {
    /// Control a running proxy through its API (`grpcdoc proxy --api ADDR`,
    /// or toxiproxy itself): list proxies and their faults, add and remove
    /// faults in the --fault form, enable or disable a proxy, reset.
    #[command(after_help = CTL_HELP)]
    Ctl(CtlArgs),
}

#[derive(Debug, Args)]
pub struct CtlArgs {
    /// The proxy API's address, HOST:PORT (toxiproxy's port is 8474).
    #[arg(long, default_value = "127.0.0.1:8474", value_hint = clap::ValueHint::Other, value_name = "HOST:PORT")]
    pub api: String,

    /// Output: lines for people, or the API's JSON.
    #[arg(
        id = "ctl_output",
        short = 'o',
        long = "output",
        value_enum,
        default_value_t = ReportOutput::Human,
        global = true
    )]
    pub output: ReportOutput,

    #[command(subcommand)]
    pub action: CtlAction,
}

#[derive(Debug, Subcommand)]
pub enum CtlAction {
    /// List the proxies and their faults (each in the --fault form).
    List,
    /// Add a fault to a proxy: NAME:KEY=VALUE,... (grpcdoc proxy
    /// --list-faults); it is named TYPE_DIRECTION unless --name says.
    Add {
        /// The proxy (`grpcdoc` is the one of `proxy --upstream`).
        proxy: String,
        #[arg(value_parser = parse_fault, value_name = "SPEC")]
        fault: crate::proxy::FaultSpec,
        /// The fault's name in the API (to remove it by).
        #[arg(long)]
        name: Option<String>,
    },
    /// Remove a fault from a proxy, by the name `list` shows.
    Rm { proxy: String, name: String },
    /// Enable a proxy: it accepts connections again.
    Enable { proxy: String },
    /// Disable a proxy: new connections are refused, open ones closed.
    Disable { proxy: String },
    /// Remove every fault of every proxy and enable them all.
    Reset,
}

/// Which calls the proxy shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CallsShown {
    /// None: calls are not read (the proxy does not decode headers).
    None,
    Failed,
    All,
}

fn parse_fault(s: &str) -> Result<crate::proxy::FaultSpec, String> {
    s.parse().map_err(|e: crate::proxy::SpecError| e.0)
}

/// Where the method descriptors come from (`call` and `load`): .proto
/// files, a protoset, or else server reflection.
#[derive(Debug, Args)]
pub struct DescriptorArgs {
    /// Descriptors from .proto files (compiled in-process; no protoc needed)
    /// instead of server reflection. Repeatable.
    #[arg(long = "proto", value_name = "FILE")]
    pub protos: Vec<PathBuf>,

    /// Import path for --proto (repeatable).
    #[arg(short = 'I', long = "import-path", value_name = "DIR")]
    pub includes: Vec<PathBuf>,

    /// Descriptors from a protoset (a serialized FileDescriptorSet).
    #[arg(long, conflicts_with = "protos", value_name = "FILE")]
    pub protoset: Option<PathBuf>,
}

impl DescriptorArgs {
    /// The source the flags name: a protoset, .proto files, or reflection.
    pub fn source(&self) -> crate::rpc::descriptors::Source {
        use crate::rpc::descriptors::Source;
        if let Some(p) = &self.protoset {
            Source::Protoset(p.clone())
        } else if !self.protos.is_empty() {
            Source::Protos {
                files: self.protos.clone(),
                includes: self.includes.clone(),
            }
        } else {
            Source::Reflection
        }
    }
}

#[derive(Debug, Args)]
pub struct CallArgs {
    /// The server: HOST:PORT, http://HOST:PORT, https://HOST[:PORT],
    /// dns:[//AUTH/]HOST[:PORT], ipv4:..., ipv6:..., unix:PATH or
    /// unix-abstract:NAME (every address is listed, and tried in turn until
    /// one connects).
    #[arg(value_parser = parse_target, value_name = "TARGET")]
    pub target: crate::target::Target,

    /// The method (pkg.Service/Method or pkg.Service.Method), or `list`
    /// (the services; `list SERVICE`: its methods), or `describe [SYMBOL]`.
    #[arg(value_name = "METHOD|list|describe")]
    pub what: String,

    /// With `list`, a service; with `describe`, a service, method, message
    /// or enum.
    #[arg(value_name = "SYMBOL")]
    pub symbol: Option<String>,

    /// Request messages as JSON: one object, several one after another (a
    /// client or bidi stream), or an array; @FILE, or - (or @-) for stdin.
    /// Without it, one empty message.
    #[arg(short = 'd', long = "data", value_name = "JSON")]
    pub data: Option<String>,

    /// Request metadata, `key: value` (repeatable); secrets (authorization,
    /// cookies, tokens) are shown as [redacted].
    #[arg(short = 'H', long = "metadata", value_parser = parse_metadata, value_name = "KEY: VALUE")]
    pub metadata: Vec<(String, String)>,

    /// The call's deadline (sent as grpc-timeout, and kept here too).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub deadline: Option<Duration>,

    #[command(flatten)]
    pub descriptors: DescriptorArgs,

    /// Longest wait for the connection (TCP, TLS and the server's SETTINGS).
    #[arg(long, value_parser = parse_duration, default_value = "10s", value_name = "DURATION")]
    pub connect_timeout: Duration,

    /// Every step with its time on stderr.
    #[arg(short = 'v', long)]
    pub verbose: bool,

    #[command(flatten)]
    pub tls: TlsArgs,

    /// Output: the responses as JSON (steps on stderr), or one JSON record
    /// of the call, its steps and the responses.
    #[arg(short = 'o', long, value_enum, default_value_t = ReportOutput::Human)]
    pub output: ReportOutput,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// What to call: HOST:PORT, http(s)://HOST:PORT, dns:[//AUTH/]HOST[:PORT],
    /// ipv4:ADDR[:PORT], ipv6:[ADDR]:PORT, A:1,B:2, unix:PATH or
    /// unix-abstract:NAME.
    #[arg(value_parser = parse_target, value_hint = clap::ValueHint::Other, value_name = "TARGET")]
    pub target: crate::target::Target,

    /// The method: pkg.Service/Method (or pkg.Service.Method). Without it,
    /// the error lists the methods found.
    #[arg(long, value_parser = crate::rpc::MethodPath::parse, value_hint = clap::ValueHint::Other, value_name = "METHOD")]
    pub call: Option<crate::rpc::MethodPath>,

    /// Request message as JSON (inline, @FILE, or @- for stdin); an array
    /// gives one message per call in turn, or the messages of a client
    /// stream; @FILE.jsonl gives one message a line, in turn. Placeholders
    /// vary it per call: {{call}}, {{worker}}, {{uuid}}, {{rand 1 100}},
    /// {{unix_ms}}, {{now}}, {{one_of a b c}} (and ghz's {{.RequestNumber}},
    /// {{.WorkerID}}, {{.UUID}}, {{.TimestampUnix}}, ...).
    #[arg(short = 'd', long = "data", value_name = "JSON")]
    pub data: Option<String>,

    /// Request metadata, `key: value` (repeatable).
    #[arg(short = 'H', long = "metadata", value_parser = parse_metadata, value_name = "KEY: VALUE")]
    pub metadata: Vec<(String, String)>,

    #[command(flatten)]
    pub descriptors: DescriptorArgs,

    /// Calls in flight at once.
    #[arg(short = 'c', long, default_value_t = crate::load::plan::DEFAULT_CONCURRENCY, value_parser = count::<1_000_000>, value_name = "N")]
    pub concurrency: u32,

    /// Connections (subchannels) per address, calls spread round robin; at
    /// least one per thread (default: one per thread).
    #[arg(long, value_parser = count::<100_000>, value_name = "N")]
    pub connections: Option<u32>,

    /// Threads, each owning its share of the connections and of the calls
    /// in flight, as h2load's -t (default: the cores available; 1 runs
    /// everything on one thread).
    #[arg(short = 't', long, value_parser = count::<1024>, value_name = "N")]
    pub threads: Option<u32>,

    /// Stop after N calls.
    #[arg(short = 'n', long = "total", value_parser = total, value_name = "N")]
    pub total: Option<u64>,

    /// Stop after this long (default 10s when -n is not given).
    #[arg(short = 'z', long = "duration", value_parser = parse_duration, value_name = "DURATION")]
    pub duration: Option<Duration>,

    /// Start calls at this constant rate (per second); latencies count from
    /// each call's intended start (coordinated omission corrected).
    #[arg(long, value_parser = parse_rate, value_name = "RATE")]
    pub rps: Option<f64>,

    /// Calls in flight, or the rate, over time: DURATION:TARGET,... ramps
    /// linearly from the last target (0 at the start), e.g.
    /// 10s:100,30s:1000,10s:0 (calls in flight: -c is not used);
    /// TARGET/s is a rate (10s:500/s, with -c workers). ghz's step form:
    /// step:START,STEP,END,EVERY. The run lasts as long as the stages.
    #[arg(long, value_parser = crate::load::stages::Schedule::parse, value_name = "STAGES", conflicts_with_all = ["rps", "duration"])]
    pub stages: Option<crate::load::stages::Schedule>,

    /// Deadline of each call (sent as grpc-timeout); none when not given.
    #[arg(long, value_parser = crate::parse::parse_deadline, value_name = "DURATION")]
    pub timeout: Option<Duration>,

    /// Client and bidi streaming: messages per call.
    #[arg(long, default_value_t = 1, value_parser = count::<1_000_000>, value_name = "N")]
    pub stream_messages: u32,

    /// Client and bidi streaming: time between messages.
    #[arg(long, value_parser = parse_duration, default_value = "0s", value_name = "DURATION")]
    pub stream_interval: Duration,

    /// A gRPC service config (JSON, or @FILE), as given to grpc-go:
    /// retryPolicy (gRFC A6), timeout, waitForReady per method.
    #[arg(long, value_name = "JSON")]
    pub service_config: Option<String>,

    /// Do not retry calls the server never processed (show the raw failures).
    #[arg(long)]
    pub no_transparent_retry: bool,

    /// Wait for a READY connection instead of failing fast.
    #[arg(long)]
    pub wait_for_ready: bool,

    /// Exit 1 when a threshold is breached (repeatable): p99>50ms,
    /// error_rate>0.1%, code:UNAVAILABLE>0, rps<1000, checks<100%, ...
    #[arg(long = "fail-on", value_parser = parse_threshold, value_name = "EXPR")]
    pub fail_on: Vec<crate::load::failon::Threshold>,

    /// Check every response of the calls that end OK (repeatable): PATH OP
    /// VALUE, e.g. 'message == "hi"', 'count >= 3', 'items[0].id matches
    /// ^[0-9]+$'; OP is ==, !=, >, >=, <, <=, contains, matches. Counted
    /// per check in the report; --fail-on 'checks<100%' fails the run on
    /// one that did not hold.
    #[arg(long = "expect", value_parser = crate::load::expect::Expect::parse, value_name = "CHECK")]
    pub expect: Vec<crate::load::expect::Expect>,

    #[command(flatten)]
    pub conn: ConnArgs,

    /// Also write the report to FILE, in the format its extension names:
    /// `.html` (calls/s and latency over time, the tables; one
    /// self-contained page) or `.json`.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Output: tables, or one JSON report object.
    #[arg(short = 'o', long, value_enum, default_value_t = ReportOutput::Human)]
    pub output: ReportOutput,
}

pub fn parse_method(s: &str) -> Result<String, String> {
    crate::rpc::method_path(s)
}

pub fn parse_threshold(s: &str) -> Result<crate::load::failon::Threshold, String> {
    crate::load::failon::Threshold::parse(s)
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err("expected calls per second above 0, like 200".into()),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LbPolicy {
    /// One connection, to the first address that works.
    #[value(name = "pick_first")]
    PickFirst,
    /// A connection to every address, calls spread over the READY ones.
    #[value(name = "round_robin")]
    RoundRobin,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReconnectMode {
    /// After GOAWAY or a lost connection stay IDLE until a call needs one
    /// (current grpc-go and C-core).
    OnDemand,
    /// Reconnect at once (grpc-go 1.33).
    Eager,
}

/// A default of grpcdoc's client, from the one place they are set.
fn client_default<T>(f: impl Fn(&crate::client::ClientSettings) -> T) -> T {
    f(&crate::client::ClientSettings::default())
}

/// A duration default of grpcdoc's client, as `--help` shows it.
fn duration_default(f: impl Fn(&crate::client::ClientSettings) -> Duration) -> String {
    humantime::format_duration(client_default(f)).to_string()
}

impl From<crate::client::Lb> for LbPolicy {
    fn from(l: crate::client::Lb) -> Self {
        match l {
            crate::client::Lb::PickFirst => Self::PickFirst,
            crate::client::Lb::RoundRobin => Self::RoundRobin,
        }
    }
}

impl From<crate::client::Reconnect> for ReconnectMode {
    fn from(r: crate::client::Reconnect) -> Self {
        match r {
            crate::client::Reconnect::OnDemand => Self::OnDemand,
            crate::client::Reconnect::Eager => Self::Eager,
        }
    }
}

/// How grpcdoc's client connects: shared by the commands that dial.
#[derive(Debug, Args)]
pub struct ConnArgs {
    /// Load balancing over the resolved addresses.
    #[arg(long, value_enum, default_value_t = client_default(|c| LbPolicy::from(c.lb)))]
    pub lb: LbPolicy,

    /// When to reconnect after a GOAWAY or a lost connection.
    #[arg(long, value_enum, default_value_t = client_default(|c| ReconnectMode::from(c.reconnect)))]
    pub reconnect: ReconnectMode,

    /// Least time a connection attempt gets (connection-backoff MIN_CONNECT_TIMEOUT).
    #[arg(long, value_parser = parse_duration, default_value = duration_default(|c| c.backoff.min_connect_timeout), value_name = "DURATION")]
    pub connect_timeout: Duration,

    /// First reconnect backoff.
    #[arg(long, value_parser = parse_duration, default_value = duration_default(|c| c.backoff.initial), value_name = "DURATION")]
    pub backoff_initial: Duration,

    /// Backoff growth per attempt.
    #[arg(long, default_value_t = client_default(|c| c.backoff.multiplier), value_parser = parse_multiplier, value_name = "FACTOR")]
    pub backoff_multiplier: f64,

    /// Backoff randomization, as a fraction (0.2 = +-20%).
    #[arg(long, default_value_t = client_default(|c| c.backoff.jitter), value_parser = parse_jitter, value_name = "FRACTION")]
    pub backoff_jitter: f64,

    /// Longest backoff.
    #[arg(long, value_parser = parse_duration, default_value = duration_default(|c| c.backoff.max), value_name = "DURATION")]
    pub backoff_max: Duration,

    /// Ping the server after this long without reading from it (off by default).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub keepalive_time: Option<Duration>,

    /// Close the connection when a keepalive ping gets no answer this long.
    #[arg(long, value_parser = parse_duration, default_value = duration_default(|c| c.keepalive.timeout), value_name = "DURATION")]
    pub keepalive_timeout: Duration,

    /// Send keepalive pings also while no call is running.
    #[arg(long)]
    pub keepalive_permit_without_stream: bool,

    /// How often dns:/// targets are resolved again when nothing else makes
    /// them (a lost or drained connection always does), as grpc-go's DNS
    /// resolver.
    #[arg(long, value_parser = parse_duration, default_value = duration_default(|c| c.resolve_interval), value_name = "DURATION")]
    pub resolve_interval: Duration,

    /// Client-side health checking: a connection counts as READY only while
    /// grpc.health.v1.Health/Watch for this service says SERVING.
    #[arg(long, value_name = "SERVICE")]
    pub health_service: Option<String>,

    #[command(flatten)]
    pub tls: TlsArgs,
}

/// grpcurl's single-dash spellings that grpcdoc shares, as grpcdoc spells
/// them (`-plaintext` -> `--plaintext`, `-proto F` -> `--proto F`), and
/// grpcurl's `-d @` (the request from stdin) as `-d @-`. Other arguments
/// pass unchanged: `-proto` would otherwise read as `-p -r -o ...`.
pub fn grpcurl_spellings(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Vec<std::ffi::OsString> {
    const LONG: [&str; 6] = [
        "plaintext",
        "import-path",
        "proto",
        "protoset",
        "insecure",
        "cacert",
    ];
    let mut out: Vec<std::ffi::OsString> = Vec::new();
    let mut after_d = false;
    for a in args {
        let s = a.to_str().unwrap_or_default().to_string();
        let s = s.as_str();
        if after_d && s == "@" {
            out.push("@-".into());
        } else if let Some(name) = s
            .strip_prefix('-')
            .filter(|n| !n.starts_with('-'))
            .and_then(|n| {
                LONG.iter()
                    .find(|l| n == **l || n.starts_with(&format!("{l}=")))
            })
            .map(|_| &s[1..])
        {
            out.push(format!("--{name}").into());
        } else {
            out.push(a);
        }
        after_d = s == "-d" || s == "--data";
    }
    out
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Merge `load -o json` reports of the same method (one per machine)
    /// into one: counts add up, latency percentiles are exact for all the
    /// calls (the HDR histograms add), per-second series align on
    /// wall-clock time.
    #[command(after_help = REPORT_HELP)]
    Merge {
        /// The reports (`grpcdoc load ... -o json > FILE`).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Output: the load report's tables, or one JSON report (which
        /// merges again).
        #[arg(short = 'o', long, value_enum, default_value_t = ReportOutput::Human)]
        output: ReportOutput,
    },
}

/// TLS for https:// targets: shared by the commands that dial.
#[derive(Debug, Args)]
pub struct TlsArgs {
    /// Plaintext HTTP/2 (grpcurl's flag; already the default for
    /// HOST:PORT targets; refused with an https:// target).
    #[arg(long)]
    pub plaintext: bool,

    /// Trust this CA certificate (PEM) instead of the system roots.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,

    /// Client certificate (PEM) for mutual TLS (needs --key).
    #[arg(long, requires = "key", value_name = "FILE")]
    pub cert: Option<PathBuf>,

    /// Client private key (PEM) for --cert.
    #[arg(long, requires = "cert", value_name = "FILE")]
    pub key: Option<PathBuf>,

    /// Verify the server's certificate for this name (also sent as SNI).
    #[arg(long, value_name = "NAME")]
    pub server_name: Option<String>,

    /// Do not verify the server's certificate (https:// targets; testing only).
    #[arg(long)]
    pub insecure: bool,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The server: HOST:PORT, http://HOST:PORT, https://HOST[:PORT],
    /// dns:[//AUTH/]HOST[:PORT], ipv4:..., ipv6:..., unix:PATH or
    /// unix-abstract:NAME (the first address is measured).
    #[arg(value_parser = parse_target, value_hint = clap::ValueHint::Other, value_name = "TARGET")]
    pub target: crate::target::Target,

    /// Time for everything; a measurement not finished in it says so.
    /// Idle and age limits longer than this are reported as "none seen".
    #[arg(long, value_parser = parse_duration, default_value = "2m", value_name = "DURATION")]
    pub budget: Duration,

    /// Do not provoke the server: skip the keepalive enforcement probe
    /// (PINGs until a too_many_pings GOAWAY, on connections of its own).
    #[arg(long)]
    pub no_provoke: bool,

    /// A method the server keeps open while its request has not arrived
    /// (any unary or streaming method): held open to keep connections
    /// busy and to measure the max-age grace. Default: health Check, else
    /// reflection.
    #[arg(long, value_parser = parse_method, value_hint = clap::ValueHint::Other, value_name = "METHOD")]
    pub hold_method: Option<String>,

    /// A method that echoes its request (like grpc.examples.echo.Echo/UnaryEcho):
    /// the max message size is found by bisection, up to 16 MiB.
    #[arg(long, value_parser = parse_method, value_hint = clap::ValueHint::Other, value_name = "METHOD")]
    pub echo_method: Option<String>,

    /// Request metadata, `key: value` (repeatable); never printed.
    #[arg(short = 'H', long = "metadata", value_parser = parse_metadata, value_name = "KEY: VALUE")]
    pub metadata: Vec<(String, String)>,

    /// The client's keepalive time, to judge (grpc-go ClientParameters.Time,
    /// C-core grpc.keepalive_time_ms).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub client_keepalive_time: Option<Duration>,

    /// The client's keepalive timeout, to judge.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub client_keepalive_timeout: Option<Duration>,

    /// The client pings without calls (PermitWithoutStream,
    /// grpc.keepalive_permit_without_calls).
    #[arg(long)]
    pub client_permit_without_stream: bool,

    /// The client's idle timeout (grpc-go WithIdleTimeout, C-core
    /// grpc.client_idle_timeout_ms), to judge.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub client_idle_timeout: Option<Duration>,

    /// The client's gRPC service config (JSON, or @FILE): its retryPolicy
    /// says whether drains are retried.
    #[arg(long, value_name = "JSON")]
    pub service_config: Option<String>,

    /// Longest wait for a connection (TCP, TLS and the server's SETTINGS).
    #[arg(long, value_parser = parse_duration, default_value = duration_default(|c| c.backoff.min_connect_timeout), value_name = "DURATION")]
    pub connect_timeout: Duration,

    #[command(flatten)]
    pub tls: TlsArgs,

    /// Output: the report, or one JSON object.
    #[arg(short = 'o', long, value_enum, default_value_t = ReportOutput::Human)]
    pub output: ReportOutput,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// What to dial: HOST:PORT, http://HOST:PORT, https://HOST[:PORT],
    /// dns:[//AUTH/]HOST[:PORT], ipv4:ADDR[:PORT], ipv6:[ADDR]:PORT, A:1,B:2,
    /// unix:PATH or unix-abstract:NAME.
    #[arg(value_parser = parse_target, value_hint = clap::ValueHint::Other, value_name = "TARGET")]
    pub target: crate::target::Target,

    #[command(flatten)]
    pub conn: ConnArgs,

    /// Metadata for the probes and health checks, `key: value`
    /// (repeatable); secrets are never printed.
    #[arg(short = 'H', long = "metadata", value_parser = parse_metadata, value_name = "KEY: VALUE")]
    pub metadata: Vec<(String, String)>,

    /// Stop after this long (default: until Ctrl-C).
    #[arg(long = "for", value_parser = parse_duration, value_name = "DURATION")]
    pub run_for: Option<Duration>,

    /// Calls that keep the connection in use: `none`, `health`
    /// (grpc.health.v1.Health/Check), or a method (pkg.Service/Method, called
    /// with an empty message).
    #[arg(long, default_value = "health", value_parser = parse_probe, value_name = "none|health|METHOD")]
    pub probe: Probe,

    /// Time between probes (also each probe's deadline).
    #[arg(long, value_parser = parse_duration, default_value = "1s", value_name = "DURATION")]
    pub probe_interval: Duration,

    /// Log every frame, HEADERS and DATA too.
    #[arg(long)]
    pub frames: bool,

    /// Also write the connections' cleartext traffic (HTTP/2, after TLS)
    /// to this pcap file, which Wireshark and `grpcdoc pcap` read.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,

    /// Output format: aligned lines, or one JSON object per event per line.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Human)]
    pub output: Output,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    None,
    Health,
    /// The request path, `/pkg.Service/Method`.
    Method(String),
}

pub fn parse_probe(s: &str) -> Result<Probe, String> {
    match s.trim() {
        "none" => Ok(Probe::None),
        "health" => Ok(Probe::Health),
        m => crate::rpc::method_path(m)
            .map(Probe::Method)
            .map_err(|e| format!("{e}, or none, or health")),
    }
}

pub fn parse_target(s: &str) -> Result<crate::target::Target, String> {
    crate::target::Target::parse(s).map_err(|e| e.to_string())
}

fn parse_multiplier(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (1.0..=100.0).contains(&v) => Ok(v),
        _ => Err("expected a number from 1 to 100, like 1.6".into()),
    }
}

fn parse_jitter(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..1.0).contains(&v) => Ok(v),
        _ => Err("expected a fraction from 0 to below 1, like 0.2".into()),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// `Some` when the flag decides, `None` to follow the terminal and NO_COLOR.
    pub fn forced(self) -> Option<bool> {
        match self {
            ColorChoice::Auto => None,
            ColorChoice::Always => Some(true),
            ColorChoice::Never => Some(false),
        }
    }
}

/// `--idle-drain`, lowered to `server::IdleDrain`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum IdleDrainArg {
    /// grpc-go: GOAWAY, PING, GOAWAY; a call that crossed the first is served.
    Graceful,
    /// grpcio (C-core): one GOAWAY, then close.
    Immediate,
}

impl From<IdleDrainArg> for crate::server::IdleDrain {
    fn from(a: IdleDrainArg) -> Self {
        match a {
            IdleDrainArg::Graceful => Self::Graceful,
            IdleDrainArg::Immediate => Self::Immediate,
        }
    }
}

/// Output of the commands that print one report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportOutput {
    /// Tables and lines for people.
    Human,
    /// One JSON object: the whole report.
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned lines for people.
    Human,
    /// One JSON object per event per line.
    Json,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; `:0` or a port of 0 picks a free port. The first
    /// line on stdout is `listening on ADDR`.
    #[arg(long, default_value = "127.0.0.1:50051", value_parser = parse_listen, value_name = "ADDR")]
    pub listen: SocketAddr,

    /// Send GOAWAY (debug `max_idle`) after a connection had no active stream
    /// this long (grpc-go MaxConnectionIdle).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub max_connection_idle: Option<Duration>,

    /// How --max-connection-idle ends a connection: `graceful` (grpc-go: GOAWAY,
    /// PING, GOAWAY) or `immediate` (grpcio/C-core: one GOAWAY, then close).
    #[arg(long, value_enum, default_value_t = IdleDrainArg::Graceful, value_name = "HOW")]
    pub idle_drain: IdleDrainArg,

    /// Drain a connection (GOAWAY `max_age`) after this long, +-10% jitter
    /// (grpc-go MaxConnectionAge).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub max_connection_age: Option<Duration>,

    /// After the `max_age` GOAWAY, close hard after this long
    /// (grpc-go MaxConnectionAgeGrace).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub max_connection_age_grace: Option<Duration>,

    /// Ping a client after this long without reading anything from it.
    #[arg(long, value_parser = parse_duration, default_value = "2h", value_name = "DURATION")]
    pub keepalive_time: Duration,

    /// Close the connection when a keepalive ping gets no answer this long.
    #[arg(long, value_parser = parse_duration, default_value = duration_default(|c| c.keepalive.timeout), value_name = "DURATION")]
    pub keepalive_timeout: Duration,

    /// Enforcement: clients pinging more often get GOAWAY ENHANCE_YOUR_CALM
    /// `too_many_pings` after 2 strikes (grpc-go EnforcementPolicy.MinTime).
    #[arg(long, value_parser = parse_duration, default_value = "5m", value_name = "DURATION")]
    pub keepalive_min_time: Duration,

    /// Enforcement: allow client pings while the connection has no stream.
    #[arg(long)]
    pub keepalive_permit_without_stream: bool,

    /// SETTINGS_MAX_CONCURRENT_STREAMS to announce (default: no limit).
    #[arg(long, value_name = "N")]
    pub max_concurrent_streams: Option<u32>,

    /// Default handler delay of Echo and Greeter calls (a request's `delay`
    /// field or `x-delay-ms` metadata overrides it).
    #[arg(long, value_parser = parse_duration, default_value = "0s", value_name = "DURATION")]
    pub delay: Duration,

    /// Serve TLS with this PEM certificate chain (needs --tls-key).
    #[arg(long, requires = "tls_key", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// Stop gracefully after this long (default: run until Ctrl-C or SIGTERM).
    #[arg(long = "for", value_parser = parse_duration, value_name = "DURATION")]
    pub run_for: Option<Duration>,

    /// Output format of the server's events on stdout.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Human)]
    pub output: Output,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpcurl_spellings_become_grpcdoc_ones() {
        let got = grpcurl_spellings(
            [
                "grpcdoc",
                "load",
                "-plaintext",
                "-import-path",
                "p",
                "-proto",
                "x.proto",
                "-d",
                "@",
                "-H",
                "a: b",
                "-o",
                "json",
                "-protoset=s.pb",
            ]
            .map(std::ffi::OsString::from),
        );
        let got: Vec<&str> = got.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            got,
            [
                "grpcdoc",
                "load",
                "--plaintext",
                "--import-path",
                "p",
                "--proto",
                "x.proto",
                "-d",
                "@-",
                "-H",
                "a: b",
                "-o",
                "json",
                "--protoset=s.pb",
            ]
        );
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
