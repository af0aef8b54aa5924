"""A small RESP2 client: single commands and large pipelines, standard library only."""

from __future__ import annotations

import socket
import threading
from typing import Iterable, Iterator


class RespError(Exception):
    """An error reply (`-ERR ...`)."""


class ProtocolError(Exception):
    """Bytes that are not RESP."""


def encode(*args: bytes | str | int | float) -> bytes:
    """One command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, (int, float)):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Client:
    """A blocking connection to a Redis-protocol server."""

    def __init__(self, host: str, port: int, timeout: float = 120.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.pos = 0

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> "Client":
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

    def read_reply(self, raise_errors: bool = True):
        """One reply: bytes, int, None, list, or RespError (raised if raise_errors)."""
        line = self._line()
        if not line:
            raise ProtocolError("empty line")
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            err = RespError(rest.decode(errors="replace"))
            if raise_errors:
                raise err
            return err
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) - self.pos < n + 2:
                self._fill()
            data = bytes(self.buf[self.pos : self.pos + n])
            self.pos += n + 2
            return data
        if kind == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self.read_reply(raise_errors=False) for _ in range(n)]
        raise ProtocolError(f"unexpected reply line {line[:80]!r}")

    # -- commands --------------------------------------------------------------
    def call(self, *args):
        self.sock.sendall(encode(*args))
        reply = self.read_reply()
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
            except BaseException as e:  # surfaced to the reader
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
