//! Start-up: the segments after the snapshot, counted again, in the background.
//!
//! The server listens while this runs; clients get `-LOADING` for everything not
//! flagged `loading` (INFO, PING, ...). Order of work:
//!
//! 1. Before the store exists (in `build`), with the event or manual clock: the
//!    clock resumes at the newest `now` the log holds ([`newest_now`]).
//! 2. Here, every segment, by a few threads at once (one segment each at a time):
//!    its frames are checked first (CRC), then decoded in batches of [`BATCH`]
//!    events; each batch is ordered by user (a user's events then touch its records
//!    together, while they are in the cache), the events of one (user, type, second)
//!    in a row are added up while their values add up exactly in one double (else
//!    they are counted one by one, so that sums stay exact: `store/exact.rs`), and
//!    the batch is counted against the resumed `now` — what has left the window is
//!    not counted.
//!
//! A torn last frame is dropped with a warning and counted (INFO
//! `aof_load_torn_frames`). Damage anywhere else stops the server, naming the file
//! and the offset, unless `--aof-skip-damaged yes`: then the whole segment is left
//! out and renamed `*.damaged`.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use super::format::{self, Header, Names, Next};
use super::writer::Closed;
use super::{Control, Log, MANIFEST};
use crate::persist::{Addition, add, served_here};
use crate::shared::Shared;
use crate::store::{Exact, two_sum};

/// Events counted per call into the store while replaying.
const CHUNK: usize = 8192;
/// Events decoded, ordered by user and counted together: the larger, the more of a
/// user's events are counted in a row (one cache miss for several); 4M decoded
/// events take 128 MB while they wait.
const BATCH: usize = 4 << 20;
/// Most threads counting at once.
const MAX_THREADS: usize = 8;

/// A segment file found in the log directory.
#[derive(Debug, Clone)]
pub struct SegFile {
    pub path: PathBuf,
    pub generation: u64,
    pub seq: u64,
    pub bytes: u64,
}

/// The segments to replay, oldest first.
#[derive(Debug, Default)]
pub struct Plan {
    pub segments: Vec<SegFile>,
}

/// The newest `now` the segments hold: read from the newest segment that has a
/// valid header (its header carries the newest `now` written before it, its frames
/// the rest). `None` when no segment has one.
pub fn newest_now(segments: &[SegFile]) -> Option<i64> {
    segments.iter().rev().find_map(|seg| {
        let bytes = read_file(&seg.path).ok()?;
        check(&bytes).ok().map(|(_, _, _, now)| now)
    })
}

/// `log-<generation>-<seq>.sal`.
fn parse_name(name: &str) -> Option<(u64, u64)> {
    let rest = name.strip_prefix("log-")?.strip_suffix(".sal")?;
    let (generation, seq) = rest.split_once('-')?;
    Some((generation.parse().ok()?, seq.parse().ok()?))
}

/// The segments in `dir`, oldest first (none when it does not exist).
pub fn list(dir: &Path) -> io::Result<Vec<SegFile>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some((generation, seq)) = name.to_str().and_then(parse_name) else {
            continue;
        };
        out.push(SegFile {
            path: entry.path(),
            generation,
            seq,
            bytes: entry.metadata().map_or(0, |m| m.len()),
        });
    }
    out.sort_by_key(|s| (s.generation, s.seq));
    Ok(out)
}

/// The oldest generation to replay, from the manifest (0: no manifest).
pub fn read_manifest(dir: &Path) -> Result<u64, String> {
    let path = dir.join(MANIFEST);
    match fs::read_to_string(&path) {
        Ok(text) => text
            .trim()
            .strip_prefix("min-gen ")
            .and_then(|n| n.trim().parse().ok())
            .ok_or_else(|| format!("log manifest {} is damaged: {text:?}", path.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(format!("log manifest {}: {e}", path.display())),
    }
}

/// Writes the manifest: generations below `generation` are never replayed (temporary
/// file, fsync, rename, directory fsync).
pub fn write_manifest(dir: &Path, generation: u64) -> Result<(), String> {
    let path = dir.join(MANIFEST);
    let tmp = dir.join("manifest.tmp");
    let err = |e: io::Error| format!("log manifest {}: {e}", path.display());
    {
        let mut f = File::create(&tmp).map_err(err)?;
        io::Write::write_all(&mut f, format!("min-gen {generation}\n").as_bytes()).map_err(err)?;
        f.sync_all().map_err(err)?;
    }
    fs::rename(&tmp, &path).map_err(err)?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Checks at start that the log directory takes new files.
pub fn check_writable(dir: &Path) -> Result<(), String> {
    let probe = dir.join("probe.tmp");
    match File::create(&probe) {
        Ok(_) => {
            let _ = fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(format!(
            "the log directory {} is not writable: {e} (check --dir)",
            dir.display()
        )),
    }
}

/// What reading one segment found.
#[derive(Debug, Default)]
struct Counted {
    events: u64,
    counted: u64,
    max_second: i64,
    max_now: i64,
    torn: bool,
}

/// Why a segment cannot be replayed.
#[derive(Debug)]
struct Damage {
    offset: usize,
    why: String,
}

fn read_file(path: &Path) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Checks a segment's frames without counting anything: the end of its whole
/// frames, whether a torn frame follows, and the newest `now`.
fn check(bytes: &[u8]) -> Result<(Header, usize, bool, i64), Damage> {
    let Some(header) = Header::decode(bytes) else {
        return Err(Damage {
            offset: 0,
            why: "bad segment header".to_string(),
        });
    };
    let mut pos = format::HEADER_LEN;
    let mut max_now = header.now;
    loop {
        match format::next_frame(bytes, pos) {
            Next::Frame { body, end } => {
                let mut p = 0;
                if let Some(now) =
                    format::get_varint(body, &mut p).and_then(|n| i64::try_from(n).ok())
                {
                    max_now = max_now.max(now);
                }
                pos = end;
            }
            Next::End => return Ok((header, pos, false, max_now)),
            Next::Torn => return Ok((header, pos, true, max_now)),
            Next::Damaged(why) => {
                return Err(Damage {
                    offset: pos,
                    why: why.to_string(),
                });
            }
        }
    }
}

/// Whether a file is a segment that never got its header (a crash right after it
/// was created): shorter than a header and all zeros, or empty.
fn never_written(bytes: &[u8]) -> bool {
    bytes.len() < format::HEADER_LEN && bytes.iter().all(|&b| b == 0)
}

/// An event (or several of one second) decoded from a segment, by refs.
#[derive(Debug, Clone, Copy, Default)]
struct Rec {
    user: u32,
    ty: u32,
    second: u32,
    has_value: bool,
    count: u64,
    sum: f64,
    /// 1 + the index of the record's exact sum in the batch's `exact` (0: `sum` is
    /// the exact sum).
    exact: u32,
}

/// Counts the whole frames of a checked segment (up to `end`) at `now`, a batch of
/// [`BATCH`] events at a time.
fn count(
    shared: &Shared,
    bytes: &[u8],
    end: usize,
    now: i64,
    threads: usize,
) -> Result<Counted, Damage> {
    let mut r = Counted {
        max_second: i64::MIN,
        ..Counted::default()
    };
    let mut names = Names::default();
    let mut recs: Vec<Rec> = Vec::new();
    // The exact sums of the batch's aggregate records (`Rec::exact`).
    let mut exact: Vec<Exact> = Vec::new();
    // The ordered copy, kept from batch to batch (fresh pages each time were a tenth
    // of the replay's time, in page faults).
    let mut sorted: Vec<Rec> = Vec::new();
    let mut pos = format::HEADER_LEN;
    while pos < end {
        if shared.shutting_down() {
            break;
        }
        let Next::Frame { body, end: next } = format::next_frame(bytes, pos) else {
            break;
        };
        let mut bad = None;
        let decoded = format::decode_frame(body, &mut names, &mut |rec| {
            let Ok(second) = u32::try_from(rec.second) else {
                bad = Some("event second out of range");
                return;
            };
            r.events += rec.count;
            r.max_second = r.max_second.max(rec.second);
            let exact_ref = match rec.exact {
                Some(parts) => {
                    exact.push(parts.exact());
                    u32::try_from(exact.len()).unwrap_or(0)
                }
                None => 0,
            };
            recs.push(Rec {
                user: rec.user_ref,
                ty: rec.type_ref,
                second,
                has_value: rec.value.is_some(),
                count: rec.count,
                sum: rec.value.unwrap_or(0.0),
                exact: exact_ref,
            });
        });
        if let Some(why) = bad.or(decoded.err()) {
            return Err(Damage {
                offset: pos,
                why: why.to_string(),
            });
        }
        if recs.len() >= BATCH {
            r.counted += apply(shared, &names, &mut recs, &mut sorted, &exact, now, threads);
            exact.clear();
        }
        pos = next;
    }
    r.counted += apply(shared, &names, &mut recs, &mut sorted, &exact, now, threads);
    Ok(r)
}

/// Counts a batch of decoded events: ordered by user (each user's events then
/// touch its records once, while they are in the cache, and in time order), the
/// events of one (user, type, second) in a row added up, then split between
/// `threads` threads at user boundaries. Returns the events counted (inside the
/// window).
fn apply(
    shared: &Shared,
    names: &Names<'_>,
    recs: &mut Vec<Rec>,
    sorted: &mut Vec<Rec>,
    exact: &[Exact],
    now: i64,
    threads: usize,
) -> u64 {
    if recs.is_empty() {
        return 0;
    }
    by_user(recs, names.users(), sorted);
    recs.clear();
    let per = sorted.len().div_ceil(threads.max(1));
    let mut parts = Vec::with_capacity(threads);
    let mut rest: &[Rec] = sorted;
    while !rest.is_empty() {
        // Cut after `per`, at the next change of user.
        let mut cut = per.min(rest.len());
        while cut < rest.len() && rest[cut].user == rest[cut - 1].user {
            cut += 1;
        }
        let (part, tail) = rest.split_at(cut);
        parts.push(part);
        rest = tail;
    }
    if let [part] = parts[..] {
        return apply_part(shared, names, part, exact, now);
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| scope.spawn(move || apply_part(shared, names, part, exact, now)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    })
}

fn apply_part(shared: &Shared, names: &Names<'_>, part: &[Rec], exact: &[Exact], now: i64) -> u64 {
    let mut adds: Vec<Addition<'_>> = Vec::with_capacity(CHUNK);
    let mut results = Vec::with_capacity(CHUNK);
    let mut counted = 0;
    let cluster = shared.cluster.as_deref();
    let mut foreign = 0u64;
    for chunk in part.chunks(CHUNK) {
        adds.clear();
        adds.extend(chunk.iter().filter_map(|r| {
            let user = names.user(r.user)?;
            if !served_here(cluster, user) {
                foreign += r.count;
                return None;
            }
            Some(Addition {
                user,
                event_type: names.ty(r.ty)?,
                second: r.second,
                value: r.has_value.then_some(r.sum),
                exact: (r.exact as usize).checked_sub(1).and_then(|i| exact.get(i)),
                count: r.count,
                now,
            })
        }));
        add(&shared.store, &adds, true, &mut results);
        counted += results
            .iter()
            .zip(&adds)
            .filter(|(r, _)| r.is_ok())
            .map(|(_, a)| a.count)
            .sum::<u64>();
    }
    if foreign > 0 {
        tracing::warn!(
            events = foreign,
            "log events of users served by other nodes not counted"
        );
    }
    counted
}

/// `recs` ordered by user ref into `out` (stable: each user's events stay in order;
/// a counting sort, the refs being dense), with runs of one (user, type, second)
/// added up.
fn by_user(recs: &[Rec], users: usize, out: &mut Vec<Rec>) {
    let mut starts = vec![0usize; users + 1];
    for r in recs {
        if let Some(n) = starts.get_mut(r.user as usize + 1) {
            *n += 1;
        }
    }
    for i in 1..starts.len() {
        starts[i] += starts[i - 1];
    }
    out.clear();
    out.resize(recs.len(), Rec::default());
    for r in recs {
        if let Some(i) = starts.get_mut(r.user as usize)
            && let Some(slot) = out.get_mut(*i)
        {
            *slot = *r;
            *i += 1;
        }
    }
    out.dedup_by(|later, kept| {
        // Added up only while the sum stays exact in one double: an error TwoSum
        // reports (or an exact sum already in parts) keeps them apart.
        let (sum, err) = two_sum(kept.sum, later.sum);
        let same = later.user == kept.user
            && later.ty == kept.ty
            && later.second == kept.second
            && kept.exact == 0
            && later.exact == 0
            && err == 0.0;
        if same {
            kept.count += later.count;
            kept.sum = sum;
            kept.has_value |= later.has_value;
        }
        same
    });
}

/// Replays `plan` into the store (see the module doc), then hands the segments it
/// kept to the log thread and lets clients in.
pub fn run(shared: Arc<Shared>, plan: Plan) {
    let log = &shared.log;
    let started = Instant::now();
    log.stats
        .loading_started
        .store(crate::clock::wall_seconds(), Ordering::Relaxed);
    let total: u64 = plan.segments.iter().map(|s| s.bytes).sum();
    log.stats.loading_total.store(total, Ordering::Relaxed);
    tracing::info!(
        segments = plan.segments.len(),
        bytes = total,
        "loading the log"
    );

    // The clock already resumed at the log's newest `now` (see `newest_now`).
    let Some((mut kept, totals)) = replay_all(&shared, &plan, shared.clock.now()) else {
        // Stopped (damage, or a shutdown while loading): the server does not serve
        // this window, and saves no snapshot of it.
        return;
    };
    kept.sort_by_key(|c: &Closed| c.path.clone());
    let (events, counted, seen_now) = totals;
    log.stats.replayed_events.store(counted, Ordering::Relaxed);
    let bytes: u64 = kept.iter().map(|c| c.bytes).sum();
    log.stats.current_size.store(bytes, Ordering::Relaxed);
    log.stats
        .segments
        .store(kept.len() as u64, Ordering::Relaxed);
    if let Some(tx) = log
        .control
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .as_ref()
    {
        let _ = tx.send(Control::Loaded(kept, seen_now));
    }
    log.loading.store(false, Ordering::Relaxed);
    tracing::info!(
        events,
        counted,
        outside_window = events - counted.min(events),
        torn = log.stats.torn.load(Ordering::Relaxed),
        skipped = log.stats.skipped.load(Ordering::Relaxed),
        seconds = format!("{:.2}", started.elapsed().as_secs_f64()),
        "log loaded"
    );
}

/// Replays every segment of `plan` at `now`: the segments kept, and (events,
/// counted, newest `now`); `None` when stopped by damage or a shutdown.
fn replay_all(shared: &Shared, plan: &Plan, now: i64) -> Option<(Vec<Closed>, (u64, u64, i64))> {
    let log = &shared.log;
    let cores = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_THREADS);
    // One segment per thread at a time (decoding is then spread too); when fewer
    // segments than cores remain, a segment's batches are counted by several.
    let threads = cores.min(plan.segments.len()).max(1);
    let inner = (cores / threads).max(1);
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let kept = Mutex::new(Vec::new());
    let totals = Mutex::new((0u64, 0u64, i64::MIN));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    if failed.load(Ordering::Relaxed) || shared.shutting_down() {
                        return;
                    }
                    let Some(seg) = plan.segments.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        return;
                    };
                    match replay_one(shared, seg, now, inner) {
                        Ok(Some((c, r))) => {
                            let mut t = totals.lock().unwrap_or_else(PoisonError::into_inner);
                            t.0 += r.events;
                            t.1 += r.counted;
                            t.2 = t.2.max(r.max_now);
                            kept.lock().unwrap_or_else(PoisonError::into_inner).push(c);
                        }
                        Ok(None) => {}
                        Err(why) => {
                            failed.store(true, Ordering::Relaxed);
                            tracing::error!("{why}");
                            log.set_fatal(why);
                            shared.begin_shutdown();
                            return;
                        }
                    }
                    log.stats
                        .loading_done
                        .fetch_add(seg.bytes, Ordering::Relaxed);
                }
            });
        }
    });
    if failed.load(Ordering::Relaxed) || shared.shutting_down() {
        return None;
    }
    let totals = totals.into_inner().unwrap_or_else(PoisonError::into_inner);
    let kept = kept.into_inner().unwrap_or_else(PoisonError::into_inner);
    Some((kept, totals))
}

/// Replays one segment: the segment as kept (none when it was empty) and what it
/// held, or why the server must stop.
fn replay_one(
    shared: &Shared,
    seg: &SegFile,
    now: i64,
    threads: usize,
) -> Result<Option<(Closed, Counted)>, String> {
    let log: &Log = &shared.log;
    let path = seg.path.display();
    let bytes = read_file(&seg.path).map_err(|e| format!("cannot read log segment {path}: {e}"))?;
    if never_written(&bytes) {
        tracing::warn!(%path, "log segment without a header (a crash as it was created): removed");
        let _ = fs::remove_file(&seg.path);
        return Ok(None);
    }
    let checked = check(&bytes).and_then(|(h, end, torn, max_now)| {
        count(shared, &bytes, end, now, threads).map(|r| (h, end, torn, max_now, r))
    });
    let (header, end, torn, max_now, mut r) = match checked {
        Ok(x) => x,
        Err(d) if log.skip_damaged => {
            let bad = seg.path.with_extension("damaged");
            tracing::warn!(%path, offset = d.offset, why = %d.why, moved_to = %bad.display(),
                "log segment damaged: skipped (--aof-skip-damaged yes)");
            let _ = fs::rename(&seg.path, &bad);
            log.stats.skipped.fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        }
        Err(d) => {
            return Err(format!(
                "log segment {path} is damaged at offset {} ({}); move it away, or start with --aof-skip-damaged yes to leave it out",
                d.offset, d.why
            ));
        }
    };
    if header.generation != seg.generation || header.seq != seg.seq {
        tracing::warn!(%path, generation = header.generation, seq = header.seq, "log segment's header does not match its name");
    }
    r.torn = torn;
    r.max_now = max_now;
    if torn {
        tracing::warn!(%path, offset = end, "torn last frame of a log segment dropped (a crash cut its write)");
        log.stats.torn.fetch_add(1, Ordering::Relaxed);
        // Cut it off, so the next frame written after it is not behind garbage.
        if let Ok(f) = fs::OpenOptions::new().write(true).open(&seg.path) {
            let _ = f.set_len(end as u64);
        }
    }
    Ok(Some((
        Closed {
            path: seg.path.clone(),
            generation: seg.generation,
            max_second: r.max_second,
            bytes: end as u64,
        },
        r,
    )))
}
