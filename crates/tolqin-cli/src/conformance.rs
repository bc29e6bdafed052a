//! `tolqin conformance`: the Autobahn-grade conformance suite, in both roles.
//!
//! * `tolqin conformance server ws://HOST:PORT/` tests a server (this tool is the client);
//! * `tolqin conformance client --listen ADDR` tests clients that speak the Autobahn testee
//!   protocol (this tool is the server).
//!
//! Both print progress to stderr, a summary at the end, and exit non-zero when a case FAILED
//! (or, with `--strict`, is NON-STRICT) — or, with `--expect FILE`, when any verdict differs
//! from the expected-results file.

use std::io::Write as _;
use std::path::PathBuf;

use tolqin_conformance::progress::Progress;
use tolqin_conformance::{ClientTest, Report, Selection, ServerTest, fuzz};

/// Options of `tolqin conformance`.
#[derive(clap::Args, Debug)]
pub struct ConformanceArgs {
    #[command(subcommand)]
    role: Role,
}

#[derive(clap::Subcommand, Debug)]
enum Role {
    /// Test a server: connect to it once per case as the fuzzing client.
    Server(ServerArgs),
    /// Test clients: serve the Autobahn testee protocol as the fuzzing server.
    Client(ClientArgs),
}

#[derive(clap::Args, Debug)]
struct ServerArgs {
    /// The server under test, e.g. ws://127.0.0.1:9001/
    url: String,
    /// The server's name in the reports.
    #[arg(long, default_value = "tolqin")]
    agent: String,
    #[command(flatten)]
    common: Common,
}

#[derive(clap::Args, Debug)]
struct ClientArgs {
    /// Address to listen on: `IP:PORT`, `[IPv6]:PORT` or `HOST:PORT` (a name that resolves to
    /// several addresses listens on the first that can be bound); port 0 picks a free port
    /// (the ready line shows it).
    #[arg(long, default_value = "127.0.0.1:9001", value_name = "HOST:PORT")]
    listen: crate::listen::ListenAddr,
    /// Keep serving after a client asked for /updateReports.
    #[arg(long)]
    keep_running: bool,
    /// wss://: --tls-cert/--tls-key or --tls-self-signed.
    #[command(flatten)]
    tls: crate::tls_args::TlsArgs,
    #[command(flatten)]
    common: Common,
}

#[derive(clap::Args, Debug)]
struct Common {
    /// Cases to run, comma-separated; `*` matches anything (e.g. 1.*,6.4.*). Default: all.
    #[arg(long)]
    cases: Option<String>,
    /// Cases to leave out, same syntax.
    #[arg(long)]
    exclude: Option<String>,
    /// Write index.json and one JSON report per case into this directory.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Compare the verdicts with this expected-results file; any difference fails the run.
    #[arg(long)]
    expect: Option<PathBuf>,
    /// Write the verdicts as an expected-results file.
    #[arg(long)]
    write_expected: Option<PathBuf>,
    /// Treat NON-STRICT verdicts as failures (ignored with --expect).
    #[arg(long)]
    strict: bool,
    /// Messages per permessage-deflate case (sections 12 and 13). Default: Autobahn's 1000.
    #[arg(long)]
    deflate_messages: Option<usize>,
}

impl Common {
    fn selection(&self) -> Selection {
        Selection::new(
            self.cases.as_deref().unwrap_or(""),
            self.exclude.as_deref().unwrap_or(""),
        )
    }
}

/// Runs the suite in the role asked for.
pub fn run(args: ConformanceArgs) -> std::io::Result<()> {
    // Two workers: the task reading the peer runs while the script writes (chops included).
    let rt = super::runtime(2);
    let (report, common) = match args.role {
        Role::Server(a) => {
            let selection = a.common.selection();
            let total = fuzz::selected_cases(&selection)
                .map_err(std::io::Error::other)?
                .len();
            let test = ServerTest {
                url: a.url,
                agent: a.agent,
                selection,
                deflate_messages: a.common.deflate_messages,
            };
            let mut progress = Progress::new(total);
            let report = rt
                .block_on(fuzz::test_server(&test, &mut |r| progress.case_done(r)))
                .map_err(std::io::Error::other)?;
            progress.finish();
            if let Some(dir) = &a.common.report {
                report.write(dir).map_err(std::io::Error::other)?;
            }
            (report, a.common)
        }
        Role::Client(a) => {
            let selection = a.common.selection();
            let total = fuzz::selected_cases(&selection)
                .map_err(std::io::Error::other)?
                .len();
            // TLS first: a bad certificate or key fails before the port is taken; `tls` lives
            // until the server stops (it removes a --tls-self-signed certificate file).
            let tls = a.tls.server(&mut std::io::stdout().lock())?;
            let test = ClientTest {
                selection,
                report_dir: a.common.report.clone(),
                keep_running: a.keep_running,
                deflate_messages: a.common.deflate_messages,
                tls: tls.as_ref().map(|t| t.tls.clone()),
            };
            let report = rt.block_on(async {
                let listener = crate::listen::bind(&a.listen).await?;
                let addr = listener.local_addr()?;
                {
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "listening on {}://{addr}", a.tls.scheme())?;
                    out.flush()?;
                }
                let mut progress = Progress::new(total);
                let report = fuzz::test_clients(&test, listener, &mut |r| progress.case_done(r))
                    .await
                    .map_err(std::io::Error::other)?;
                progress.finish();
                std::io::Result::Ok(report)
            })?;
            (report, a.common)
        }
    };
    conclude(&report, &common)
}

fn conclude(report: &Report, common: &Common) -> std::io::Result<()> {
    eprint!("{}", report.summary());
    if let Some(path) = &common.write_expected {
        report.write_expected(path).map_err(std::io::Error::other)?;
    }
    if let Some(path) = &common.expect {
        let selection = common.selection();
        let diffs = report
            .compare(path, &selection)
            .map_err(std::io::Error::other)?;
        if diffs.is_empty() {
            eprintln!("verdicts match {}", path.display());
            return Ok(());
        }
        eprintln!("{} verdict(s) differ from {}:", diffs.len(), path.display());
        for d in &diffs {
            eprintln!("  {d}");
        }
        return Err(std::io::Error::other(format!(
            "{} verdict(s) differ from the expected results",
            diffs.len()
        )));
    }
    if report.passed(common.strict) {
        Ok(())
    } else {
        Err(std::io::Error::other(if common.strict {
            "some cases FAILED or are NON-STRICT"
        } else {
            "some cases FAILED"
        }))
    }
}
