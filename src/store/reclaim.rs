//! Freeing big tables away from the serving threads.
//!
//! Dropping a slab walks every one of its slots (its drop glue reads each entry to
//! see whether it holds a record), so freeing the 56 MB of a million-slot table left
//! by a burst took ~15 ms — under the shard's lock, on the thread that serves
//! clients. A compaction instead hands the old tables here, and one background
//! thread of the process drops them; the shard's lock and the serving thread wait
//! only for the move of the live records.

use std::sync::OnceLock;
use std::sync::mpsc::{Sender, channel};

/// Anything that can be dropped on another thread.
type Junk = Box<dyn Send>;

/// The dropping thread's inbox; `None` if the thread could not be started (then
/// junk is dropped where it is handed in).
static INBOX: OnceLock<Option<Sender<Junk>>> = OnceLock::new();

/// Drops `junk` on the background thread.
pub fn drop_later(junk: Junk) {
    let inbox = INBOX.get_or_init(|| {
        let (tx, rx) = channel::<Junk>();
        std::thread::Builder::new()
            .name("store-reclaim".into())
            .spawn(move || {
                for junk in rx {
                    drop(junk);
                }
            })
            .ok()
            .map(|_| tx)
    });
    match inbox {
        Some(tx) => {
            // A send fails only if the thread is gone: then drop here.
            if let Err(returned) = tx.send(junk) {
                drop(returned.0);
            }
        }
        None => drop(junk),
    }
}
