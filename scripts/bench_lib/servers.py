"""Child server processes: building ours, free ports, start, readiness, resident
memory, CPU time, cleanup."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from .resp import Client

_LIVE: list[Server] = []
#: Clock ticks per second, the unit of the CPU times in /proc/<pid>/stat.
_CLK_TCK = os.sysconf("SC_CLK_TCK")


class BuildError(RuntimeError):
    pass


def build_release(root: Path) -> Path:
    """`cargo build --release` of the server; returns the executable cargo reports
    (so CARGO_TARGET_DIR and the like are honoured). Compiler messages go to stderr."""
    proc = subprocess.run(
        ["cargo", "build", "--release", "--bin", "scalable-analytics",
         "--message-format=json-render-diagnostics"],
        cwd=root, stdout=subprocess.PIPE, text=True, check=False,
    )
    if proc.returncode != 0:
        raise BuildError("cargo build --release failed (see above)")
    exe = None
    for line in proc.stdout.splitlines():
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            continue
        if msg.get("reason") == "compiler-artifact" and msg.get("executable") \
                and msg.get("target", {}).get("name") == "scalable-analytics":
            exe = msg["executable"]
    if exe is None:
        raise BuildError("cargo did not report the scalable-analytics executable")
    return Path(exe)


def free_port() -> int:
    """A port nobody listens on now: bind port 0 on loopback and read what we got."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the child before exec: receive SIGTERM if the benchmark dies, even by
    SIGKILL, so no server is ever left behind (Linux prctl PR_SET_PDEATHSIG)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    except OSError:
        pass


class ServerError(RuntimeError):
    pass


class Server:
    """One server process on a loopback port, with its log in `log_path`; on `port`
    when given (a cluster's nodes must know each other's ports), else a free one."""

    def __init__(self, name: str, argv_for_port, log_path: Path, port: int | None = None):
        self.name = name
        self.argv_for_port = argv_for_port
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self.fixed_port = port
        self.port = 0
        self.baseline_rss = 0

    def start(self, timeout: float = 15.0) -> Server:
        last = ""
        for _attempt in range(1 if self.fixed_port else 3):
            self.port = self.fixed_port or free_port()
            argv = self.argv_for_port(self.port)
            with open(self.log_path, "ab") as log:
                log.write(f"\n=== {' '.join(argv)}\n".encode())
                log.flush()
                self.proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    # Servers are started while no other thread of ours runs, so the
                    # fork-with-threads hazard this rule warns of does not apply.
                    preexec_fn=_die_with_parent,  # noqa: PLW1509
                )
            _LIVE.append(self)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    with Client("127.0.0.1", self.port, timeout=2) as c:
                        if c.call("PING") == b"PONG":
                            time.sleep(0.2)  # let start-up allocations settle
                            self.baseline_rss = self.rss()
                            return self
                except OSError:
                    time.sleep(0.05)
            last = self.log_tail()
            self.stop()
        raise ServerError(f"{self.name} did not start; log tail:\n{last}")

    def client(self, timeout: float = 120.0) -> Client:
        return Client("127.0.0.1", self.port, timeout=timeout)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self) -> None:
        if not self.alive():
            rc = None if self.proc is None else self.proc.returncode
            raise ServerError(
                f"{self.name} (port {self.port}) is not running (exit status {rc}); "
                f"log tail:\n{self.log_tail()}"
            )

    def rss(self) -> int:
        """Resident set size in bytes, from /proc/<pid>/status VmRSS."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise ServerError(f"no VmRSS for {self.name}")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the whole process (every thread, exited ones
        included; not its children), from /proc/<pid>/stat. The kernel reports it in
        clock ticks, usually 10 ms: runs should take seconds of CPU."""
        with open(f"/proc/{self.pid}/stat") as f:
            # The command name (field 2) may hold spaces and ')': split after its last ')'.
            fields = f.read().rsplit(")", 1)[1].split()
        # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
        return (int(fields[11]) + int(fields[12])) / _CLK_TCK

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it is still running after `timeout` seconds."""
        p = self.proc
        if p is None:
            return
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if self in _LIVE:
            _LIVE.remove(self)


def stop_all() -> None:
    """Stops every server this process started (called from finally and signals)."""
    while _LIVE:
        s = _LIVE.pop()
        try:
            s.stop()
        except Exception:  # noqa: BLE001 - cleanup must go on
            if s.proc is not None and s.proc.poll() is None:
                os.kill(s.proc.pid, signal.SIGKILL)


def redis_server(log_dir: Path, extra: tuple[str, ...] = ()) -> Server:
    """Stock Redis without persistence; `extra` flags come last, so they override
    (`--appendonly yes` for a durability row)."""
    return Server(
        "redis-server",
        lambda port: [
            "redis-server",
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--dir", str(log_dir),
            "--logfile", "",
            *extra,
        ],
        log_dir / "redis-server.log",
    )


def our_server(binary: Path, log_dir: Path, extra: list[str] | tuple[str, ...] = (),
               log_name: str = "scalable-analytics.log") -> Server:
    """Ours with the manual clock (events carry its time, so none leaves the window
    during a run and counts can be exact); `extra` flags come last."""
    return Server(
        "scalable-analytics",
        lambda port: [
            str(binary),
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--clock", "manual",
            "--log-level", "warn",
            *extra,
        ],
        log_dir / log_name,
    )


class ClusterServers:
    """`n` of our servers as one cluster (`--cluster-config`, the slots split evenly),
    seen by the benchmark as one server: its port and client are the first node's, its
    CPU time and memory the sum of the nodes'."""

    def __init__(self, binary: Path, log_dir: Path, n: int, extra=(), tag: str = "cluster"):
        self.name = f"scalable-analytics cluster of {n}"
        self.nodes: list[Server] = []
        self.ports = [free_port() for _ in range(n)]
        names = [chr(ord("a") + i) for i in range(n)]
        per = 16384 / n
        slots, first = [], 0
        for i in range(n):
            last = 16383 if i == n - 1 else max(first, int(per * i + per - 1 + 0.5))
            slots.append((first, last))
            first = last + 1
        cmap = {"nodes": [{"id": name, "host": "127.0.0.1", "port": port, "slots": [[s, e]]}
                          for name, port, (s, e) in zip(names, self.ports, slots, strict=True)]}
        self.map_path = log_dir / f"{tag}.json"
        self.map_path.write_text(json.dumps(cmap) + "\n")
        for name, port in zip(names, self.ports, strict=True):
            flags = ("--cluster-config", str(self.map_path), "--cluster-node", name, *extra)
            srv = our_server(binary, log_dir, flags, log_name=f"{tag}-{name}.log")
            srv.fixed_port = port
            self.nodes.append(srv)

    def start(self, timeout: float = 15.0) -> ClusterServers:
        for node in self.nodes:
            node.start(timeout)
        return self

    @property
    def port(self) -> int:
        return self.nodes[0].port

    @property
    def pid(self) -> int:
        return self.nodes[0].pid

    @property
    def baseline_rss(self) -> int:
        return sum(n.baseline_rss for n in self.nodes)

    def argv_for_port(self, port: int) -> list[str]:
        return self.nodes[0].argv_for_port(port)

    def client(self, timeout: float = 120.0) -> Client:
        return self.nodes[0].client(timeout)

    def node_clients(self, timeout: float = 120.0) -> list[Client]:
        return [n.client(timeout) for n in self.nodes]

    def alive(self) -> bool:
        return all(n.alive() for n in self.nodes)

    def check_alive(self) -> None:
        for n in self.nodes:
            n.check_alive()

    def rss(self) -> int:
        return sum(n.rss() for n in self.nodes)

    def cpu_seconds(self) -> float:
        return sum(n.cpu_seconds() for n in self.nodes)

    def stop(self, timeout: float = 10.0) -> None:
        for n in self.nodes:
            n.stop(timeout)
