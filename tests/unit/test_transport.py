"""Registry requests under deadlines: a trickling or silent server ends a request in bounded time, an interruption
ends it at once, and a host that keeps running out of time is given up on."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from buildflow.engine.base import EngineError
from buildflow.engine.registry import RegistryClient
from buildflow.engine.transport import UNANSWERED_IN_A_ROW, Transport


@contextmanager
def listening(serve: Callable[[socket.socket], None]) -> Iterator[str]:
    """A loopback server handing each connection to `serve` in a thread of its own, until the block ends; its host."""
    listener = socket.create_server(("127.0.0.1", 0))

    def accept() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:  # the listener was closed
                return
            threading.Thread(target=serve, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


@contextmanager
def server(behaviour: str) -> Iterator[str]:
    """A loopback server that drips its answer a byte a second ('drip'), or never answers ('silent'); its host."""
    stop = threading.Event()

    def serve(connection: socket.socket) -> None:
        with connection:
            connection.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" if behaviour == "drip" else b"":
                if stop.wait(1):
                    return
                connection.sendall(bytes([byte]))
            stop.wait(60)

    try:
        with listening(serve) as host:
            yield host
    finally:
        stop.set()


@pytest.mark.parametrize("behaviour", ["drip", "silent"])
def test_an_answer_that_never_completes_ends_at_the_deadline(behaviour: str) -> None:
    with server(behaviour) as host, pytest.raises(EngineError) as caught:
        Transport(deadline=1.5).send("GET", f"http://{host}/v2/", {})
    assert str(caught.value) == f"{host}: no complete answer within 2 s" and caught.value.transient


def test_an_interruption_ends_a_request_under_way_at_once() -> None:
    transport = Transport(deadline=60)
    errors: list[EngineError] = []

    def request() -> None:
        try:
            transport.send("GET", f"http://{host}/v2/", {})
        except EngineError as error:
            errors.append(error)

    with server("silent") as host:
        thread = threading.Thread(target=request)
        thread.start()
        time.sleep(0.5)
        transport.interrupt()
        thread.join(10)
    assert not thread.is_alive()
    assert [str(error) for error in errors] == [f"{host}: cancelled: the run was interrupted"]
    assert not errors[0].transient


def test_a_pause_between_tries_ends_when_the_run_is_interrupted() -> None:
    transport = Transport()
    threading.Timer(0.2, transport.interrupt).start()
    with pytest.raises(EngineError, match="interrupted"):
        transport.pause(60)


def test_a_host_that_keeps_running_out_of_time_is_given_up_on() -> None:
    client = RegistryClient(timeout=0.5, attempts=1)
    with server("silent") as host:
        for _ in range(UNANSWERED_IN_A_ROW):
            with pytest.raises(EngineError, match="no complete answer"):
                client.digest(f"{host}/a/b:1")
        with pytest.raises(EngineError) as caught:
            client.digest(f"{host}/a/b:1")
    assert str(caught.value).startswith(f"{host} does not answer: {UNANSWERED_IN_A_ROW} requests in a row")
    assert not caught.value.transient  # the run ends instead of trying it again


def test_a_request_that_can_pass_is_tried_again_on_its_own() -> None:
    retried: list[tuple[str, float]] = []
    client = RegistryClient(timeout=0.5, attempts=3, on_retry=lambda host, error, wait: retried.append((error, wait)))
    with server("silent") as host, pytest.raises(EngineError):
        client.digest(f"{host}/a/b:1")
    assert [wait for _, wait in retried] == [0.2, 0.5]
    assert all("no complete answer" in error for error, _ in retried)


@contextmanager
def counting_server(close_after_each: bool = False, close_first: int = 0) -> Iterator[tuple[str, list[int]]]:
    """A loopback HTTP/1.1 server answering 200 to every request, keeping connections open unless
    `close_after_each` (it then closes each one after its answer without saying so, as an idle timeout does) or
    the connection is one of the `close_first`; its host, and the number of requests each connection carried."""
    carried: list[int] = []

    def serve(connection: socket.socket) -> None:
        carried.append(0)
        index = len(carried) - 1
        with connection, connection.makefile("rb") as reader:
            while reader.readline():
                length = 0
                while (line := reader.readline()) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                reader.read(length)
                carried[index] += 1
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                if close_after_each or index < close_first:
                    time.sleep(0.05)
                    return

    with listening(serve) as host:
        yield host, carried


def test_requests_to_one_registry_share_a_kept_alive_connection() -> None:
    transport = Transport(deadline=5)
    with counting_server() as (host, carried):
        answers = [transport.send("HEAD" if n % 2 else "PUT", f"http://{host}/v2/{n}", {}, b"x" * n) for n in range(6)]
    assert [status for status, _, _ in answers] == [200] * 6
    assert carried == [6]


def test_a_kept_connection_the_registry_closed_is_replaced_at_once() -> None:
    transport = Transport(deadline=5)
    with counting_server(close_after_each=True) as (host, carried):
        for n in range(3):
            time.sleep(0.2)  # the server has closed the connection the last request used
            status, _, body = transport.send("GET", f"http://{host}/v2/{n}", {})
            assert (status, body) == (200, b"ok")
    assert carried == [1, 1, 1]


def test_a_connection_kept_by_one_thread_serves_the_next_threads_request() -> None:
    transport = Transport(deadline=5)
    with counting_server() as (host, carried):
        for n in range(3):
            thread = threading.Thread(target=transport.send, args=("GET", f"http://{host}/v2/{n}", {}))
            thread.start()
            thread.join(10)
    assert carried == [3]


def test_many_kept_connections_the_registry_closed_cost_one_replacement() -> None:
    transport = Transport(deadline=5)
    with counting_server(close_first=4) as (host, carried):
        threads = [threading.Thread(target=transport.send, args=("GET", f"http://{host}/v2/{n}", {})) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        time.sleep(0.2)  # the server has closed all four
        for n in range(3):
            assert transport.send("GET", f"http://{host}/v2/again/{n}", {})[0] == 200
    assert carried == [1, 1, 1, 1, 3]  # the three on one new connection: no other closed one was tried


def test_a_connection_idle_too_long_is_not_used_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("buildflow.engine.transport._IDLE_SECONDS", 0.0)
    transport = Transport(deadline=5)
    with counting_server() as (host, carried):
        for n in range(3):
            transport.send("GET", f"http://{host}/v2/{n}", {})
    assert carried == [1, 1, 1]
