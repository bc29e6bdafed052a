//! `tolqin connect URL`: the terminal client (like wscat or websocat).
//!
//! Lines typed become text messages; messages received are printed. At a terminal (standard
//! input and output both terminals) the line is edited with rustyline and a message that
//! arrives while a line is being typed is printed above it, the half-typed line kept; incoming
//! messages are marked `< `. Piped, it prints only the messages, one per line, so it composes
//! in shell scripts.
//!
//! The process exits as soon as the connection is closed, whoever closed it: standard input is
//! read on a thread of its own that is never waited for, and the process ends with
//! [`std::process::exit`] once the close is printed (the terminal put back as it was first).
//! The exit status says how it ended: see [`EXIT_STATUS_HELP`].

mod terminal;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use http::{HeaderName, HeaderValue};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tolqin::events::{EventSocket, SocketEvent};
use tolqin::tls::TlsError;
use tolqin::{Client, CloseCode, Message, Options};

/// Exit status: the close handshake completed, whoever started it and whatever the code.
pub const EXIT_CLEAN: u8 = 0;
/// Exit status: the connection ended without a clean close (code 1006: it dropped without a
/// close handshake, or the server did not answer a close within `--close-timeout`), or a second
/// Ctrl-C.
pub const EXIT_UNCLEAN: u8 = 1;
/// Exit status: bad arguments (clap's own usage errors are 2 too).
pub const EXIT_USAGE: u8 = 2;
/// Exit status: the connection never opened (name resolution, TCP, proxy, TLS, a handshake
/// that failed or was refused), or Ctrl-C while connecting.
pub const EXIT_NOT_CONNECTED: u8 = 3;

/// The exit statuses and keys, as `tolqin connect --help` shows them.
pub const EXIT_STATUS_HELP: &str = "\
The client exits as soon as the connection is closed, whoever closed it. Ctrl-D (or the end
of piped input) closes with code 1000. Ctrl-C closes with code 1000 and waits at most
--close-timeout for the server to answer; a second Ctrl-C exits at once.

Exit status:
  0  the connection closed cleanly (the close handshake completed), whoever closed it
  1  it ended uncleanly: dropped without a close handshake (code 1006), no answer to the
     close within --close-timeout, or a second Ctrl-C
  2  bad arguments: the URL, a -H header, a duration, the --ca file
  3  it never opened: name resolution, TCP, proxy, TLS or the handshake failed or was
     refused, or Ctrl-C while connecting";

/// The hint printed when the server's certificate does not verify.
const CERTIFICATE_HINT: &str = "hint: trust the server's certificate (or the CA that signed it) \
with --ca FILE (PEM), or skip verification with --insecure (development only: anyone could \
pose as the server)";

/// How binary messages are printed.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryFormat {
    /// Lowercase hex.
    Hex,
    /// Standard base64.
    Base64,
}

/// Options of `tolqin connect`.
#[derive(clap::Args, Debug)]
#[command(after_help = EXIT_STATUS_HELP)]
pub struct ConnectArgs {
    /// The server: ws://HOST:PORT/PATH or wss://...
    pub url: String,
    /// A request header, `Name: value` (cookies, tokens); repeatable.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// A subprotocol to offer; repeatable, in order of preference.
    #[arg(long = "protocol", value_name = "P")]
    pub protocols: Vec<String>,
    /// The `Origin` header to send.
    #[arg(long)]
    pub origin: Option<String>,
    /// Send this message once open (repeatable), print the replies, and close after --wait
    /// (standard input is not read).
    #[arg(short = 'x', long = "execute", value_name = "MSG")]
    pub execute: Vec<String>,
    /// Seconds to wait for replies before closing: after --execute (default 2), or after the
    /// end of piped input (default 0: close at once; replies the server sends before it
    /// answers the close are still printed).
    #[arg(short = 'w', long, value_name = "SECS", value_parser = seconds)]
    pub wait: Option<Duration>,
    /// Seconds to wait for the server to answer a close (Ctrl-C, Ctrl-D, end of input)
    /// before dropping the connection.
    #[arg(long, value_name = "SECS", value_parser = seconds, default_value = "5")]
    pub close_timeout: Duration,
    /// Send a ping this often (seconds); no pong by the next one closes the connection.
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    pub ping_interval: Option<Duration>,
    /// How binary messages are printed.
    #[arg(long, value_enum, default_value_t = BinaryFormat::Hex)]
    pub binary: BinaryFormat,
    /// Trust this CA certificate (PEM) for wss://, in addition to the system's roots.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Skip certificate verification for wss:// (development only: anyone can impersonate
    /// the server).
    #[arg(long)]
    pub insecure: bool,
    /// Do not offer permessage-deflate.
    #[arg(long)]
    pub no_deflate: bool,
}

/// A duration argument that is not a number of seconds.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a number of seconds (expected e.g. 2 or 0.5)")]
pub struct BadSeconds(String);

/// Parses a non-negative, finite number of seconds.
fn seconds(text: &str) -> Result<Duration, BadSeconds> {
    text.trim()
        .parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| BadSeconds(text.to_string()))
}

/// Why `tolqin connect` could not start.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// A `-H` argument that is not `Name: value`.
    #[error("invalid header {0:?}: expected 'Name: value'")]
    BadHeader(String),
    /// The URL, or the TLS options, are unusable.
    #[error(transparent)]
    Tolqin(#[from] tolqin::Error),
    /// The CA file or TLS setup failed.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Why standard input could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// Reading standard input failed (or it is not UTF-8 text).
    #[error("cannot read standard input: {0}")]
    Read(#[source] std::io::Error),
    /// The thread that reads standard input could not be started.
    #[error("cannot start the thread that reads standard input: {0}")]
    Thread(#[source] std::io::Error),
    /// The line editor failed.
    #[error("line editor: {0}")]
    Editor(#[from] rustyline::error::ReadlineError),
    /// The line editor's thread ended before it was ready.
    #[error("the line editor stopped before it was ready")]
    EditorGone,
}

/// What the user (or the pipe) did.
#[derive(Debug)]
pub enum Input {
    /// A line to send.
    Line(String),
    /// The end of input (Ctrl-D, the end of the pipe), or a failure to read it.
    End(Option<InputError>),
    /// Ctrl-C in the line editor.
    Interrupt,
}

fn client(args: &ConnectArgs) -> Result<Client, ConnectError> {
    let mut client = Client::new(&args.url)?;
    for header in &args.headers {
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| ConnectError::BadHeader(header.clone()))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| ConnectError::BadHeader(header.clone()))?;
        let value = HeaderValue::from_str(value.trim())
            .map_err(|_| ConnectError::BadHeader(header.clone()))?;
        client = client.append_header(name, value);
    }
    for protocol in &args.protocols {
        client = client.protocol(protocol.clone());
    }
    if let Some(origin) = &args.origin {
        client = client.origin(origin.clone());
    }
    let mut protocol = tolqin::proto::Config::default();
    protocol.deflate.enabled = !args.no_deflate;
    let options = Options::default()
        .with_protocol(protocol)
        .with_close_timeout(args.close_timeout)
        .with_ping_interval(args.ping_interval);
    client = client.options(options);
    if args.ca.is_some() || args.insecure {
        let mut tls = tolqin::tls::TlsClient::builder();
        if let Some(ca) = &args.ca {
            tls = tls.add_ca_file(ca)?;
        }
        if args.insecure {
            tls = tls.danger_skip_verification_for_development();
        }
        client = client.tls(tls.build()?);
    }
    Ok(client)
}

fn format_message(message: &Message, binary: BinaryFormat) -> String {
    match message {
        Message::Text(text) => text.to_string(),
        Message::Binary(bytes) => match binary {
            BinaryFormat::Hex => bytes.iter().map(|b| format!("{b:02x}")).collect(),
            BinaryFormat::Base64 => base64::engine::general_purpose::STANDARD.encode(bytes),
        },
    }
}

/// `text` with its control characters escaped as Rust would write them (`\u{1b}`), except
/// newline and tab: what a terminal may be shown of a message a server chose.
fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// An error's message followed by its sources, each one that the message does not already
/// include (`cannot connect to ...: connection refused`).
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !gist(&text).contains(&gist(&more)) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

/// An error message as compared by [`chain`]: lower case, without the ` (os error N)` that
/// the standard library adds to the system's words (a message that already says `connection
/// refused` includes `Connection refused (os error 111)`).
fn gist(text: &str) -> String {
    let text = match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => &text[..at],
        _ => text,
    };
    text.to_lowercase()
}

/// The hint for a server certificate that did not verify, if that is what `error` is.
fn certificate_hint(error: &tolqin::Error) -> Option<&'static str> {
    let tls = error.tls_error()?;
    matches!(
        tls,
        TlsError::UnknownIssuer { .. }
            | TlsError::CertificateExpired { .. }
            | TlsError::CertificateNotYetValid { .. }
            | TlsError::WrongHost { .. }
            | TlsError::InvalidCertificate { .. }
    )
    .then_some(CERTIFICATE_HINT)
}

/// Reads standard input line by line on a thread of its own, never waited for: the process
/// exits when the connection ends even if a read is still blocked.
fn read_lines(inputs: mpsc::Sender<Input>) -> Result<(), InputError> {
    let reader = move || {
        use std::io::BufRead;
        for line in std::io::stdin().lock().lines() {
            let input = match line {
                Ok(line) => Input::Line(line),
                Err(e) => Input::End(Some(InputError::Read(e))),
            };
            let end = matches!(input, Input::End(_));
            if inputs.blocking_send(input).is_err() || end {
                return;
            }
        }
        let _ = inputs.blocking_send(Input::End(None));
    };
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(reader)
        .map(drop)
        .map_err(InputError::Thread)
}

/// Where lines go: plain standard output and error, or above the line being edited.
struct Output {
    /// Standard input and output are terminals.
    terminal: bool,
    stderr_terminal: bool,
    editor: Option<terminal::Editor>,
}

impl Output {
    /// A received message.
    async fn message(&mut self, message: &Message, binary: BinaryFormat) {
        let text = format_message(message, binary);
        if self.terminal {
            let kind = if message.is_text() { "" } else { "[binary] " };
            // A server's text must not drive the terminal (escape sequences can move the
            // cursor, rewrite the screen or set the window title): controls are shown escaped.
            let text = escape_controls(&text);
            self.line(format!("< {kind}{text}")).await;
        } else {
            self.line(text).await;
        }
    }

    /// A line of standard output.
    async fn line(&mut self, text: String) {
        match &self.editor {
            Some(editor) => editor.print(text).await,
            None => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{text}");
                let _ = out.flush();
            }
        }
    }

    /// A line of standard error (above the edited line when it goes to the same terminal).
    async fn note(&mut self, text: String) {
        match &self.editor {
            Some(editor) if self.stderr_terminal => editor.print(text).await,
            _ => eprintln!("{text}"),
        }
    }

    /// Before the last line: everything printed, the terminal as it was.
    async fn finish(&mut self) {
        if let Some(editor) = self.editor.take() {
            editor.shutdown().await;
        }
        let _ = std::io::stdout().flush();
    }
}

/// One thing that happened, for the main loop.
enum Step {
    Event(Option<SocketEvent>),
    Input(Option<Input>),
    Interrupt,
    WaitOver,
    CloseTimedOut,
}

/// SIGINT as a stream, so that Ctrl-C (outside the line editor, or piped) closes politely.
struct Interrupts {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Interrupts {
    fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Interrupts {
                signal: signal(SignalKind::interrupt()).ok(),
            }
        }
        #[cfg(not(unix))]
        Interrupts {}
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        match &mut self.signal {
            Some(signal) => {
                if signal.recv().await.is_none() {
                    std::future::pending::<()>().await;
                }
            }
            None => std::future::pending::<()>().await,
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// The close line: code, reason, and whether the close handshake completed (`we_closed`: the
/// client had sent a close).
fn close_line(code: CloseCode, reason: &str, was_clean: bool, we_closed: bool) -> String {
    let reason = if reason.is_empty() {
        String::new()
    } else {
        format!(" reason {reason:?}")
    };
    let how = if was_clean {
        "clean"
    } else if we_closed {
        "not clean: the server did not complete the close handshake"
    } else if code == CloseCode::ABNORMAL {
        "not clean: the connection dropped without a close handshake"
    } else {
        "not clean"
    };
    format!("closed: code {code}{reason}, {how}")
}

/// Runs the client; returns the process exit status (see [`EXIT_STATUS_HELP`]). The caller
/// exits with it at once: a thread may still be blocked reading standard input.
pub async fn run(args: ConnectArgs) -> u8 {
    let client = match client(&args) {
        Ok(client) => client,
        Err(e) => {
            eprintln!("tolqin: {}", chain(&e));
            return EXIT_USAGE;
        }
    };
    let terminal = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let mut out = Output {
        terminal,
        stderr_terminal: std::io::stderr().is_terminal(),
        editor: None,
    };
    let mut interrupts = Interrupts::new();
    let mut socket = EventSocket::builder(client).start();
    let (input_tx, mut inputs) = mpsc::channel::<Input>(64);
    // Handed to the reader when the connection opens.
    let mut input_tx = Some(input_tx);
    let mut reading = false;
    let mut opened = false;
    let mut interrupted = false;
    let never = || Instant::now() + Duration::from_secs(86_400 * 365);
    // Waiting for replies (--wait) before closing.
    let wait = tokio::time::sleep_until(never());
    tokio::pin!(wait);
    let mut waiting = false;
    // After Ctrl-C: the most we wait for the server's answer to our close.
    let close_deadline = tokio::time::sleep_until(never());
    tokio::pin!(close_deadline);
    let mut closing = false;
    // The client sent a close (end of input, --wait over, Ctrl-C).
    let mut we_closed = false;
    loop {
        let step = tokio::select! {
            event = socket.next_event() => Step::Event(event),
            input = inputs.recv(), if reading => Step::Input(input),
            () = interrupts.next() => Step::Interrupt,
            () = &mut wait, if waiting => Step::WaitOver,
            () = &mut close_deadline, if closing => Step::CloseTimedOut,
        };
        match step {
            Step::Event(None) => {
                // The socket's task ended without a close event: treat it as a lost connection.
                out.finish().await;
                eprintln!("closed: the connection ended without a close event, not clean");
                return if opened {
                    EXIT_UNCLEAN
                } else {
                    EXIT_NOT_CONNECTED
                };
            }
            Step::Event(Some(event)) => match event {
                SocketEvent::Open {
                    protocol,
                    extensions,
                } => {
                    opened = true;
                    if terminal {
                        let extensions = if extensions.is_empty() {
                            "none"
                        } else {
                            &extensions
                        };
                        out.line(format!(
                            "connected to {} (protocol: {}, extensions: {extensions})",
                            args.url,
                            protocol.as_deref().unwrap_or("none"),
                        ))
                        .await;
                    }
                    if args.execute.is_empty() {
                        if let Some(tx) = input_tx.take() {
                            reading = true;
                            if terminal {
                                match terminal::Editor::start(tx.clone()) {
                                    Ok(editor) => out.editor = Some(editor),
                                    // A terminal rustyline cannot drive (TERM=dumb...):
                                    // plain lines.
                                    Err(_) => start_reading(tx, &mut out).await,
                                }
                            } else {
                                start_reading(tx, &mut out).await;
                            }
                        }
                    } else {
                        for message in &args.execute {
                            if let Err(e) = socket.send(message.as_str()) {
                                out.note(format!("error: {}", chain(&e))).await;
                            }
                        }
                        let after = args.wait.unwrap_or(Duration::from_secs(2));
                        wait.as_mut().reset(Instant::now() + after);
                        waiting = true;
                    }
                }
                SocketEvent::Message(message) => out.message(&message, args.binary).await,
                SocketEvent::Error(e) => {
                    out.note(format!("error: {}", chain(&e))).await;
                    if let Some(hint) = certificate_hint(&e) {
                        out.note(hint.to_string()).await;
                    }
                }
                SocketEvent::Unsent(messages) => {
                    out.note(format!(
                        "error: {} message(s) not sent: the connection closed first",
                        messages.len()
                    ))
                    .await;
                }
                SocketEvent::Close {
                    code,
                    reason,
                    was_clean,
                } => {
                    out.finish().await;
                    if !opened {
                        // The error that was printed says it all.
                        return EXIT_NOT_CONNECTED;
                    }
                    eprintln!("{}", close_line(code, &reason, was_clean, we_closed));
                    return if was_clean { EXIT_CLEAN } else { EXIT_UNCLEAN };
                }
                _ => {}
            },
            Step::Input(Some(Input::Line(line))) => {
                if let Err(e) = socket.send(line) {
                    out.note(format!("error: {}", chain(&e))).await;
                }
            }
            Step::Input(end @ (Some(Input::End(_)) | None)) => {
                reading = false;
                if let Some(Input::End(Some(e))) = end {
                    out.note(format!("error: {}", chain(&e))).await;
                }
                match args.wait {
                    Some(after) if !after.is_zero() => {
                        wait.as_mut().reset(Instant::now() + after);
                        waiting = true;
                    }
                    _ => {
                        let _ = socket.close(Some(CloseCode::NORMAL), "");
                        we_closed = true;
                    }
                }
            }
            Step::Input(Some(Input::Interrupt)) | Step::Interrupt => {
                if interrupted {
                    out.finish().await;
                    eprintln!("interrupted again: exiting without waiting for the close");
                    return EXIT_UNCLEAN;
                }
                interrupted = true;
                if !opened {
                    out.finish().await;
                    eprintln!("interrupted before the connection opened");
                    return EXIT_NOT_CONNECTED;
                }
                reading = false;
                waiting = false;
                if terminal {
                    out.note("closing (code 1000); Ctrl-C again exits at once".into())
                        .await;
                }
                let _ = socket.close(Some(CloseCode::NORMAL), "");
                we_closed = true;
                close_deadline
                    .as_mut()
                    .reset(Instant::now() + args.close_timeout);
                closing = true;
            }
            Step::WaitOver => {
                waiting = false;
                let _ = socket.close(Some(CloseCode::NORMAL), "");
                we_closed = true;
            }
            Step::CloseTimedOut => {
                out.finish().await;
                eprintln!(
                    "closed: the server did not answer the close within {:?}, not clean",
                    args.close_timeout
                );
                return EXIT_UNCLEAN;
            }
        }
    }
}

/// Starts reading plain lines from standard input; a failure to start closes the connection
/// like the end of input does.
async fn start_reading(inputs: mpsc::Sender<Input>, out: &mut Output) {
    if let Err(e) = read_lines(inputs.clone()) {
        out.note(format!("error: {}", chain(&e))).await;
        let _ = inputs.send(Input::End(None)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::escape_controls;

    #[test]
    fn terminal_output_escapes_controls_but_keeps_lines_and_text() {
        assert_eq!(escape_controls("plain ü 🙂"), "plain ü 🙂");
        assert_eq!(escape_controls("a\tb\nc"), "a\tb\nc");
        assert_eq!(
            escape_controls("\u{1b}[2J\u{1b}]0;pwned\u{7}x\u{9b}\r"),
            "\\u{1b}[2J\\u{1b}]0;pwned\\u{7}x\\u{9b}\\r"
        );
    }
}
