"""A fault-injecting HTTP proxy on loopback, in front of the test registry."""

from __future__ import annotations

import http.client
import http.server
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


@dataclass
class Faults:
    """Which requests fail and how: the first `first` requests answer `status` (or are reset)."""

    first: int = 0
    status: int = 503
    reset: bool = False
    retry_after: str = ""
    seen: int = 0
    failed: int = 0
    trace: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_fails(self) -> bool:
        """Count a request; True when it is one of those to fail."""
        with self.lock:
            self.seen += 1
            fails = self.seen <= self.first
            self.failed += fails
            return fails


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
        if faults.next_fails():
            self._fail(faults)
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

    def _fail(self, faults: Faults) -> None:
        if faults.reset:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.connection.close()
            self.close_connection = True
            return
        body = b'{"errors":[{"code":"UNAVAILABLE","message":"injected fault"}]}'
        self.send_response(faults.status)
        if faults.retry_after:
            self.send_header("Retry-After", faults.retry_after)
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
