"""HTTP to registries with a deadline on every request (connect and the whole answer), all stoppable at once.

A per-read timeout does not bound a request: a registry that answers one byte every ten seconds never lets it
fire. Each request here is watched: when its deadline passes, or when the run is interrupted, its socket is shut
down, and the read under way ends at once. A host whose requests run out of time several times in a row is taken
for one that does not answer: later requests to it fail at once, so a dead registry ends a run in bounded time.
Registries are reached as Docker reaches them (engine/trust.py): over HTTPS, trusting the system's CAs and those in
certs.d/HOST/; an insecure registry (loopback, or the daemon's insecure-registries) over HTTPS without
verification first, then over plain HTTP when it answers no TLS, which is then remembered for the host.
Requests whose answer is read whole give their connection back for the next request to the same registry, from
any thread (HTTP keep-alive; a TLS handshake is made once per connection, not per request); a kept connection that
the registry closed meanwhile is replaced once, at once. Streamed answers, uploads of streamed bodies and requests
through a proxy open a connection of their own.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import weakref
from collections.abc import Callable, Mapping
from email.message import Message
from typing import IO, Any, TypeVar

from buildflow.engine.base import EngineError
from buildflow.engine.trust import Trust, on_loopback_v4

DEADLINE = 30.0  # seconds a registry request may take, connect and whole answer
BLOB_RATE = 1_000_000  # bytes per second a blob download is allowed at least, on top of DEADLINE
UNANSWERED_IN_A_ROW = 3  # requests to one host out of time in a row before it is taken for one that does not answer
_WATCH_INTERVAL = 0.2
_LOOPBACK_V6 = "[::1]"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_STALE = (  # what a kept connection the registry (or a proxy) closed meanwhile gives
    ConnectionResetError,
    BrokenPipeError,
    ConnectionAbortedError,
    ssl.SSLEOFError,
    ssl.SSLZeroReturnError,
)
_IDLE_SECONDS = 30.0  # a kept connection idle longer is not used again (servers and proxies close idle ones)
# TLS alerts of a registry that wants a client certificate it trusts (TLS 1.3 and 1.2).
_CLIENT_CERTIFICATE_ALERTS = (
    "TLSV13_ALERT_CERTIFICATE_REQUIRED",
    "SSLV3_ALERT_BAD_CERTIFICATE",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
    "TLSV1_ALERT_UNKNOWN_CA",
)
_local = threading.local()
Answered = TypeVar("Answered")


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

    def __init__(self, *, deadline: float = DEADLINE, trust: Trust | None = None) -> None:
        self.deadline = deadline
        self.trust = trust or Trust()
        self._calls: set[_Call] = set()
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None
        self._late: dict[str, int] = {}  # host -> requests out of time in a row
        self._plain: dict[str, bool] = {}  # insecure host -> it answered plain HTTP (True) or TLS (False)
        self._paused = threading.Condition()
        self._interruptions = 0
        self._idle: dict[tuple[str, str], list[tuple[http.client.HTTPConnection, float]]] = {}  # kept, unused, since
        weakref.finalize(self, _close_all, self._idle)
        self._proxied: dict[str, bool] = {}  # scheme://host -> the environment sends it through a proxy
        tls = _TLSHandler(self.trust)
        self._direct = urllib.request.build_opener(_KeepCredentialsHome, _Handler, tls, urllib.request.ProxyHandler({}))
        self._from_environment = urllib.request.build_opener(_KeepCredentialsHome, _Handler, tls)

    def base(self, host: str) -> str:
        """scheme://host for a registry's URLs: http once an insecure host answered plain HTTP, https otherwise."""
        return f"{'http' if self._plain.get(host) else 'https'}://{host}"

    def send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | IO[bytes] | None = None, size: int = 0
    ) -> tuple[int, Message, bytes]:
        """One request, its answer read whole: (status, headers, body); errors of the connection as EngineErrors.
        Its deadline allows for a body of `size` bytes."""
        return self._reaching(url, lambda url, first: self._send(method, url, headers, body, size, first=first))

    def open(self, url: str, headers: Mapping[str, str], size: int = 0) -> Stream:
        """A GET whose answer the caller reads as a stream (and closes); its deadline allows for `size` bytes."""
        return self._reaching(url, lambda url, first: self._open(url, headers, size, first))

    def _reaching(self, url: str, call: Callable[[str, bool], Answered]) -> Answered:
        """A request as Docker makes it: to an insecure host whose scheme is not known yet, over HTTPS without
        verification first, then over plain HTTP when that gets no TLS answer or no connection."""
        parts = urllib.parse.urlsplit(url)
        host = parts.netloc
        plain_url = urllib.parse.urlunsplit(parts._replace(scheme="http"))
        if parts.scheme != "https":
            return call(url, False)
        if host in self._plain or not self.trust.insecure(host):
            return call(plain_url if self._plain.get(host) else url, False)
        seen = self._interruptions
        try:
            answer = call(url, True)
        except _NoTLS as refused:
            if refused.plain:
                self._plain[host] = True
            if self._interruptions != seen:  # interrupted between the two tries: no second request
                raise EngineError(f"{host}: cancelled: the run was interrupted", transient=False) from None
            return call(plain_url, False)
        self._plain[host] = False
        return answer

    def _send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | IO[bytes] | None,
        size: int,
        *,
        first: bool,
    ) -> tuple[int, Message, bytes]:
        """One request to one URL; `first`: an insecure host's first HTTPS try, which may end in _NoTLS."""
        if not hasattr(body, "read") and not self._through_proxy(url):
            answer = self._send_kept(method, url, headers, body, size, first=first)
            if answer[0] not in _REDIRECTS or method not in ("GET", "HEAD"):
                return answer  # a redirected GET or HEAD is sent again below, where redirects are followed
        return self._send_opened(method, url, headers, body, size, first=first)

    def _send_opened(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | IO[bytes] | None,
        size: int,
        *,
        first: bool,
    ) -> tuple[int, Message, bytes]:
        """_send on a connection of its own, following redirects (never sending credentials to another host)."""
        opener = self._opener(url)
        call = self._begin(urllib.parse.urlsplit(url).netloc, self.deadline + size / BLOB_RATE)
        request = urllib.request.Request(url, data=body, method=method, headers=dict(headers))
        try:
            with opener.open(request, timeout=self.deadline) as response:
                answer = (response.status, response.headers, response.read())
        except urllib.error.HTTPError as error:
            answer = (error.code, error.headers, error.read())
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            raise self._failed(call, error, first) from None
        except BaseException:  # the body's stream failed (a blob copied from another repository): not the host
            self._end(call)
            raise
        self._end(call)
        if call.cut:
            raise self._failure(call, None)
        return answer

    def _send_kept(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None, size: int, *, first: bool
    ) -> tuple[int, Message, bytes]:
        """_send on an idle kept connection to the URL's host (or a new one), given back once its answer is read. A
        kept connection the registry closed since its last answer is replaced by a new one, once, and the other idle
        connections to that host are closed too. A redirect is answered as it is (the caller follows it)."""
        parts = urllib.parse.urlsplit(url)
        path = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
        where = (parts.scheme, parts.netloc)
        call = self._begin(parts.netloc, self.deadline + size / BLOB_RATE)
        for retry in (False, True):
            connection = self._connection(*where, kept=not retry)
            reused = connection.sock is not None
            _attach(connection.sock)
            try:
                connection.request(method, path, body=body, headers=dict(headers))
                response = connection.getresponse()
                answer = (response.status, response.headers, response.read())
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                if reused and not retry and not call.cut and isinstance(_cause(error), _STALE):
                    self._forget(where)
                    continue
                raise self._failed(call, error, first) from None
            except BaseException:
                connection.close()
                self._end(call)
                raise
            break
        self._end(call)
        if call.cut:
            connection.close()
            raise self._failure(call, None)
        self._give_back(where, connection)
        return answer

    def _connection(self, scheme: str, host: str, *, kept: bool = True) -> http.client.HTTPConnection:
        """An idle kept connection to a host used in the last _IDLE_SECONDS (with `kept`), or a new one (not opened
        yet); one idle longer is closed, as the registry or a proxy may have closed it already."""
        now = time.monotonic()
        with self._lock:
            idle = self._idle.get((scheme, host), []) if kept else []
            while idle:
                connection, since = idle.pop()
                if now - since < _IDLE_SECONDS:
                    return connection
                connection.close()
        if scheme == "https":
            return _TLSConnection(host, timeout=self.deadline, context=self.trust.context(host))
        return _Connection(host, timeout=self.deadline)

    def _give_back(self, where: tuple[str, str], connection: http.client.HTTPConnection) -> None:
        """Keep a connection whose answer was read whole for the next request to its host (the registry may have
        said it closes it: it is then opened again when next used)."""
        with self._lock:
            self._idle.setdefault(where, []).append((connection, time.monotonic()))

    def _forget(self, where: tuple[str, str]) -> None:
        """Close every idle connection to a host (one of them was found closed by the registry)."""
        with self._lock:
            idle = self._idle.pop(where, [])
        for connection, _ in idle:
            connection.close()

    def _through_proxy(self, url: str) -> bool:
        """The environment's proxies apply to this URL's host (never to a loopback registry)."""
        parts = urllib.parse.urlsplit(url)
        key = f"{parts.scheme}://{parts.netloc}"
        proxied = self._proxied.get(key)
        if proxied is None:
            proxies = urllib.request.getproxies()
            host = parts.netloc
            proxied = not _on_loopback(host) and parts.scheme in proxies and not urllib.request.proxy_bypass(host)
            self._proxied[key] = proxied
        return proxied

    def _open(self, url: str, headers: Mapping[str, str], size: int, first: bool) -> Stream:
        """A streamed GET of one URL; `first` as in _send."""
        opener = self._opener(url)
        call = self._begin(urllib.parse.urlsplit(url).netloc, self.deadline + size / BLOB_RATE)
        request = urllib.request.Request(url, method="GET", headers=dict(headers))
        try:
            response: http.client.HTTPResponse = opener.open(request, timeout=call.seconds)
        except urllib.error.HTTPError as error:
            response = error  # type: ignore[assignment]  # an HTTPError is a response with a status and a body
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            raise self._failed(call, error, first) from None
        return Stream(response, call, self)

    def _opener(self, url: str) -> urllib.request.OpenerDirector:
        """Loopback registries directly; others through the proxies the environment names, if any. The TLS context
        of an https URL's host is made here, so that a bad certificate file fails before the request starts."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme == "https":
            self.trust.context(parts.netloc)
        return self._direct if _on_loopback(parts.netloc) else self._from_environment

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

    def _failed(self, call: _Call, error: BaseException, first: bool = False) -> Exception:
        """End a request that failed; its socket's own timeout counts as its deadline passing. On an insecure
        host's first HTTPS try, a connection that gets no TLS answer (or none at all) is a _NoTLS."""
        cause = _cause(error)
        if isinstance(cause, TimeoutError):
            call.cut_short("deadline")
        self._end(call)
        if first and not call.cut and _no_tls(cause):
            return _NoTLS(plain=isinstance(cause, ssl.SSLError))
        return self._failure(call, error)

    def _failure(self, call: _Call, error: BaseException | None) -> EngineError:
        """The error of a request that failed: cut short, its certificate not trusted, or its connection's error."""
        if call.cut == "interrupted":
            return EngineError(f"{call.host}: cancelled: the run was interrupted", transient=False)
        if call.cut == "deadline":
            return EngineError(f"{call.host}: no complete answer within {call.seconds:.0f} s", transient=True)
        cause = _cause(error)
        if isinstance(cause, ssl.SSLCertVerificationError):
            return EngineError(self.trust.untrusted(call.host, cause.verify_message or str(cause)), transient=False)
        if isinstance(cause, ssl.SSLError) and cause.reason in _CLIENT_CERTIFICATE_ALERTS:
            return EngineError(self.trust.no_client_certificate(call.host, str(cause.reason)), transient=False)
        if isinstance(cause, ssl.SSLError) and _no_tls(cause):
            return EngineError(self.trust.not_tls(call.host, str(cause.reason or cause)), transient=False)
        return EngineError(f"{call.host}: {cause}", transient=True)


class _NoTLS(Exception):
    """An insecure registry's HTTPS try got no TLS answer (plain: it answered something else) or no connection."""

    def __init__(self, *, plain: bool) -> None:
        super().__init__("no TLS answer")
        self.plain = plain


def _cause(error: BaseException | None) -> BaseException | None:
    """What went wrong below urllib's URLError."""
    reason = getattr(error, "reason", None) if isinstance(error, urllib.error.URLError) else None
    return reason if isinstance(reason, BaseException) else error


def _no_tls(cause: BaseException | None) -> bool:
    """A failure of the TLS handshake itself (the server speaks something else), or no connection at all (a
    registry without a port listens on 80 for HTTP, on 443 for HTTPS)."""
    if isinstance(cause, ssl.SSLCertVerificationError):
        return False
    if isinstance(cause, ssl.SSLError):
        return cause.reason not in _CLIENT_CERTIFICATE_ALERTS
    return isinstance(cause, ConnectionRefusedError)


def _on_loopback(host: str) -> bool:
    """A registry on this machine: no proxy can reach it."""
    return on_loopback_v4(host) or host.startswith(_LOOPBACK_V6)


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
    """A TLS connection whose socket the current request's watch can shut down, from before its handshake (a
    registry, or something posing as one, can drip the handshake as slowly as an answer)."""

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)  # TCP (and a proxy's tunnel) only
        _attach(self.sock)
        server_hostname = getattr(self, "_tunnel_host", None) or self.host
        self.sock = self._context.wrap_socket(self.sock, server_hostname=server_hostname)  # type: ignore[attr-defined]
        _attach(self.sock)


class _Handler(urllib.request.HTTPHandler):
    """Plain HTTP through watched connections."""

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_Connection, req)


class _TLSHandler(urllib.request.HTTPSHandler):
    """HTTPS through watched connections, each with the TLS context of its host (a redirect's too)."""

    def __init__(self, trust: Trust) -> None:
        super().__init__()
        self.trust = trust

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        host = getattr(req, "_tunnel_host", None) or req.host  # through a proxy: the registry's, not the proxy's
        return self.do_open(_TLSConnection, req, context=self.trust.context(host))


def _attach(sock: socket.socket | None) -> None:
    """Give the request made in this thread its socket."""
    call: _Call | None = getattr(_local, "call", None)
    if call is not None and sock is not None:
        call.attach(sock)


def _close_all(idle: dict[tuple[str, str], list[tuple[http.client.HTTPConnection, float]]]) -> None:
    """Close the connections a transport kept (when it is no longer used)."""
    for connections in list(idle.values()):
        for connection, _ in connections:
            connection.close()
    idle.clear()


def _shut(sock: socket.socket) -> None:
    """Shut a socket down both ways; a read blocked on it returns at once."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class _KeepCredentialsHome(urllib.request.HTTPRedirectHandler):
    """Follow redirects, but never send credentials to another host."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]  # noqa: PLR0917
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urllib.parse.urlsplit(newurl).netloc != urllib.parse.urlsplit(req.full_url).netloc:
            new.remove_header("Authorization")
        return new
