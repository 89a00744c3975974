"""Registry requests as buildflow makes them: its token for the repository, one authentication when challenged,
statuses turned into errors, and each request that fails in a way that can pass tried again on its own, a few
times and quickly, before its caller's retries start over."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from email.message import Message
from pathlib import Path
from typing import IO, TypeVar

from buildflow.engine.auth import Credentials
from buildflow.engine.base import EngineError
from buildflow.engine.blobs import retry_after
from buildflow.engine.transport import DEADLINE, Stream, Transport
from buildflow.engine.trust import Trust
from buildflow.references import DEFAULT_DOMAIN, Reference

REQUEST_ATTEMPTS = 5  # tries of one request that fails in a way that can pass
_PAUSES = (0.2, 0.5, 1.0, 2.0)  # seconds between them (or what the registry asks, at most _LONGEST_PAUSE)
_LONGEST_PAUSE = 5.0
_ANSWERED = frozenset({404})  # error statuses a call returns to its caller instead of raising: "not there"
Body = bytes | Callable[[], IO[bytes]] | None  # bytes, or a way to open the body again for each try
Answer = tuple[int, Message, bytes]
Result = TypeVar("Result")
RequestRetry = Callable[[str, str, float], None]  # (host, error, seconds to wait): a request is tried again
DOCKER_HUB = DEFAULT_DOMAIN  # the registry name of Docker Hub in references; its API host is never written here


class Requests:
    """The requests of a registry client, under a Transport's deadlines, with Docker's credentials."""

    def __init__(
        self,
        *,
        timeout: float = DEADLINE,
        docker_config: Path | None = None,
        attempts: int = REQUEST_ATTEMPTS,
        on_retry: RequestRetry | None = None,
        trust: Trust | None = None,
    ) -> None:
        self.transport = Transport(deadline=timeout, trust=trust)
        self.credentials = Credentials(self.transport, docker_config)
        self.attempts = attempts
        self.on_retry = on_retry or (lambda host, error, wait: None)

    def interrupt(self) -> None:
        """End every request under way at once (from a signal handler); later requests are sent as usual."""
        self.transport.interrupt()

    def _base(self, ref: Reference) -> str:
        """scheme://host of a reference's registry; Docker Hub is refused here, the one place URLs start."""
        if ref.host == DOCKER_HUB:
            raise EngineError(
                f"{ref}: buildflow's registry client does not talk to Docker Hub (only buildx looks images up there): "
                "keep images, build records and release tags in a registry of your own (registry: in the file, or "
                "--registry), and copy finished images to Docker Hub with docker buildx imagetools create",
                transient=False,
            )
        return self.transport.base(ref.host)

    def _open_stream(self, ref: Reference, url: str, size: int) -> Stream:
        """A GET whose answer is read as a stream, authenticating once when challenged; errors become EngineErrors."""
        response = self.transport.open(url, self.credentials.header(ref), size)
        if response.status == 401:
            challenge = response.headers.get("WWW-Authenticate", "")
            response.close()
            authorization = self.credentials.answer(ref, challenge)
            if authorization:
                response = self.transport.open(url, {"Authorization": authorization}, size)
        if response.status < 400:
            return response
        status, wait = response.status, response.headers.get("Retry-After", "")
        response.close()
        where = f"{ref.host}/{ref.remote}/{url.rpartition('/')[2]}"
        if status == 404:
            raise EngineError(f"blob {where} is not in the registry", transient=False)
        raise self._http_error(status, wait, ref, f"GET {where}")

    def _request(
        self,
        method: str,
        ref: Reference,
        path: str,
        headers: Mapping[str, str],
        body: Body = None,
        *,
        attempts: int = 0,
    ) -> Answer:
        """One registry call, tried again when it fails in a way that can pass; errors become EngineErrors."""
        url = f"{self._base(ref)}/v2/{ref.remote}/{path}"
        return self._request_url(method, ref, url, headers, body, attempts=attempts)

    def _request_url(
        self,
        method: str,
        ref: Reference,
        url: str,
        headers: Mapping[str, str],
        body: Body,
        *,
        attempts: int = 0,
        answered: frozenset[int] = _ANSWERED,
    ) -> Answer:
        """_request for a full URL (an upload location); `attempts` 0: the client's; `answered`: the error statuses
        returned to the caller instead of raised."""
        return self._tried(lambda: self._request_once(method, ref, url, headers, body, answered=answered), attempts)

    def _request_once(
        self,
        method: str,
        ref: Reference,
        url: str,
        headers: Mapping[str, str],
        body: Body,
        *,
        answered: frozenset[int] = _ANSWERED,
    ) -> Answer:
        """One try of a call, authenticating once when challenged."""
        status, answer_headers, answer = self._send(method, url, dict(headers), body, ref)
        if status == 401:
            authorization = self.credentials.answer(ref, answer_headers.get("WWW-Authenticate", ""))
            if authorization:
                status, answer_headers, answer = self._send(
                    method, url, {**headers, "Authorization": authorization}, body, ref
                )
        if status >= 400 and status not in answered:
            raise self._http_error(status, answer_headers.get("Retry-After", ""), ref, f"{method} {ref.canonical}")
        return status, answer_headers, answer

    def _tried(self, call: Callable[[], Result], attempts: int = 0) -> Result:
        """Call, trying again after a failure that can pass, with short pauses (or what the registry asks)."""
        attempts = attempts or self.attempts
        for attempt in range(1, attempts + 1):
            try:
                return call()
            except EngineError as error:
                if not error.transient or attempt == attempts:
                    raise
                wait = min(max(_PAUSES[min(attempt, len(_PAUSES)) - 1], error.retry_after or 0.0), _LONGEST_PAUSE)
                self.on_retry(str(error).rpartition(" from ")[2] or "registry", str(error), wait)
                self.transport.pause(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(self, method: str, url: str, headers: Mapping[str, str], body: Body, ref: Reference) -> Answer:
        """One request with this client's token for the repository, under the transport's deadline."""
        headers = {**self.credentials.header(ref), **headers}
        if callable(body):
            with body() as stream:
                return self.transport.send(method, url, headers, stream, size=int(headers.get("Content-Length", 0)))
        return self.transport.send(method, url, headers, body)

    def _http_error(self, status: int, wait: str, ref: Reference, request: str) -> EngineError:
        """The error of a failed call: no or refused credentials (401, 403), or its status (5xx, 429: transient)."""
        if status in (401, 403) and self.credentials.of(ref.host) is None:
            return EngineError(f"not logged in to {ref.host}: run docker login {ref.host}", transient=False)
        if status in (401, 403):
            return EngineError(
                f"{ref.host} refused the credentials of docker login ({status}): run docker login {ref.host} again, "
                "with an account that may push to it",
                transient=False,
            )
        transient = status >= 500 or status == 429
        seconds = retry_after(wait) if transient else None
        return EngineError(
            f"{request}: {status} from {ref.host}", transient=transient, retry_after=seconds, status=status
        )
