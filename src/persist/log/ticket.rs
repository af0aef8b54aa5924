//! Tickets: how a connection waits, off its thread's other work, for the group commit
//! that makes its events durable (`appendfsync always`).
//!
//! The lane keeps the [`Promise`]; the connection keeps the [`Ticket`]. The log
//! thread fulfils promises after the fsync (and after counting the events); a
//! promise dropped unfulfilled — the log thread stopped — fails its ticket, so no
//! connection waits forever.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;

/// What became of a pending item: the indexes of its events that were too late to
/// count once durable, or why the log could not write it (nothing was counted).
pub type Outcome = Result<Vec<u32>, Arc<str>>;

#[derive(Debug, Default)]
struct State {
    done: AtomicBool,
    outcome: Mutex<Option<Outcome>>,
    notify: Notify,
}

/// The waiting side.
#[derive(Debug, Clone)]
pub struct Ticket(Arc<State>);

/// The fulfilling side.
#[derive(Debug)]
pub struct Promise(Option<Arc<State>>);

/// A ticket and its promise.
pub fn pair() -> (Ticket, Promise) {
    let s = Arc::new(State::default());
    (Ticket(s.clone()), Promise(Some(s)))
}

impl Ticket {
    /// Waits until the promise is fulfilled (or dropped).
    pub async fn wait(&self) {
        loop {
            let notified = self.0.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.0.done.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }

    /// The outcome, once done (taken: ask once).
    pub fn outcome(&self) -> Outcome {
        self.0
            .outcome
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .unwrap_or_else(|| Err(Arc::from("the log stopped before writing")))
    }
}

impl Promise {
    /// Fulfils the promise.
    pub fn fulfil(mut self, outcome: Outcome) {
        if let Some(s) = self.0.take() {
            finish(&s, outcome);
        }
    }
}

fn finish(s: &State, outcome: Outcome) {
    *s.outcome.lock().unwrap_or_else(PoisonError::into_inner) = Some(outcome);
    s.done.store(true, Ordering::Release);
    s.notify.notify_waiters();
}

impl Drop for Promise {
    fn drop(&mut self) {
        if let Some(s) = self.0.take() {
            finish(&s, Err(Arc::from("the log stopped before writing")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_fulfilled_or_dropped_promise_ends_the_wait() {
        let (t, p) = pair();
        let waiter = tokio::spawn({
            let t = t.clone();
            async move {
                t.wait().await;
                t.outcome()
            }
        });
        std::thread::spawn(move || p.fulfil(Ok(vec![3])))
            .join()
            .unwrap();
        assert_eq!(waiter.await.unwrap(), Ok(vec![3]));

        let (t, p) = pair();
        drop(p);
        t.wait().await;
        assert!(t.outcome().is_err());
    }
}
