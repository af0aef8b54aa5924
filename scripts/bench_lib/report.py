"""The results as text: the console table, docs/benchmarks.md and a hand-written SVG
bar chart of the throughput ratios."""

from __future__ import annotations

import math
from html import escape as _escape
from pathlib import Path


def escape(text: str) -> str:
    return _escape(text, quote=False)


BEGIN = "<!-- bench:begin (written by scripts/bench; edit outside these markers) -->"
END = "<!-- bench:end -->"


# -- numbers ---------------------------------------------------------------------
def rate(v: float | None) -> str:
    if v is None:
        return "—"
    if v >= 1e6:
        return f"{v / 1e6:.2f}M/s"
    if v >= 1e3:
        return f"{v / 1e3:.1f}k/s"
    return f"{v:.0f}/s"


def ns(v: float | None) -> str:
    """A CPU time per operation, given in nanoseconds."""
    if v is None:
        return "—"
    return f"{v / 1000:.1f} µs" if v >= 10_000 else f"{v:,.0f} ns"


def ms(v: float | None) -> str:
    return "—" if v is None else f"{v:.3f} ms"


def nbytes(v: float | None) -> str:
    if v is None:
        return "—"
    if v >= 10 * 1024:
        return f"{v / 1024:.1f} KiB"
    return f"{v:.0f} B"


def ratio(v: float | None) -> str:
    if v is None or not math.isfinite(v):
        return "—"
    if v >= 10:
        return f"{v:.1f}×"
    return f"{v:.2f}×"


def seconds(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v * 1000:.0f} ms" if v < 10 else f"{v:.1f} s"


def met_text(met: bool | None) -> str:
    return {True: "✅ yes", False: "❌ no", None: "—"}[met]


# -- console ---------------------------------------------------------------------
def console_table(rows: list[dict]) -> str:
    head = ["what", "ours", "Redis / peer", "ratio", "target", "met?"]
    body = [
        [r["what"], r["ours"], r["theirs"], r["ratio"], r["target"],
         {True: "yes", False: "NO", None: "-"}[r["met"]]]
        for r in rows
    ]
    widths = [max(len(str(x[i])) for x in [head] + body) for i in range(len(head))]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(h.ljust(w) for h, w in zip(head, widths)), line]
    for b in body:
        out.append("  ".join(str(x).ljust(w) for x, w in zip(b, widths)))
    return "\n".join(out)


# -- markdown --------------------------------------------------------------------
def markdown(res: dict, svg_name: str) -> str:
    m = res["machine"]
    s = res["settings"]
    out: list[str] = []
    w = out.append
    w(f"## Results ({res['mode']} mode, {m['date']})")
    w("")
    if res["mode"] != "full":
        w("> **Quick mode**: one short round, smaller data sets — a smoke test of the "
          "harness, not numbers to draw conclusions from. Run `scripts/bench` (full mode) "
          "for the real table.")
        w("")
    verdict = "all checks passed" if res["correctness"]["ok"] else "**FAILED — see below**"
    w(f"Correctness: every event redis-benchmark and the fills sent was counted by both "
      f"servers — {verdict}.")
    w("")
    w(f"![server CPU per operation and throughput, ours ÷ theirs]({svg_name})")
    w("")
    w("| what | ours | Redis / Lua peer | ratio | target | met? |")
    w("|---|---|---|---|---|---|")
    for r in res["rows"]:
        w(f"| {r['what']} | {r['ours']} | {r['theirs']} | {r['ratio']} | {r['target']} | "
          f"{met_text(r['met'])} |")
    w("")
    w("Server CPU per operation, throughput and latency are medians over the rounds; a "
      "ratio is ours ÷ theirs of those medians (for CPU, latency and memory lower is "
      "better, so the target is an upper bound). The spread of the per-round ratios is in "
      "the raw runs below.")
    w("")
    w("### Machine")
    w("")
    w("| | |")
    w("|---|---|")
    for k in ("date", "git_commit", "nproc", "cpu_model", "kernel", "memory", "redis",
              "rustc", "load_before", "load_after", "elapsed"):
        if k in m:
            w(f"| {k.replace('_', ' ')} | {escape(str(m[k]))} |")
    w("")
    loads = res.get("round_loads") or []
    if loads:
        w("Load average (1 min) at the start of each round: "
          + ", ".join(f"{x:.2f}" for x in loads) + ".")
        w("")
    if loads and m.get("nproc") and max(loads) > m["nproc"]:
        w(f"> ⚠ The load average exceeded the {m['nproc']} cores during the run: other "
          "processes competed for the CPU, so single rounds are noisy (see the per-round "
          "ratios below). Medians damp this, but compare runs made in similar conditions.")
        w("")
    w("### How it was measured")
    w("")
    w(f"- Command: `{s['command']}`; {s['rounds']} interleaved round(s); "
      f"runs sized for ≈ {s['run_seconds']} s each (shortest measured run: "
      f"{s['shortest_run']:.2f} s).")
    w(f"- Client for both servers: `redis-benchmark` (Redis {m.get('redis_benchmark', '?')}), "
      f"`-c {s['clients']} -r {s['keyspace']}`, `-P 1/16/64`, `--csv` (p50/p99/max from its "
      f"histogram). Each round runs, in order: "
      + ", ".join(f"`{t}`" for t in s["order"]) + ".")
    w("- Server CPU per operation: the server process's user + system time (all its "
      "threads; `/proc/<pid>/stat`, in clock ticks, usually 10 ms) read just before and just "
      "after each redis-benchmark run, divided by the requests of that run. It includes "
      "what the server does besides answering during the run (accepting the 50 "
      "connections, its timers); it excludes the client's CPU.")
    w(f"- The event ({s['event_len']} bytes once `__rand_int__` is 12 digits): "
      f"`{s['event_example']}`.")
    w(f"- Our server: `{s['our_argv']}` (manual clock: every event carries the server's "
      f"`EVT.CLOCK` value, so no run's events leave the window and `EVT.TOTAL` must grow "
      f"by exactly the events sent).")
    w(f"- Redis: `{s['redis_argv']}`. `SET`/`GET` use `-d {s['event_len']}` (a value as long "
      f"as the event) over `key:__rand_int__`; all {s['keyspace']:,} keys are written "
      f"before the runs so every `GET` hits. The users `EVT.USER` asks for were filled "
      f"the same way (memory test (a)).")
    w("- The Lua peer (`scripts/bench_lib/peer_add.lua`, `EVALSHA sha 0 <json>`): "
      "`cjson.decode`, then `INCR pt:<sec>`, `HINCRBY pu:<sec> user`, `HINCRBY py:<sec> type`, "
      "`HINCRBY pc:<sec> user×type`, `HINCRBYFLOAT pv:<sec> user×type value`, each followed "
      "by `EXPIRE 61`; `<sec>` is the event's timestamp. Its queries "
      "(`scripts/bench_lib/peer_query.lua`) sum the 60 buckets.")
    w("- Memory: `VmRSS` of the server process minus its `VmRSS` right after start "
      "(Redis: after `SCRIPT LOAD`), divided by the active users (ours: INFO "
      "`active_users`; peer: `HLEN pu:<sec>`, distinct users).")
    w("- Expiry: a second holding the users leaves the window by `EVT.CLOCK ADVANCE 60` "
      f"while `redis-benchmark -c {s['clients']} -P 1 EVT.USER user__rand_int__` runs in "
      f"back-to-back slices of ≈ {s['chunk_seconds']} s. The first (\"timed\") repetition "
      f"polls INFO `active_users` every {s['poll_ms']} ms after the clock moves, which gives "
      "the sweep's duration; polling adds requests to the measured load, so the other (\"clean\") "
      "repetitions do not poll during the load, take the sweep's span from the timed one "
      "and check `active_users` = 0 afterwards. p99/max during the sweep are the worst over "
      "the slices overlapping it; the table reports the clean repetitions (median p99, "
      "worst max).")
    if res.get("config_errors"):
        w(f"- Our server answers redis-benchmark's start-up `CONFIG GET save` / `CONFIG GET "
          f"appendonly` with an error, so redis-benchmark prints `WARNING: Could not fetch "
          f"server CONFIG`; those {res['config_errors']} errors per run are allowed in the "
          f"error-reply check, every other error fails it.")
    w("")
    mem = res.get("memory_a")
    if mem:
        w("### Memory (a): one event per user")
        w("")
        w(f"- ours: {mem['ours_users']:,} active users, RSS +{mem['ours_delta'] / 2**20:.1f} MiB "
          f"→ {nbytes(mem['ours_bpu'])}/user (bytes allocated, INFO "
          f"`used_memory`: {nbytes(mem.get('ours_used_bpu'))}/user)")
        w(f"- Lua peer: {mem['peer_users']:,} distinct users, RSS +{mem['peer_delta'] / 2**20:.1f} "
          f"MiB → {nbytes(mem['peer_bpu'])}/user (Redis `used_memory`: "
          f"{nbytes(mem.get('peer_used_bpu'))}/user)")
        w(f"- fills: ours {mem['ours_fill_s']:.1f} s, peer {mem['peer_fill_s']:.1f} s")
        w("")
    mem = res.get("memory_b")
    if mem:
        w("### Memory (b): an event every second of the window per user")
        w("")
        w(f"- {mem['users']:,} users × {mem['seconds']} seconds = {mem['events']:,} events each.")
        w(f"- ours: {mem['ours_users']:,} active users, RSS +{mem['ours_delta'] / 2**20:.1f} MiB "
          f"→ {nbytes(mem['ours_bpu'])}/user")
        w(f"- Lua peer: RSS +{mem['peer_delta'] / 2**20:.1f} MiB → {nbytes(mem['peer_bpu'])}/user; "
          f"filled in {mem['peer_fill_s']:.1f} s of real time (must stay well under 61 s or the "
          f"first seconds expire): {mem['peer_seconds_present']}/{mem['seconds']} seconds present "
          f"after the fill, oldest key's TTL {mem['peer_min_ttl']} s — "
          f"{'OK' if mem['peer_fill_ok'] else '**NOT OK**'}.")
        w("")
    top = res.get("top")
    if top:
        w("### EVT.TOP over the users (a)")
        w("")
        w(f"- `EVT.TOP USERS COUNT 10` from one client, one request at a time, over "
          f"{top['users']:,} users while `redis-benchmark -c 50 -P 64 EVT.ADD` sends events to "
          f"random users of the same keyspace: p50 {ms(top['p50_under'])}, p99 "
          f"{ms(top['p99_under'])}, max {ms(top['max_under'])} ({rate(top['rps_under'])}, "
          f"{top['n_under']:,} requests); alone: p99 {ms(top['p99_alone'])}. PING from the same "
          f"client under the same ingest, right after: p50 {ms(top.get('ping_p50_under'))}, p99 "
          f"{ms(top.get('ping_p99_under'))} (without ingest: p99 {ms(top.get('ping_p99_quiet'))}) — "
          f"the wait for a turn on the serving thread that every request pays. The ingest ran "
          f"at {rate(top['ingest_rps_during'])} against {rate(top['ingest_rps_alone'])} alone.")
        w(f"- `EVT.TOP USERS COUNT 10 WINDOW 3`, 5 s after the last event, reads every user "
          f"(no one has an event in the last 3 s, so the ranking cannot answer): "
          f"{top['scans']} scans, median {ms(top['scan_ms'])}, longest {ms(top['scan_max_ms'])}, "
          f"asked in a loop by one client while another sends PING one at a time: PING p99 "
          f"{ms(top['ping_p99'])}, max {ms(top['ping_max'])} (alone: p99 "
          f"{ms(top['ping_p99_alone'])}, max {ms(top['ping_max_alone'])}).")
        w("")
    ex = res.get("expiry")
    if ex:
        w("### Expiry under load")
        w("")
        w("| rep | kind | users | sweep (until `active_users` = 0) | p99 during | max during | "
          "p99 before | max before | load rps during |")
        w("|---|---|---|---|---|---|---|---|---|")
        for i, r in enumerate(ex["reps"], 1):
            w(f"| {i} | {r['kind']} | {r['users']:,} | {seconds(r['sweep_s'])} | "
              f"{ms(r['p99_during'])} | {ms(r['max_during'])} | {ms(r['p99_before'])} | "
              f"{ms(r['max_before'])} | {rate(r['rps_during'])} |")
        w("")
        w(f"One `INFO analytics` with the users in the window took {ms(ex.get('info_ms'))}.")
        w("")
    w("### Raw runs")
    w("")
    w("| test | -P | n | rps per round | median | CPU/op (median) | p50 (median) | "
      "p99 (median) | max (worst) |")
    w("|---|---|---|---|---|---|---|---|---|")
    for t in res["throughput"]:
        runs = t["runs"]
        if not runs:
            continue
        w(f"| {t['label']} | {t['pipeline']} | {runs[-1]['n']:,} | "
          + ", ".join(rate(r["rps"]) for r in runs)
          + f" | {rate(t['rps'])} | {ns(t.get('cpu_ns'))} | {ms(t['p50'])} | {ms(t['p99'])} | "
          f"{ms(t['max'])} |")
    w("")
    if res.get("ratio_spread"):
        w("| ratio | per round |")
        w("|---|---|")
        for name, vals in res["ratio_spread"].items():
            w(f"| {name} | " + ", ".join(ratio(v) for v in vals) + " |")
        w("")
    tally = res.get("tally")
    if tally:
        w("Events sent and counted, over every run above plus the calibration runs (ours: "
          "`EVT.TOTAL` and INFO `events_accepted` before and after each run; peer: its "
          "`pt:<sec>` total):")
        w("")
        w("| test | runs | sent | counted |")
        w("|---|---|---|---|")
        for key, (runs, sent, counted) in tally.items():
            w(f"| {key} | {runs} | {sent:,} | {counted:,} |")
        w("")
    checks = res["correctness"]["checks"]
    if checks:
        failed = [c for c in checks if not c["ok"]]
        w(f"{len(checks)} correctness checks, {len(failed)} failed.")
        w("")
        for c in failed:
            w(f"- **FAILED**: {escape(c['what'])}")
        if failed:
            w("")
    return "\n".join(out)


def write_section(path: Path, section: str, begin: str, end: str, header: str) -> None:
    """Writes `section` between the markers `begin` and `end` of `path`, keeping
    everything outside them (notes written by hand); a file without the markers gets
    them at its end, a missing file starts with `header`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    block = f"{begin}\n{section.rstrip()}\n{end}\n"
    if not path.exists():
        path.write_text(header + block)
        return
    text = path.read_text()
    if begin in text and end in text:
        before = text[: text.index(begin)]
        after = text[text.index(end) + len(end):].lstrip("\n")
        path.write_text(before + block + ("\n" + after if after else ""))
    else:
        path.write_text(text.rstrip() + "\n\n" + block)


def write_markdown(path: Path, section: str) -> None:
    """Replaces the generated section of docs/benchmarks.md (see `write_section`)."""
    header = (
        "# Benchmarks\n\n"
        "`scripts/bench` measures this server against stock Redis and a Redis + Lua "
        "implementation of the same job (issue 4), with the same client for both. It "
        "rewrites the section between the markers below; notes written outside them are "
        "kept.\n\n"
        "Run it (from the repository root, on Debian after "
        "`apt-get install -y redis-server redis-tools` and with cargo installed):\n\n"
        "```sh\nscripts/bench            # full mode, ~10 minutes, writes docs/\n"
        "scripts/bench --quick    # smoke test, < 3 minutes\nscripts/bench --help\n```\n\n"
    )
    write_section(path, section, BEGIN, END, header)


# -- SVG -------------------------------------------------------------------------
#: Colours of a bar by whether its target is met (None: no target).
BAR_COLOURS = {True: "#2e9e4f", False: "#d9534f", None: "#4a7ebb"}


def svg_chart(sections: list[dict], title: str, subtitle: str) -> str:
    """Horizontal bars of ours ÷ theirs on one log scale, each drawn from the parity
    line at 1.0×, grouped in sections.

    A section: title, lower_better (which way "ours better" points), hints (the texts
    left and right of the parity line), bars. A bar: label, value, target (or None), met.
    """
    bars = [b for sec in sections for b in sec["bars"]]
    values = [b["value"] for b in bars if b["value"] and b["value"] > 0]
    targets = [b["target"] for b in bars if b.get("target")]
    # Room beyond the extreme bars for their labels.
    lo = min([*values, *targets, 0.5]) / 5
    hi = max([*values, *targets, 2.0]) * 3
    label_w, plot_w, right_pad = 250, 520, 80
    top, row_h, head_h, bar_h = 70, 38, 44, 22
    width = label_w + plot_w + right_pad
    grid_bottom = top + row_h * len(bars) + head_h * len(sections)
    height = grid_bottom + 92

    def x(v: float) -> float:
        v = min(max(v, lo), hi)
        return label_w + plot_w * (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))

    o: list[str] = []
    a = o.append
    a(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
      f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif" font-size="13">')
    a(f'<rect width="{width}" height="{height}" fill="#ffffff"/>')
    a(f'<text x="12" y="24" font-size="17" font-weight="bold">{escape(title)}</text>')
    a(f'<text x="12" y="44" fill="#555" font-size="12">{escape(subtitle)}</text>')
    # Where each section's header and each bar stand.
    layout, y = [], top
    for sec in sections:
        layout.append((sec, y))
        y += head_h + row_h * len(sec["bars"])
    i = 0
    for sec, y in layout:
        for j in range(len(sec["bars"])):
            if (i + j) % 2 == 0:
                a(f'<rect x="0" y="{y + head_h + j * row_h}" width="{width}" height="{row_h}" '
                  f'fill="#f4f4f4"/>')
        i += len(sec["bars"])
    # Decades, and 2× and 5× between them when the scale spans few enough.
    steps = (1, 2, 5) if math.log10(hi / lo) <= 3 else (1,)
    d = 10 ** math.floor(math.log10(lo))
    while d <= hi:
        for m in steps:
            if lo <= d * m <= hi:
                xv = x(d * m)
                a(f'<line x1="{xv:.1f}" y1="{top}" x2="{xv:.1f}" y2="{grid_bottom}" '
                  f'stroke="#dddddd"/>')
                a(f'<text x="{xv:.1f}" y="{grid_bottom + 17}" text-anchor="middle" '
                  f'fill="#555">{d * m:g}×</text>')
        d *= 10
    x1 = x(1.0)
    for sec, y in layout:
        left, right = sec["hints"]
        a(f'<text x="12" y="{y + 26}" font-size="14" font-weight="bold">{escape(sec["title"])}'
          f'</text>')
        a(f'<text x="{x1 - 8:.1f}" y="{y + 38}" text-anchor="end" fill="#555" font-size="11">'
          f'◀ {escape(left)}</text>')
        a(f'<text x="{x1 + 8:.1f}" y="{y + 38}" fill="#555" font-size="11">'
          f'{escape(right)} ▶</text>')
        for j, b in enumerate(sec["bars"]):
            _bar(a, b, y + head_h + j * row_h, x, x1, label_w, row_h, bar_h, sec["lower_better"])
    a(f'<line x1="{x1:.1f}" y1="{top - 8}" x2="{x1:.1f}" y2="{grid_bottom + 4}" '
      f'stroke="#000" stroke-width="2" stroke-dasharray="6,3"/>')
    a(f'<text x="{x1:.1f}" y="{top - 12}" text-anchor="middle" font-weight="bold">'
      f'1.0× = parity</text>')
    ly = grid_bottom + 44
    for j, (met, text) in enumerate([(True, "target met"), (False, "target missed"),
                                     (None, "no target")]):
        lx = 12 + j * 130
        a(f'<rect x="{lx}" y="{ly - 11}" width="14" height="14" fill="{BAR_COLOURS[met]}"/>')
        a(f'<text x="{lx + 20}" y="{ly + 1}">{text}</text>')
    a(f'<line x1="{12 + 3 * 130}" y1="{ly - 12}" x2="{12 + 3 * 130}" y2="{ly + 3}" '
      f'stroke="#111" stroke-width="3"/>')
    a(f'<text x="{12 + 3 * 130 + 8}" y="{ly + 1}">target</text>')
    a(f'<text x="12" y="{ly + 22}" fill="#555" font-size="12">Bars: ours ÷ theirs of the '
      f'medians, log scale. Same client (redis-benchmark -c 50 -r 1000000) for both.</text>')
    a(f'<text x="12" y="{ly + 38}" fill="#555" font-size="12">Server CPU per operation: the '
      f'server process\'s user + system time over a run ÷ its requests.</text>')
    a("</svg>")
    return "\n".join(o) + "\n"


def _bar(a, b: dict, y: float, x, x1: float, label_w: int, row_h: int, bar_h: int,
         lower_better: bool) -> None:
    """One bar of `svg_chart`, from the parity line to its value, with its target."""
    t = b.get("target")
    if t:
        a(f'<text x="{label_w - 10}" y="{y + 16}" text-anchor="end">{escape(b["label"])}</text>')
        a(f'<text x="{label_w - 10}" y="{y + 31}" text-anchor="end" font-size="11" '
          f'fill="#444">target {"≤" if lower_better else "≥"} {t:g}×</text>')
    else:
        a(f'<text x="{label_w - 10}" y="{y + row_h / 2 + 4:.1f}" text-anchor="end">'
          f'{escape(b["label"])}</text>')
    v = b["value"]
    if v is None or v <= 0:
        a(f'<text x="{label_w + 6}" y="{y + row_h / 2 + 4:.1f}" fill="#999">not measured</text>')
        return
    xv = x(v)
    left, right = min(xv, x1), max(xv, x1)
    a(f'<rect x="{left:.1f}" y="{y + (row_h - bar_h) / 2:.1f}" width="{max(right - left, 1):.1f}" '
      f'height="{bar_h}" fill="{BAR_COLOURS[b.get("met")]}"><title>{escape(b["label"])}: '
      f'{v:.3f}×</title></rect>')
    # The value's label goes beyond the bar's far end, past the target mark if that
    # stands close by.
    ends = [xv]
    if t:
        xt = x(t)
        a(f'<line x1="{xt:.1f}" y1="{y + 4}" x2="{xt:.1f}" y2="{y + row_h - 4}" '
          f'stroke="#111" stroke-width="3"><title>target {t:g}×</title></line>')
        if abs(xt - xv) < 60:
            ends.append(xt)
    ty = y + row_h / 2 + 5
    if v >= 1:
        a(f'<text x="{max(ends) + 7:.1f}" y="{ty:.1f}" font-weight="bold" '
          f'font-size="14">{ratio(v)}</text>')
    else:
        a(f'<text x="{min(ends) - 7:.1f}" y="{ty:.1f}" text-anchor="end" font-weight="bold" '
          f'font-size="14">{ratio(v)}</text>')
