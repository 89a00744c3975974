"""HTTP to registries with a deadline on every request (connect and the whole answer), all stoppable at once.

A per-read timeout does not bound a request: a registry that answers one byte every ten seconds never lets it
fire. Each request here is watched: when its deadline passes, or when the run is interrupted, its socket is shut
down, and the read under way ends at once. A host whose requests run out of time several times in a row is taken
for one that does not answer: later requests to it fail at once, so a dead registry ends a run in bounded time.
Loopback registries are spoken to over plain HTTP, as Docker does; everything else over HTTPS.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from email.message import Message
from typing import IO, Any

from buildflow.engine.base import EngineError

DEADLINE = 30.0  # seconds a registry request may take, connect and whole answer
BLOB_RATE = 1_000_000  # bytes per second a blob download is allowed at least, on top of DEADLINE
UNANSWERED_IN_A_ROW = 3  # requests to one host out of time in a row before it is taken for one that does not answer
_WATCH_INTERVAL = 0.2
_LOOPBACK = ("localhost", "127.", "[::1]")
_local = threading.local()


class _Call:
    """One request under watch: its deadline, its socket once connected, and whether it was cut short."""

    def __init__(self, host: str, deadline: float) -> None:
        self.host, self.seconds = host, deadline
        self.ends = time.monotonic() + deadline
        self.sock: socket.socket | None = None
        self.cut = ""  # why the request was cut short: "deadline" or "interrupted"
        self.lock = threading.Lock()

    def attach(self, sock: socket.socket) -> None:
        """Watch the socket of this request; shut it at once if the request was cut short meanwhile."""
        with self.lock:
            self.sock = sock
            if self.cut:
                _shut(sock)

    def cut_short(self, why: str) -> None:
        """End the request: shut its socket down, so that a read under way returns at once."""
        with self.lock:
            if self.cut:
                return
            self.cut = why
            if self.sock is not None:
                _shut(self.sock)


class Transport:
    """Sends registry requests, each with a deadline; interrupt() ends every request under way."""

    def __init__(self, *, deadline: float = DEADLINE) -> None:
        self.deadline = deadline
        self._calls: set[_Call] = set()
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None
        self._late: dict[str, int] = {}  # host -> requests out of time in a row
        self._paused = threading.Condition()
        self._interruptions = 0

    def send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | IO[bytes] | None = None, size: int = 0
    ) -> tuple[int, Message, bytes]:
        """One request, its answer read whole: (status, headers, body); errors of the connection as EngineErrors.
        Its deadline allows for a body of `size` bytes."""
        host = urllib.parse.urlsplit(url).netloc
        call = self._begin(host, self.deadline + size / BLOB_RATE)
        request = urllib.request.Request(url, data=body, method=method, headers=dict(headers))
        try:
            with _opener(url).open(request, timeout=self.deadline) as response:
                answer = (response.status, response.headers, response.read())
        except urllib.error.HTTPError as error:
            answer = (error.code, error.headers, error.read())
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            raise self._failed(call, error) from None
        self._end(call)
        if call.cut:
            raise self._failure(call, None)
        return answer

    def open(self, url: str, headers: Mapping[str, str], size: int = 0) -> Stream:
        """A GET whose answer the caller reads as a stream (and closes); its deadline allows for `size` bytes."""
        host = urllib.parse.urlsplit(url).netloc
        call = self._begin(host, self.deadline + size / BLOB_RATE)
        request = urllib.request.Request(url, method="GET", headers=dict(headers))
        try:
            response: http.client.HTTPResponse = _opener(url).open(request, timeout=call.seconds)
        except urllib.error.HTTPError as error:
            response = error  # type: ignore[assignment]  # an HTTPError is a response with a status and a body
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            raise self._failed(call, error) from None
        return Stream(response, call, self)

    def interrupt(self) -> None:
        """End every request under way (from a signal handler): they fail at once, and so do pauses between
        tries; later requests are sent as usual."""
        with self._lock:
            calls = list(self._calls)
        for call in calls:
            call.cut_short("interrupted")
        with self._paused:
            self._interruptions += 1
            self._paused.notify_all()

    def pause(self, seconds: float) -> None:
        """Wait between two tries of a request; an interruption meanwhile ends the wait, and the request."""
        with self._paused:
            seen = self._interruptions
            if self._paused.wait_for(lambda: self._interruptions != seen, timeout=seconds):
                raise EngineError("cancelled: the run was interrupted", transient=False)

    def _begin(self, host: str, deadline: float) -> _Call:
        """Watch a new request to `host`; fail it at once when the host does not answer any more."""
        if self._late.get(host, 0) >= UNANSWERED_IN_A_ROW:
            raise EngineError(
                f"{host} does not answer: {UNANSWERED_IN_A_ROW} requests in a row had no complete answer within "
                f"{self.deadline:.0f} s",
                transient=False,
            )
        call = _Call(host, deadline)
        _local.call = call
        with self._lock:
            self._calls.add(call)
            if self._watcher is None:
                self._watcher = threading.Thread(target=self._watch, name="registry-deadlines", daemon=True)
                self._watcher.start()
        return call

    def _end(self, call: _Call) -> None:
        """Stop watching a request, and count whether its host answered in time."""
        _local.call = None
        with self._lock:
            self._calls.discard(call)
            if call.cut == "deadline":
                self._late[call.host] = self._late.get(call.host, 0) + 1
            elif not call.cut:
                self._late[call.host] = 0

    def _watch(self) -> None:
        """Cut short every request past its deadline (a daemon thread, for the life of the process)."""
        while True:
            time.sleep(_WATCH_INTERVAL)
            now = time.monotonic()
            with self._lock:
                late = [call for call in self._calls if call.ends <= now]
            for call in late:
                call.cut_short("deadline")

    def _failed(self, call: _Call, error: BaseException) -> EngineError:
        """End a request that failed; its socket's own timeout counts as its deadline passing."""
        if isinstance(getattr(error, "reason", error), TimeoutError):
            call.cut_short("deadline")
        self._end(call)
        return self._failure(call, error)

    def _failure(self, call: _Call, error: BaseException | None) -> EngineError:
        """The error of a request that failed: cut short, or its connection's error."""
        if call.cut == "interrupted":
            return EngineError(f"{call.host}: cancelled: the run was interrupted", transient=False)
        if call.cut == "deadline":
            return EngineError(f"{call.host}: no complete answer within {call.seconds:.0f} s", transient=True)
        reason = getattr(error, "reason", error)
        return EngineError(f"{call.host}: {reason}", transient=True)


class Stream:
    """An answer read as it arrives, still under its request's deadline until it is closed."""

    def __init__(self, response: http.client.HTTPResponse, call: _Call, transport: Transport) -> None:
        self.response, self.call, self.transport = response, call, transport
        self.status: int = response.status
        self.headers: Message = response.headers

    def readinto(self, buffer: Any) -> int:
        """Read the next bytes; a cut-short request ends as an EngineError."""
        try:
            count = self.response.readinto(buffer)
        except (OSError, http.client.HTTPException) as error:
            raise self.transport._failure(self.call, error) from None
        if self.call.cut:
            raise self.transport._failure(self.call, None)
        return count

    def close(self) -> None:
        """Close the answer and stop watching its request."""
        self.response.close()
        self.transport._end(self.call)


class _Connection(http.client.HTTPConnection):
    """A connection whose socket the current request's watch can shut down."""

    def connect(self) -> None:
        super().connect()
        _attach(self.sock)


class _TLSConnection(http.client.HTTPSConnection):
    """A TLS connection whose socket the current request's watch can shut down."""

    def connect(self) -> None:
        super().connect()
        _attach(self.sock)


class _Handler(urllib.request.HTTPHandler):
    """Plain HTTP through watched connections."""

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_Connection, req)


class _TLSHandler(urllib.request.HTTPSHandler):
    """HTTPS through watched connections."""

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_TLSConnection, req, context=self._context)  # type: ignore[attr-defined]


def _attach(sock: socket.socket | None) -> None:
    """Give the request made in this thread its socket."""
    call: _Call | None = getattr(_local, "call", None)
    if call is not None and sock is not None:
        call.attach(sock)


def _shut(sock: socket.socket) -> None:
    """Shut a socket down both ways; a read blocked on it returns at once."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def scheme(host: str) -> str:
    """http for loopback registries (as Docker treats them), https elsewhere."""
    return "http" if host.startswith(_LOOPBACK) else "https"


class _KeepCredentialsHome(urllib.request.HTTPRedirectHandler):
    """Follow redirects, but never send credentials to another host."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]  # noqa: PLR0917
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urllib.parse.urlsplit(newurl).netloc != urllib.parse.urlsplit(req.full_url).netloc:
            new.remove_header("Authorization")
        return new


_DIRECT = urllib.request.build_opener(_KeepCredentialsHome, _Handler, _TLSHandler, urllib.request.ProxyHandler({}))
_FROM_ENVIRONMENT = urllib.request.build_opener(_KeepCredentialsHome, _Handler, _TLSHandler)


def _opener(url: str) -> urllib.request.OpenerDirector:
    """Loopback registries directly; others through the proxies the environment names, if any."""
    return _DIRECT if scheme(urllib.parse.urlsplit(url).netloc) == "http" else _FROM_ENVIRONMENT
