//! An Autobahn-grade conformance suite for WebSocket peers, built on tolqin.
//!
//! Two roles, as in the Autobahn|Testsuite:
//!
//! * [`test_server`] is the fuzzing *client*: for each case it connects to the server under
//!   test, sends the case's frames (broken ones included, split at chosen byte boundaries and
//!   with chosen delays) and judges what comes back and how the connection closes;
//! * [`test_clients`] is the fuzzing *server*: it speaks the Autobahn testee protocol
//!   (`/getCaseCount`, `/runCase?case=N&agent=A`, `/updateReports?agent=A`), so existing
//!   Autobahn testee clients run against it unchanged.
//!
//! Cases live in [`catalogue`] as data plus a few per-family functions; [`verdict`] judges a
//! run with Autobahn's rules; [`report`] writes Autobahn-shaped reports (`index.json` and one
//! JSON file per case) and compares them with a checked-in expected-results file.
//!
//! ```no_run
//! # async fn demo() -> Result<(), tolqin_conformance::Error> {
//! use tolqin_conformance::{ServerTest, Selection, test_server};
//! let test = ServerTest {
//!     url: "ws://127.0.0.1:9001/".into(),
//!     agent: "tolqin".into(),
//!     selection: Selection::new("1.*,2.*", ""),
//!     deflate_messages: None,
//! };
//! let report = test_server(&test, &mut |_| {}).await?;
//! println!("{}", report.summary());
//! # Ok(()) }
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod case;
pub mod catalogue;
mod engine;
pub mod fuzz;
pub mod progress;
pub mod report;
pub mod verdict;
mod wire;

pub use case::{Case, CaseId, Selection};
pub use fuzz::{ClientTest, ServerTest, test_clients, test_server};
pub use report::{CaseResult, Report};
pub use verdict::Verdict;

/// Errors of the suite itself (not of the peer under test, which get verdicts).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a socket or a report file failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The URL of the server under test is not a `ws://` URL with a host.
    #[error("invalid URL {0:?}: expected ws://HOST:PORT/")]
    BadUrl(String),
    /// A case id such as `1.1.1` could not be parsed.
    #[error("invalid case id {0:?}")]
    BadCaseId(String),
    /// A report or expected-results file is not the JSON expected.
    #[error("JSON error in {path}: {source}")]
    Json {
        /// The file.
        path: String,
        /// What went wrong.
        source: serde_json::Error,
    },
    /// No case matches the selection.
    #[error("no case matches the selection")]
    NoCases,
}
