//! [`Shutdown`]: the one signal that stops a worker, owned by its caller
//! (`run(config, shutdown)`, `serve(startup, shutdown)`) and handed to
//! every long-running task, as mini-redis does. A task asks
//! [`Shutdown::is_shutdown`] between units of work and awaits
//! [`Shutdown::recv`] in its `select!`s; a dropped sender counts as a
//! shutdown.

use tokio::sync::watch;

/// Listens for the worker's shutdown signal (cheap to clone).
#[derive(Debug, Clone)]
pub struct Shutdown {
    signal: watch::Receiver<bool>,
}

impl Shutdown {
    /// Whether the signal was given.
    pub fn is_shutdown(&self) -> bool {
        *self.signal.borrow()
    }

    /// Wait until the signal is given (at once when it was, or when its
    /// sender is gone).
    pub async fn recv(&mut self) {
        loop {
            if *self.signal.borrow_and_update() {
                return;
            }
            if self.signal.changed().await.is_err() {
                return;
            }
        }
    }
}

/// The receiving half of a `watch::channel(false)` whose sender sends `true`
/// to stop.
impl From<watch::Receiver<bool>> for Shutdown {
    fn from(signal: watch::Receiver<bool>) -> Self {
        Shutdown { signal }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn recv_returns_once_signalled_or_abandoned() {
        let (stop, rx) = watch::channel(false);
        let mut shutdown = Shutdown::from(rx);
        assert!(!shutdown.is_shutdown());
        let waiting = tokio::spawn({
            let mut shutdown = shutdown.clone();
            async move { shutdown.recv().await }
        });
        stop.send(true).unwrap();
        waiting.await.unwrap();
        assert!(shutdown.is_shutdown());
        shutdown.recv().await;

        let (stop, rx) = watch::channel(false);
        let mut abandoned = Shutdown::from(rx);
        drop(stop);
        abandoned.recv().await;
    }
}
