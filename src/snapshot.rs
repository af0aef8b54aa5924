//! Saving the window to a file and loading it back, so that a restart loses no
//! acknowledged event still inside the window.
//!
//! # Format (little-endian)
//!
//! ```text
//! magic    8 bytes   "SAWIN\0\0\x01"
//! window   u32       seconds, for the reader's information
//! now      i64       the clock when saved
//! records  u64       how many records follow
//! record   u16 user length, user bytes, u16 type length, type bytes,
//!          i64 second, u64 events, f64 sum of value
//! crc      u32       CRC-32 of everything before it
//! ```
//!
//! One record per occupied second of each (user, type) pair: loading adds each as
//! `events` events with that sum, which rebuilds the per-user, per-type and total
//! counters and the sums exactly. Records whose second has left the window by load
//! time are dropped.
//!
//! Writing goes to `<path>.tmp`, which is fsynced and then renamed over `<path>`, and
//! the directory is fsynced: a crash at any point leaves either the old snapshot or
//! the new one, never a mix.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::config::ClockMode;
use crate::state::Shared;
use crate::store::{Ingest, Store};

const MAGIC: &[u8; 8] = b"SAWIN\0\0\x01";
/// Bytes of the fixed header before the records.
const HEADER: usize = 8 + 4 + 8 + 8;

/// Why a snapshot could not be written or read.
#[derive(Debug)]
pub enum SnapshotError {
    Io { path: PathBuf, error: io::Error },
    Corrupt { path: PathBuf, why: &'static str },
    NotConfigured,
}

impl std::fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnapshotError::Io { path, error } => {
                write!(f, "snapshot {}: {error}", path.display())
            }
            SnapshotError::Corrupt { path, why } => write!(
                f,
                "snapshot {} is corrupt ({why}); move it away to start with an empty window",
                path.display()
            ),
            SnapshotError::NotConfigured => {
                write!(
                    f,
                    "no snapshot file configured (start with --snapshot <path>)"
                )
            }
        }
    }
}

impl std::error::Error for SnapshotError {}

/// What a load found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Loaded {
    pub saved_now: i64,
    pub records: u64,
    pub events: u64,
    pub dropped_records: u64,
}

/// Writes the window to `path`; returns the number of records.
pub fn save(store: &Store, now: i64, path: &Path) -> Result<u64, SnapshotError> {
    let io_err = |error| SnapshotError::Io {
        path: path.to_path_buf(),
        error,
    };
    let mut body = Vec::with_capacity(HEADER + 4096);
    body.extend_from_slice(MAGIC);
    body.extend_from_slice(&store.window().to_le_bytes());
    body.extend_from_slice(&now.to_le_bytes());
    body.extend_from_slice(&0u64.to_le_bytes());
    let mut records = 0u64;
    store.export(now, &mut |user, ty, second, events, sum| {
        // Ids are at most `--max-id-len` bytes; the u16 length caps what a snapshot
        // can hold, and a longer id (only with a larger flag) is cut rather than
        // corrupting the file.
        for id in [user, ty] {
            let b = &id.as_bytes()[..id.len().min(u16::MAX as usize)];
            body.extend_from_slice(&(b.len() as u16).to_le_bytes());
            body.extend_from_slice(b);
        }
        body.extend_from_slice(&second.to_le_bytes());
        body.extend_from_slice(&events.to_le_bytes());
        body.extend_from_slice(&sum.to_le_bytes());
        records += 1;
    });
    body[20..28].copy_from_slice(&records.to_le_bytes());
    let crc = crc32fast::hash(&body);
    body.extend_from_slice(&crc.to_le_bytes());

    let tmp = path.with_extension("tmp");
    {
        let file = File::create(&tmp).map_err(io_err)?;
        let mut w = BufWriter::new(file);
        w.write_all(&body).map_err(io_err)?;
        let file = w.into_inner().map_err(|e| io_err(e.into_error()))?;
        file.sync_all().map_err(io_err)?;
    }
    fs::rename(&tmp, path).map_err(io_err)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // The rename is durable only once the directory entry is.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(records)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.buf.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N).and_then(|s| s.try_into().ok())
    }
}

/// One saved (user, type, second).
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub user: String,
    pub event_type: String,
    pub second: i64,
    pub events: u64,
    pub sum: f64,
}

/// A snapshot file's contents.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub saved_now: i64,
    pub records: Vec<Record>,
}

/// Reads `path`. A missing file is `Ok(None)` (an empty window); a truncated or
/// corrupt one is an error, so that the server refuses to start rather than silently
/// lose what the file held.
pub fn read(path: &Path) -> Result<Option<Snapshot>, SnapshotError> {
    let corrupt = |why| SnapshotError::Corrupt {
        path: path.to_path_buf(),
        why,
    };
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut f) => f
            .read_to_end(&mut bytes)
            .map_err(|error| SnapshotError::Io {
                path: path.to_path_buf(),
                error,
            })?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(SnapshotError::Io {
                path: path.to_path_buf(),
                error,
            });
        }
    };
    if bytes.len() < HEADER + 4 {
        return Err(corrupt("truncated"));
    }
    if &bytes[..8] != MAGIC {
        return Err(corrupt("not a ScalableAnalytics snapshot"));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    if crc32fast::hash(body).to_le_bytes() != crc {
        return Err(corrupt("checksum mismatch: truncated or damaged"));
    }
    let mut r = Reader { buf: body, pos: 8 };
    let _window = u32::from_le_bytes(r.array().ok_or(corrupt("truncated"))?);
    let saved_now = i64::from_le_bytes(r.array().ok_or(corrupt("truncated"))?);
    let count = u64::from_le_bytes(r.array().ok_or(corrupt("truncated"))?);
    // Each record takes at least 28 bytes: a count the body cannot hold is corrupt,
    // and checking first keeps a damaged count from reserving absurd memory.
    if count > (body.len() / 28) as u64 {
        return Err(corrupt("record count larger than the file"));
    }
    let mut records = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let mut id = || -> Option<String> {
            let len = u16::from_le_bytes(r.array()?);
            std::str::from_utf8(r.take(usize::from(len))?)
                .ok()
                .map(str::to_owned)
        };
        let (Some(user), Some(event_type)) = (id(), id()) else {
            return Err(corrupt("bad record"));
        };
        let (Some(second), Some(events), Some(sum)) = (r.array(), r.array(), r.array()) else {
            return Err(corrupt("bad record"));
        };
        records.push(Record {
            user,
            event_type,
            second: i64::from_le_bytes(second),
            events: u64::from_le_bytes(events),
            sum: f64::from_le_bytes(sum),
        });
    }
    if r.pos != body.len() {
        return Err(corrupt("trailing bytes"));
    }
    Ok(Some(Snapshot { saved_now, records }))
}

/// Adds a snapshot's records to `store` at `now`; records whose second is no longer
/// inside the window are dropped.
pub fn apply(store: &Store, now: i64, snapshot: &Snapshot) -> Loaded {
    let mut loaded = Loaded {
        saved_now: snapshot.saved_now,
        ..Loaded::default()
    };
    for rec in &snapshot.records {
        let in_window = rec.second > now - i64::from(store.window()) && rec.second <= now;
        let second = u32::try_from(rec.second).ok().filter(|_| in_window);
        let Some(second) = second.filter(|_| rec.events > 0) else {
            loaded.dropped_records += 1;
            continue;
        };
        let ev = Ingest {
            user: &rec.user,
            event_type: &rec.event_type,
            second,
            value: Some(rec.sum),
            now,
            count: rec.events,
        };
        if store.add(&ev).is_ok() {
            loaded.records += 1;
            loaded.events += rec.events;
        } else {
            loaded.dropped_records += 1;
        }
    }
    loaded
}

/// `SAVE`: writes the configured snapshot now.
pub fn save_configured(shared: &Shared) -> Result<(), SnapshotError> {
    let path = shared
        .config
        .snapshot
        .as_ref()
        .ok_or(SnapshotError::NotConfigured)?;
    let _one_at_a_time = shared
        .saving
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let now = shared.clock.now();
    let records = save(&shared.store, now, path)?;
    tracing::info!(path = %path.display(), records, "snapshot saved");
    Ok(())
}

/// The clock a loaded snapshot resumes at: the event and manual clocks continue from
/// the saved `now` (so a replay or simulation picks up where it stopped); the wall
/// clock is the wall clock.
pub fn resume_now(mode: ClockMode, wall_now: i64, saved_now: i64) -> i64 {
    match mode {
        ClockMode::Wall => wall_now,
        ClockMode::Event | ClockMode::Manual => saved_now.max(0),
    }
}
