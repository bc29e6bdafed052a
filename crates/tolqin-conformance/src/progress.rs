//! Progress while a run goes: a bar on a terminal, one plain line per case otherwise.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

use crate::report::CaseResult;

/// Shows progress on stderr.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    total: usize,
    done: usize,
}

impl Progress {
    /// Progress over `total` cases: a bar if stderr is a terminal, plain lines otherwise.
    pub fn new(total: usize) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{elapsed_precise} [{bar:40.cyan/blue}] {pos}/{len} {msg}",
                )
                .expect("the template is valid")
                .progress_chars("=> "),
            );
            bar
        });
        Progress {
            bar,
            total,
            done: 0,
        }
    }

    /// Sets the total, when it is learnt late.
    pub fn set_total(&mut self, total: usize) {
        self.total = total;
        if let Some(bar) = &self.bar {
            bar.set_length(total as u64);
        }
    }

    /// A case finished.
    pub fn case_done(&mut self, r: &CaseResult) {
        self.done += 1;
        match &self.bar {
            Some(bar) => {
                bar.set_message(format!("{} {}/{}", r.id, r.behavior, r.behavior_close));
                bar.inc(1);
            }
            None => eprintln!(
                "[{}/{}] {} {} / {} ({} ms)",
                self.done, self.total, r.id, r.behavior, r.behavior_close, r.duration_ms
            ),
        }
    }

    /// The run is over: removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
