"""A fault-injecting HTTP proxy on loopback, in front of the test registry."""

from __future__ import annotations

import http.client
import http.server
import math
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from random import Random

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


KINDS = ("reset", "500", "502", "503", "504", "429", "slow")


@dataclass
class Faults:
    """Which requests fail and how.

    The first `first` requests answer `status` (or are reset); after them, a share `rate` of requests (drawn
    at random from a seed, so that a run can be repeated, and topped up so that never fewer fail) fails in one
    of `kinds`: a connection reset, a 5xx, a 429 with
    Retry-After, a slow answer (`slow_seconds`, then the real one) or a stalled one (`stall_seconds`, then
    the connection is closed with no answer).
    """

    first: int = 0
    status: int = 503
    reset: bool = False
    retry_after: str = ""
    rate: float = 0.0
    kinds: tuple[str, ...] = KINDS
    seed: int = 0
    slow_seconds: float = 2.0
    stall_seconds: float = 40.0
    drip_seconds: float = 10.0  # "drip": the answer's first bytes, then one byte every drip_seconds
    only: str = ""  # a regular expression: when set, only requests whose "METHOD path" it finds meet faults
    seen: int = 0
    failed: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    trace: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    random: Random = field(init=False)

    def __post_init__(self) -> None:
        self.random = Random(self.seed)

    def next_fault(self, request: str = "") -> str:
        """Count a request; the kind of fault it meets ('' for none)."""
        if self.only and not re.search(self.only, request):
            return ""
        with self.lock:
            self.seen += 1
            if self.seen <= self.first:
                kind = "reset" if self.reset else str(self.status)
            elif self.random.random() < self.rate or self.failed - self.first < math.ceil(self.rate * self.counted):
                kind = self.random.choice(self.kinds)  # at random, topped up so that never fewer than `rate` fail
            else:
                return ""
            self.failed += 1
            self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
            return kind

    @property
    def counted(self) -> int:
        """Requests seen after the first `first`."""
        return max(0, self.seen - self.first)

    def next_fails(self) -> bool:
        """Count a request; True when it meets a fault."""
        return bool(self.next_fault())


class _Handler(http.server.BaseHTTPRequestHandler):
    """Forwards each request to the registry, unless the faults say it fails."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        return

    def handle(self) -> None:
        """Answer a TLS hello in plain HTTP, as a plain-HTTP registry does, so that clients fall back to HTTP."""
        if self.connection.recv(1, socket.MSG_PEEK) == b"\x16":
            self.connection.sendall(
                b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
            )
            return
        super().handle()

    def _handle(self) -> None:
        faults = self.server.faults
        body = self._body()
        kind = faults.next_fault(f"{self.command} {self.path}")
        if kind == "drip":
            self._drip(faults)
            return
        if kind == "slow":
            time.sleep(faults.slow_seconds)
        elif kind == "stall":
            time.sleep(faults.stall_seconds)
            self.close_connection = True
            return
        elif kind:
            self._fail(faults, kind)
            return
        upstream = http.client.HTTPConnection(*self.server.upstream, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        if body is not None:
            headers["Content-Length"] = str(len(body))
        upstream.request(self.command, self.path, body=body, headers=headers)
        answer = upstream.getresponse()
        payload = answer.read()
        faults.trace.append(f"{self.command} {self.path} -> {answer.status} {payload[:120]!r}")
        self.send_response(answer.status, answer.reason)
        for name, value in answer.getheaders():
            if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        length = answer.getheader("Content-Length", "0") if self.command == "HEAD" else str(len(payload))
        self.send_header("Content-Length", length)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        upstream.close()

    def _drip(self, faults: Faults) -> None:
        """Answer a byte at a time, one every drip_seconds, until the client gives up (or five minutes pass)."""
        answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n" + b" " * 1000
        deadline = time.monotonic() + 300
        try:
            for byte in answer:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                if time.monotonic() > deadline:
                    break
                time.sleep(faults.drip_seconds)
        except OSError:
            pass
        self.close_connection = True

    def _body(self) -> bytes | None:
        """The request body, whether sent with a length or in chunks."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length", 0) or 0)
        return self.rfile.read(length) if length else None

    def _fail(self, faults: Faults, kind: str) -> None:
        """Answer with the fault: a reset connection, or an error status (429 with Retry-After)."""
        if kind == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.connection.close()
            self.close_connection = True
            return
        body = b'{"errors":[{"code":"UNAVAILABLE","message":"injected fault"}]}'
        self.send_response(int(kind))
        if faults.retry_after or kind == "429":
            self.send_header("Retry-After", faults.retry_after or "1")
        if kind == "401":
            self.send_header("WWW-Authenticate", 'Basic realm="buildflow tests"')
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """Clients that hang up (as faults make them do) are not errors of the proxy."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]

    def __init__(self, upstream: tuple[str, int], faults: Faults) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream, self.faults = upstream, faults


@contextmanager
def faulty_registry(faults: Faults, upstream: tuple[str, int] = ("127.0.0.1", 5000)) -> Iterator[str]:
    """A proxy on 127.0.0.1:PORT in front of the registry; yields "localhost:PORT"."""
    server = _Server(upstream, faults)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"localhost:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
