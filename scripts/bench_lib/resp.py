"""A small RESP2/RESP3 client, standard library only: single commands, large
pipelines, and raw bytes for tests that send what no client library would.

Two views of a reply. `read_frame` keeps the wire type, as the soak's checks need
(`+OK` is not `$2 OK`; `HELLO 3` answers a map): a `(kind, value)` tuple. `read_reply`
is the plain view scripts/bench wants: bytes, int, None, list, or a RespError.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterable, Iterator
from typing import Self

#: A reply with its RESP type: `(kind, value)`, kind one of
#:   "+" simple string (bytes)      "-" error, also RESP3 `!` (bytes)
#:   ":" integer (int)              "$" bulk, also RESP3 `=` without its format (bytes)
#:   "," double, "(" big number (bytes, as sent)
#:   "#" boolean (bool)             "_" null, also `$-1` and `*-1` (None)
#:   "*" array, also RESP3 set `~` and push `>` (list of frames)
#:   "%" map (list of (key frame, value frame) pairs)
Frame = tuple[str, object]


class RespError(Exception):
    """An error reply (`-ERR ...`)."""


class ProtocolError(ValueError):
    """Bytes that are not RESP."""


def encode(*args: bytes | str | float) -> bytes:
    """One command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def plain(frame: Frame, raise_errors: bool = False):
    """A frame as bytes, int, None, list, dict, or RespError (raised if raise_errors)."""
    kind, v = frame
    if kind == "-":
        err = RespError(v.decode(errors="replace"))
        if raise_errors:
            raise err
        return err
    if kind == "*":
        return [plain(x) for x in v]
    if kind == "%":
        return {plain(k): plain(x) for k, x in v}
    return v


def value(frame: Frame):
    """A scalar reply as a Python value: strings decoded; an error reply raised."""
    kind, v = frame
    if kind == "-":
        raise RespError(v.decode(errors="replace"))
    if kind in "+$":
        return v.decode(errors="replace")
    return v


class Client:
    """A blocking connection to a Redis-protocol server."""

    def __init__(self, host: str, port: int, timeout: float = 120.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.pos = 0

    def close(self, reset: bool = False) -> None:
        """Closes the connection; `reset` sends RST instead of FIN (SO_LINGER 0), as a
        crashed client or a dropped link would."""
        try:
            if reset:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- reading ---------------------------------------------------------------
    def _fill(self) -> None:
        if self.pos > 1 << 20:
            del self.buf[: self.pos]
            self.pos = 0
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buf += chunk

    def _line(self) -> bytes:
        while True:
            end = self.buf.find(b"\r\n", self.pos)
            if end >= 0:
                line = bytes(self.buf[self.pos : end])
                self.pos = end + 2
                return line
            self._fill()

    def _exact(self, n: int) -> bytes:
        while len(self.buf) - self.pos < n + 2:
            self._fill()
        data = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n + 2
        return data

    def read_frame(self) -> Frame:
        """One reply, RESP2 or RESP3, with its type (see `Frame`)."""
        line = self._line()
        if not line:
            raise ProtocolError("empty line")
        kind, rest = chr(line[0]), line[1:]
        if kind in "+-(,":
            return kind, rest
        if kind == ":":
            return kind, int(rest)
        if kind == "#":
            return kind, rest == b"t"
        if kind == "_":
            return kind, None
        if kind in "$=!":
            n = int(rest)
            if n < 0:
                return "_", None
            data = self._exact(n)
            if kind == "!":
                return "-", data
            return "$", data[4:] if kind == "=" else data
        if kind in "*~>":
            n = int(rest)
            if n < 0:
                return "_", None
            return "*", [self.read_frame() for _ in range(n)]
        if kind == "%":
            return kind, [(self.read_frame(), self.read_frame()) for _ in range(int(rest))]
        raise ProtocolError(f"unexpected reply line {line[:80]!r}")

    def read_reply(self, raise_errors: bool = True):
        """One reply in the plain view (see `plain`)."""
        return plain(self.read_frame(), raise_errors)

    # -- commands --------------------------------------------------------------
    def send(self, data: bytes) -> None:
        """Raw bytes: pre-encoded pipelines, inline commands, garbage."""
        self.sock.sendall(data)

    def request(self, *args) -> Frame:
        """One command; its reply as a frame, errors included (not raised)."""
        self.sock.sendall(encode(*args))
        return self.read_frame()

    def call(self, *args):
        """One command; its reply in the plain view, an error reply (also one inside
        an array) raised."""
        reply = plain(self.request(*args), raise_errors=True)
        if isinstance(reply, list):
            for r in reply:
                if isinstance(r, RespError):
                    raise r
        return reply

    def pipeline(self, batches: Iterable[tuple[bytes, int]]) -> Iterator:
        """Sends pre-encoded batches (bytes, number of commands) from a writer thread
        while this thread reads; yields every reply in order (errors as RespError
        values, not raised)."""
        counts: list[int] = []
        lock = threading.Condition()
        done = [False]
        failure: list[BaseException] = []

        def writer() -> None:
            try:
                for data, n in batches:
                    with lock:
                        counts.append(n)
                        lock.notify()
                    self.sock.sendall(data)
            except BaseException as e:  # noqa: BLE001 - handed to the reader, which raises it
                failure.append(e)
            finally:
                with lock:
                    done[0] = True
                    lock.notify()

        t = threading.Thread(target=writer, daemon=True)
        t.start()
        i = 0
        while True:
            with lock:
                while i >= len(counts) and not done[0]:
                    lock.wait()
                if i >= len(counts):
                    break
                n = counts[i]
            i += 1
            for _ in range(n):
                yield self.read_reply(raise_errors=False)
        t.join()
        if failure:
            raise failure[0]


def info(client: Client, section: str = "") -> dict[str, str]:
    """INFO as a dict of key: value."""
    text = client.call("INFO", section) if section else client.call("INFO")
    out: dict[str, str] = {}
    for line in text.decode(errors="replace").splitlines():
        if line and not line.startswith("#") and ":" in line:
            k, v = line.split(":", 1)
            out[k] = v.strip()
    return out
