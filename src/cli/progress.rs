//! `check`'s progress bar: drawn on a terminal, for inputs big enough to wait for (a test
//! harness's 10,000-entry batch). Nothing is drawn when stderr is not a terminal, so scripts
//! and pipes see only the answer.

use crate::engine::{OnProgress, Progress};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Below these a check is over before a bar could be read.
const BIG_FILE_BYTES: usize = 1 << 20;
const MANY_ENTRIES: usize = 1_000;

/// The bar of the file being checked, if it is big.
pub struct ProgressDisplay {
    drawn: bool,
    bar: Mutex<Option<ProgressBar>>,
}

impl ProgressDisplay {
    /// Draws on stderr when it is a terminal.
    pub fn on_stderr() -> Arc<Self> {
        Arc::new(Self {
            drawn: std::io::stderr().is_terminal(),
            bar: Mutex::new(None),
        })
    }

    /// What the engine tells as it decides.
    pub fn callback(self: &Arc<Self>) -> Arc<OnProgress> {
        let me = Arc::clone(self);
        Arc::new(move |p| me.told(p))
    }

    /// A file of `bytes` is about to be parsed: a big one gets a spinner until its entries
    /// are counted.
    pub fn reading(&self, name: &str, bytes: usize) {
        if !self.drawn || bytes < BIG_FILE_BYTES {
            return;
        }
        let spinner = ProgressBar::new_spinner()
            .with_message(format!("{name}: reading {:.1} MB", bytes as f64 / 1e6));
        spinner.enable_steady_tick(Duration::from_millis(120));
        self.replace(Some(spinner));
    }

    /// The file is done (decided or refused): its bar goes.
    pub fn finished(&self) {
        self.replace(None);
    }

    fn told(&self, progress: Progress) {
        match progress {
            Progress::Parsed { entries } => {
                let big = entries >= MANY_ENTRIES || self.showing();
                if self.drawn && big {
                    let bar = ProgressBar::new(entries as u64).with_style(
                        ProgressStyle::with_template(
                            "deciding {bar:40} {pos}/{len} entries, {per_sec}, {eta} left",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    );
                    self.replace(Some(bar));
                }
            }
            Progress::Decided { done, .. } => {
                if let Some(bar) = self.lock().as_ref() {
                    bar.set_position(done as u64);
                }
            }
        }
    }

    fn showing(&self) -> bool {
        self.lock().is_some()
    }

    fn replace(&self, next: Option<ProgressBar>) {
        if let Some(old) = std::mem::replace(&mut *self.lock(), next) {
            old.finish_and_clear();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<ProgressBar>> {
        // A bar is only drawn: a panic while drawing leaves nothing to protect.
        self.bar.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
