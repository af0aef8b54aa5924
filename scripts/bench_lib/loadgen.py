"""redis-benchmark runs and the pipelined fills the benchmark uses."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field

from .resp import Client, RespError, encode

#: The event, as in the README: ~130 bytes once `__rand_int__` becomes 12 digits.
EVENT_TEMPLATE = (
    '{"user_id": "%s", "event_type": "click", "timestamp": %d, '
    '"attributes": {"item_id": "item456", "value": 10.5}}'
)
#: The keyed form for clusters, `EVT.ADD <user_id> <json>`: the JSON leaves `user_id`
#: out, so one `__rand_int__` (in the key) names the user (redis-benchmark draws each
#: `__rand_int__` of a command separately).
KEYED_EVENT_TEMPLATE = (
    '{"event_type": "click", "timestamp": %d, "attributes": {"item_id": "item456", "value": 10.5}}'
)
#: redis-benchmark's `--cluster` replaces `{tag}` with a hash tag of a slot of the
#: node each of its clients talks to.
CLUSTER_USER = "user{tag}__rand_int__"
#: redis-benchmark replaces `__rand_int__` with 12 zero-padded digits; the fills
#: name users the same way, so both reach the same million ids.
USER_FORMAT = "user%012d"
RAND = "__rand_int__"
KEYSPACE = 1_000_000
CLIENTS = 50


def event(user: str, ts: int) -> bytes:
    return (EVENT_TEMPLATE % (user, ts)).encode()


class BenchError(RuntimeError):
    pass


@dataclass
class Run:
    """One redis-benchmark run, from its --csv line."""

    test: str
    pipeline: int
    n: int
    rps: float
    avg_ms: float
    min_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    wall_s: float
    started: float = 0.0
    ended: float = 0.0
    #: the server's user + system CPU time over the run, when measured
    cpu_s: float | None = None
    extra: dict = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        """How long the requests took, as redis-benchmark measured them."""
        return self.n / self.rps if self.rps > 0 else float("inf")

    @property
    def cpu_ns(self) -> float | None:
        """The server's CPU time per request, in nanoseconds."""
        return None if self.cpu_s is None else self.cpu_s * 1e9 / self.n


def redis_benchmark(
    port: int,
    n: int,
    pipeline: int,
    args: list[str],
    test: str,
    clients: int = CLIENTS,
    keyspace: int = KEYSPACE,
    timeout: float = 600.0,
    options: tuple[str, ...] = (),
) -> Run:
    """Runs redis-benchmark with `args` (either `-t set -d N` style or a command) and
    parses its --csv line: "test","rps","avg","min","p50","p95","p99","max". `options`
    go before the command (`--cluster`)."""
    argv = [
        "redis-benchmark",
        "-h", "127.0.0.1",
        "-p", str(port),
        "-c", str(clients),
        "-n", str(n),
        "-P", str(pipeline),
        "-r", str(keyspace),
        "--csv",
        *options,
        *args,
    ]
    started = time.time()
    t0 = time.monotonic()
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as e:
        raise BenchError(f"redis-benchmark timed out after {timeout:.0f} s: {' '.join(argv)}") from e
    wall = time.monotonic() - t0
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or len(lines) < 2:
        raise BenchError(
            f"redis-benchmark failed (exit {proc.returncode}): {' '.join(argv)}\n"
            f"stdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-2000:]}"
        )
    # The test name is the command line and may hold quotes (the JSON): take the
    # seven numeric fields from the end.
    fields = lines[-1].rstrip().rstrip('"').split('","')
    try:
        nums = [float(x.strip('"')) for x in fields[-7:]]
    except ValueError as e:
        raise BenchError(f"cannot parse redis-benchmark output: {lines[-1]!r}") from e
    return Run(test, pipeline, n, *nums, wall_s=wall, started=started, ended=time.time())


def check_replies(replies, expect, what: str) -> int:
    """Counts replies; raises on the first that is not `expect` (or a list of them)."""
    count = 0
    for r in replies:
        items = r if isinstance(r, list) else [r]
        for x in items:
            if x != expect:
                raise BenchError(f"{what}: unexpected reply {x!r} (after {count} good ones)")
            count += 1
    return count


def fill_ours(c: Client, users, ts: int, batch: int = 1000) -> int:
    """Sends one event per user id with timestamp `ts` through pipelined EVT.MADD;
    returns the number of events the server answered OK."""

    def batches():
        buf = []
        for u in users:
            buf.append(event(u, ts))
            if len(buf) == batch:
                yield encode("EVT.MADD", *buf), 1
                buf = []
        if buf:
            yield encode("EVT.MADD", *buf), 1

    return check_replies(c.pipeline(batches()), b"OK", "EVT.MADD fill")


def fill_peer(c: Client, sha: str, events, batch: int = 1000) -> int:
    """Sends each event through the Lua peer (EVALSHA), pipelined."""
    sha_b = sha.encode()

    def batches():
        buf = []
        for ev in events:
            buf.append(encode(b"EVALSHA", sha_b, b"0", ev))
            if len(buf) == batch:
                yield b"".join(buf), len(buf)
                buf = []
        if buf:
            yield b"".join(buf), len(buf)

    return check_replies(c.pipeline(batches()), b"OK", "Lua peer fill")


def call_int(c: Client, *args) -> int:
    r = c.call(*args)
    if r is None:
        return 0
    if isinstance(r, RespError):
        raise r
    return int(r)
