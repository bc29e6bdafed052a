//! Line editing for `tolqin connect` at a terminal (rustyline).
//!
//! Two threads of their own, never waited for: the editor reads lines (`> ` prompt, history,
//! the usual keys), and the printer hands lines to rustyline's external printer, which prints
//! them above the line being typed and redraws that line. The printer is a thread because
//! handing a line over can block until the editor has taken the previous one.
//!
//! The process exits while the editor may still be blocked in `readline` with the terminal in
//! raw mode, so [`Editor::shutdown`] puts the terminal back as it was before the editor
//! started.

use std::io::Write;
use std::time::Duration;

use rustyline::error::ReadlineError;
use rustyline::{Config, DefaultEditor, ExternalPrinter};
use tokio::sync::{mpsc, oneshot};

use super::{Input, InputError};

/// The prompt.
pub const PROMPT: &str = "> ";

/// For the printer thread.
enum Print {
    /// A line to print above the edited line.
    Line(String),
    /// Answer once every line before this one was handed to the editor.
    Flush(oneshot::Sender<()>),
}

/// The running line editor.
pub struct Editor {
    prints: mpsc::Sender<Print>,
    /// The terminal's settings before the editor started.
    #[cfg(unix)]
    saved: Option<nix::sys::termios::Termios>,
}

impl Editor {
    /// Starts the editor on standard input and output; each line typed, Ctrl-D and Ctrl-C go
    /// to `inputs`.
    ///
    /// # Errors
    /// When rustyline cannot drive this terminal (`TERM=dumb`...) or a thread cannot start.
    pub fn start(inputs: mpsc::Sender<Input>) -> Result<Editor, InputError> {
        #[cfg(unix)]
        let saved = nix::sys::termios::tcgetattr(std::io::stdin()).ok();
        let (prints, lines) = mpsc::channel(64);
        let (ready_tx, ready) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("line editor".into())
            .spawn(move || edit(inputs, lines, ready_tx))
            .map_err(InputError::Thread)?;
        match ready.recv() {
            Ok(Ok(())) => Ok(Editor {
                prints,
                #[cfg(unix)]
                saved,
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(InputError::EditorGone),
        }
    }

    /// Prints `line` above the line being edited.
    pub async fn print(&self, line: String) {
        if let Err(mpsc::error::SendError(Print::Line(line))) =
            self.prints.send(Print::Line(line)).await
        {
            print_plain(&line);
        }
    }

    /// Waits (briefly) until every line was printed, then puts the terminal back as it was
    /// and clears the prompt line, for the last lines to be printed plainly.
    pub async fn shutdown(self) {
        let (done, flushed) = oneshot::channel();
        if self.prints.send(Print::Flush(done)).await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(1), flushed).await;
        }
        // The editor draws the last line it was handed on its own thread: let it.
        tokio::time::sleep(Duration::from_millis(50)).await;
        #[cfg(unix)]
        if let Some(saved) = &self.saved {
            use nix::sys::termios::{SetArg, tcsetattr};
            let _ = tcsetattr(std::io::stdin(), SetArg::TCSADRAIN, saved);
        }
        // Back to the start of the prompt line, and clear it.
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(b"\r\x1b[K");
        let _ = out.flush();
    }
}

/// A line written straight to standard output.
fn print_plain(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// The editor thread: starts the printer, says it is ready, then reads lines until Ctrl-D,
/// Ctrl-C or an error.
fn edit(
    inputs: mpsc::Sender<Input>,
    lines: mpsc::Receiver<Print>,
    ready: std::sync::mpsc::Sender<Result<(), InputError>>,
) {
    let config = Config::builder()
        .auto_add_history(true)
        // A pasted block is sent line by line, as when it is piped.
        .bracketed_paste(false)
        .build();
    let mut editor = match DefaultEditor::with_config(config) {
        Ok(editor) => editor,
        Err(e) => {
            let _ = ready.send(Err(e.into()));
            return;
        }
    };
    let printer = match editor.create_external_printer() {
        Ok(printer) => printer,
        Err(e) => {
            let _ = ready.send(Err(e.into()));
            return;
        }
    };
    if let Err(e) = std::thread::Builder::new()
        .name("terminal printer".into())
        .spawn(move || print_lines(printer, lines))
    {
        let _ = ready.send(Err(InputError::Thread(e)));
        return;
    }
    if ready.send(Ok(())).is_err() {
        return;
    }
    loop {
        let input = match editor.readline(PROMPT) {
            Ok(line) => Input::Line(line),
            Err(ReadlineError::Eof) => Input::End(None),
            Err(ReadlineError::Interrupted) => Input::Interrupt,
            Err(e) => Input::End(Some(e.into())),
        };
        let last = !matches!(input, Input::Line(_));
        if inputs.blocking_send(input).is_err() || last {
            return;
        }
    }
}

/// The printer thread.
fn print_lines(mut printer: impl ExternalPrinter, mut lines: mpsc::Receiver<Print>) {
    while let Some(print) = lines.blocking_recv() {
        match print {
            Print::Line(mut line) => {
                // Once the editor has stopped, the printer writes the text as it is.
                line.push('\n');
                if printer.print(line.clone()).is_err() {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(line.as_bytes());
                    let _ = out.flush();
                }
            }
            Print::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}
