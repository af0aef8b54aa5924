//! Saving the window to a file and loading it back, so that a restart loses no
//! acknowledged event still inside the window.
//!
//! # Format (little-endian)
//!
//! ```text
//! magic    8 bytes   "SAWIN\0\0\x04"   (versions 1, 2 and 3 are read too)
//! clock    u8        0 wall, 1 event, 2 manual: the clock of the server that saved it
//!                    (not in version 1)
//! window   u32       seconds, for the reader's information
//! now      i64       the clock when saved
//! log generation  u64       the window log's generation: the snapshot holds every event of
//!                    the log segments of lower generations (not in versions 1, 2)
//! records  u64       how many records follow
//! record   u16 user length, user bytes, u16 type length, type bytes,
//!          i64 second, u64 events,
//!          u16 low, u16 high, f64 × (low + high): the second's exact sum of value
//! crc      u32       CRC-32 of everything before it
//! ```
//!
//! One record per occupied second of each (user, type) pair: loading adds each as
//! `events` events with that sum, which rebuilds the per-user, per-type and total
//! counters and the sums exactly. A sum is stored as the store keeps it
//! (`store/exact.rs`): partials whose exact total is the sum, the high ones scaled by
//! 2^-128, so that a restart keeps every sum exact, `1e308 + 1e308` included.
//! Versions 1 to 3 hold one `f64` per record instead: the sum as it was rounded then.
//! Records whose second has left the window by load time are dropped.
//!
//! Writing goes to `<path>.tmp`, which is fsynced and then renamed over `<path>`, and
//! the directory is fsynced: a crash at any point leaves either the old snapshot or
//! the new one, never a mix.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::clock::ClockMode;
use crate::persist::{Addition, add, served_here};
use crate::store::{Exact, Store};

const MAGIC: &[u8; 8] = b"SAWIN\0\0\x04";
/// Version 3: one `f64` sum per record.
const MAGIC_V3: &[u8; 8] = b"SAWIN\0\0\x03";
/// Version 2: as version 3, without the log generation.
const MAGIC_V2: &[u8; 8] = b"SAWIN\0\0\x02";
/// Version 1: without the clock byte and the log generation.
const MAGIC_V1: &[u8; 8] = b"SAWIN\0\0\x01";
/// Most partials of either part a record may hold. Partials are nonoverlapping: each
/// owns a range of bit positions no other touches, and a double's bits lie between
/// 2^-1074 and 2^1024, so no expansion has more than 2,098 (one or two in practice).
/// More means the file is damaged.
pub(crate) const MAX_PARTS: u16 = 2100;
/// Bytes of the fixed header before the records (versions 3 and 4).
const HEADER: usize = 8 + 1 + 4 + 8 + 8 + 8;

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
    /// Records of users another node of the cluster serves now.
    pub foreign_records: u64,
}

/// Writes the window to `path`, saved by a server whose clock is `mode` at log
/// generation `generation`; returns the number of records.
pub fn save(
    store: &Store,
    mode: ClockMode,
    now: i64,
    generation: u64,
    path: &Path,
) -> Result<u64, SnapshotError> {
    let io_err = |error| SnapshotError::Io {
        path: path.to_path_buf(),
        error,
    };
    let mut body = Vec::with_capacity(HEADER + 4096);
    body.extend_from_slice(MAGIC);
    body.push(mode.to_byte());
    body.extend_from_slice(&store.window().to_le_bytes());
    body.extend_from_slice(&now.to_le_bytes());
    body.extend_from_slice(&generation.to_le_bytes());
    body.extend_from_slice(&0u64.to_le_bytes());
    let mut records = 0u64;
    store.export(now, &mut |user, ty, second, events, sum| {
        // Ids are at most `--max-id-len` bytes, whose ceiling is the u16 length.
        for id in [user, ty] {
            let len = u16::try_from(id.len()).unwrap_or(u16::MAX);
            body.extend_from_slice(&len.to_le_bytes());
            body.extend_from_slice(id.as_bytes().get(..usize::from(len)).unwrap_or_default());
        }
        body.extend_from_slice(&second.to_le_bytes());
        body.extend_from_slice(&events.to_le_bytes());
        // At most MAX_PARTS partials each (see there), so the lengths fit.
        let (low, high) = (sum.low(), sum.high());
        for part in [low, high] {
            let len = u16::try_from(part.len())
                .unwrap_or(MAX_PARTS)
                .min(MAX_PARTS);
            body.extend_from_slice(&len.to_le_bytes());
        }
        for part in [low, high] {
            for x in part.iter().take(usize::from(MAX_PARTS)) {
                body.extend_from_slice(&x.to_le_bytes());
            }
        }
        records += 1;
    });
    body[HEADER - 8..HEADER].copy_from_slice(&records.to_le_bytes());
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
    /// The sum of `value`, correctly rounded.
    pub sum: f64,
    /// The exact sum: partials of values below 2^960 ...
    pub low: Vec<f64>,
    /// ... and of the larger ones, scaled by 2^-128 (see `store/exact.rs`).
    pub high: Vec<f64>,
}

impl Record {
    /// The exact sum this record holds. Each partial is added as a value, so even a
    /// file whose partials were not written by this server sums exactly.
    fn exact(&self) -> Exact {
        Exact::from_untrusted(&self.low, &self.high)
    }
}

/// A snapshot file's contents.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The clock of the server that saved it (`None` for version 1 files).
    pub clock: Option<ClockMode>,
    pub saved_now: i64,
    /// The log generation it was saved at (0 for versions 1 and 2).
    pub log_gen: u64,
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
    if bytes.len() < HEADER - 9 + 4 {
        return Err(corrupt("truncated"));
    }
    let version = match bytes.get(..8) {
        Some(m) if m == MAGIC => 4,
        Some(m) if m == MAGIC_V3 => 3,
        Some(m) if m == MAGIC_V2 => 2,
        Some(m) if m == MAGIC_V1 => 1,
        _ => return Err(corrupt("not a ScalableAnalytics snapshot")),
    };
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    if crc32fast::hash(body).to_le_bytes() != crc {
        return Err(corrupt("checksum mismatch: truncated or damaged"));
    }
    let mut r = Reader { buf: body, pos: 8 };
    let clock = if version == 1 {
        None
    } else {
        let [b] = r.array().ok_or(corrupt("truncated"))?;
        Some(ClockMode::from_byte(b).ok_or(corrupt("unknown clock"))?)
    };
    let _window = u32::from_le_bytes(r.array().ok_or(corrupt("truncated"))?);
    let saved_now = i64::from_le_bytes(r.array().ok_or(corrupt("truncated"))?);
    let log_gen = if version >= 3 {
        u64::from_le_bytes(r.array().ok_or(corrupt("truncated"))?)
    } else {
        0
    };
    let count = u64::from_le_bytes(r.array().ok_or(corrupt("truncated"))?);
    // Each record takes at least 24 bytes (28 before version 4): a count the body
    // cannot hold is corrupt, and checking first keeps a damaged count from reserving
    // absurd memory.
    let least = if version >= 4 { 24 } else { 28 };
    if count > (body.len() / least) as u64 {
        return Err(corrupt("record count larger than the file"));
    }
    let mut records = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let rec = if version >= 4 {
            read_record(&mut r)
        } else {
            read_record_f64(&mut r)
        };
        records.push(rec.ok_or(corrupt("bad record"))?);
    }
    if r.pos != body.len() {
        return Err(corrupt("trailing bytes"));
    }
    Ok(Some(Snapshot {
        clock,
        saved_now,
        log_gen,
        records,
    }))
}

/// A record's user and type ids.
fn read_ids(r: &mut Reader<'_>) -> Option<(String, String)> {
    let mut id = || -> Option<String> {
        let len = u16::from_le_bytes(r.array()?);
        std::str::from_utf8(r.take(usize::from(len))?)
            .ok()
            .map(str::to_owned)
    };
    Some((id()?, id()?))
}

/// A version 4 record.
fn read_record(r: &mut Reader<'_>) -> Option<Record> {
    let (user, event_type) = read_ids(r)?;
    let second = i64::from_le_bytes(r.array()?);
    let events = u64::from_le_bytes(r.array()?);
    let nl = u16::from_le_bytes(r.array()?);
    let nh = u16::from_le_bytes(r.array()?);
    if nl > MAX_PARTS || nh > MAX_PARTS {
        return None;
    }
    let mut part =
        || -> Option<f64> { Some(f64::from_le_bytes(r.array()?)).filter(|x| x.is_finite()) };
    let low = (0..nl).map(|_| part()).collect::<Option<Vec<f64>>>()?;
    let high = (0..nh).map(|_| part()).collect::<Option<Vec<f64>>>()?;
    // High partials are scaled inputs, each far below 2^960; a larger one would not be
    // one this server wrote, and adding it could overflow.
    if high.iter().any(|x| x.abs() >= crate::store::exact_huge()) {
        return None;
    }
    let mut rec = Record {
        user,
        event_type,
        second,
        events,
        sum: 0.0,
        low,
        high,
    };
    rec.sum = rec.exact().round();
    Some(rec)
}

/// A record of versions 1 to 3: one `f64` sum.
fn read_record_f64(r: &mut Reader<'_>) -> Option<Record> {
    let (user, event_type) = read_ids(r)?;
    let second = i64::from_le_bytes(r.array()?);
    let events = u64::from_le_bytes(r.array()?);
    let sum = f64::from_le_bytes(r.array()?);
    Some(Record {
        user,
        event_type,
        second,
        events,
        sum,
        low: if sum.is_finite() && sum != 0.0 {
            vec![sum]
        } else {
            Vec::new()
        },
        high: Vec::new(),
    })
}

/// Adds a snapshot's records to `store` at `now`; records whose second is no longer
/// inside the window are dropped, and in cluster mode those of users another node
/// serves now ([`served_here`]).
pub fn apply(
    store: &Store,
    cluster: Option<&crate::cluster::Cluster>,
    now: i64,
    snapshot: &Snapshot,
) -> Loaded {
    let mut loaded = Loaded {
        saved_now: snapshot.saved_now,
        ..Loaded::default()
    };
    let sums: Vec<Exact> = snapshot.records.iter().map(Record::exact).collect();
    let mut adds = Vec::with_capacity(snapshot.records.len());
    for (rec, sum) in snapshot.records.iter().zip(&sums) {
        let in_window = rec.second > now - i64::from(store.window()) && rec.second <= now;
        let second = u32::try_from(rec.second).ok().filter(|_| in_window);
        let Some(second) = second.filter(|_| rec.events > 0) else {
            loaded.dropped_records += 1;
            continue;
        };
        if !served_here(cluster, &rec.user) {
            loaded.foreign_records += 1;
            continue;
        }
        adds.push(Addition {
            user: &rec.user,
            event_type: &rec.event_type,
            second,
            value: Some(rec.sum),
            exact: Some(sum),
            count: rec.events,
            now,
        });
    }
    let mut results = Vec::new();
    for chunk in adds.chunks(8192) {
        add(store, chunk, true, &mut results);
        for (r, a) in results.iter().zip(chunk) {
            if r.is_ok() {
                loaded.records += 1;
                loaded.events += a.count;
            } else {
                loaded.dropped_records += 1;
            }
        }
    }
    loaded
}

/// The configured snapshot file: where it is, and the lock that keeps SAVE and the
/// save at shutdown from writing at once.
#[derive(Debug, Default)]
pub struct SnapshotFile {
    path: Option<PathBuf>,
    saving: Mutex<()>,
    /// Set by `SHUTDOWN NOSAVE`: stop without writing the snapshot.
    skip_at_shutdown: AtomicBool,
}

impl SnapshotFile {
    /// The snapshot at `path`, if one is configured.
    pub fn new(path: Option<PathBuf>) -> Self {
        SnapshotFile {
            path,
            ..SnapshotFile::default()
        }
    }

    /// `SAVE`: writes the window as of `now` (of a clock in `mode`) to the
    /// configured file, at log generation `generation`.
    pub fn save(
        &self,
        store: &Store,
        mode: ClockMode,
        now: i64,
        generation: u64,
    ) -> Result<(), SnapshotError> {
        let path = self.path.as_ref().ok_or(SnapshotError::NotConfigured)?;
        let _one_at_a_time = self.saving.lock().unwrap_or_else(PoisonError::into_inner);
        let records = save(store, mode, now, generation, path)?;
        tracing::info!(path = %path.display(), records, "snapshot saved");
        Ok(())
    }

    /// Whether a snapshot file is configured.
    pub fn configured(&self) -> bool {
        self.path.is_some()
    }

    /// The snapshot file, if one is configured.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// `SHUTDOWN NOSAVE`: the stop that follows writes nothing.
    pub fn skip_at_shutdown(&self) {
        self.skip_at_shutdown.store(true, Ordering::Relaxed);
    }

    /// Whether the stop should write the snapshot.
    pub fn save_at_shutdown(&self) -> bool {
        self.path.is_some() && !self.skip_at_shutdown.load(Ordering::Relaxed)
    }
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

/// Checks at start that a snapshot can be written at `path` (its directory exists
/// and is writable), so that a typo is found now, not when the window is lost at
/// shutdown.
pub fn check_writable(path: &Path) -> Result<(), SnapshotError> {
    let tmp = path.with_extension("tmp");
    let probe = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp);
    match probe {
        Ok(_) => {
            let _ = fs::remove_file(&tmp);
            Ok(())
        }
        Err(error) => Err(SnapshotError::Io {
            path: path.to_path_buf(),
            error,
        }),
    }
}

/// Why a snapshot must not be loaded by a server with clock `mode` at `now`: every
/// record would fall outside the window because it was saved under another clock
/// (loading it would give an empty window, and the next save would overwrite it).
pub fn clock_mismatch(
    snapshot: &Snapshot,
    mode: ClockMode,
    now: i64,
    window: u32,
    path: &Path,
) -> Option<String> {
    let saved = snapshot.clock.filter(|&m| m != mode)?;
    let inside = |r: &Record| r.second > now - i64::from(window) && r.second <= now;
    if snapshot.records.is_empty() || snapshot.records.iter().any(inside) {
        return None;
    }
    Some(format!(
        "snapshot {} was saved with --clock {} (its clock at {}); under --clock {} (now {now}) \
         all {} of its records are outside the window, so loading it would empty the window \
         and the next save would overwrite it. Start with --clock {} to resume it, or move \
         the file away to start with an empty window",
        path.display(),
        saved.name(),
        snapshot.saved_now,
        mode.name(),
        snapshot.records.len(),
        saved.name(),
    ))
}
