"""Registries that want bearer tokens (as most hosted ones do): each call answers the challenge with a token for the
scopes the registry names (each a parameter of its own), docker login's credentials go only to the token service,
and a tag delete (what puts back a release's new tags) asks for the delete scope like any other call."""

from __future__ import annotations

import base64
import http.server
import json
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from buildflow.engine.base import EngineError
from buildflow.engine.registry import RegistryClient
from buildflow.references import parse
from tests.conftest import QuietHandler, serving

USER, SECRET = "ci-bot", "s3cret-token-value"
ACTIONS = {"GET": "pull", "HEAD": "pull", "PUT": "push", "DELETE": "delete"}
MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}).encode()


class TokenRegistry(http.server.ThreadingHTTPServer):
    """Manifests in memory behind bearer tokens, and the token service that hands them out (at /token)."""

    def __init__(
        self, *, grants: frozenset[str] = frozenset(ACTIONS.values()), transient: int = 0, lost: int = 0
    ) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.manifests: dict[tuple[str, str], bytes] = {}
        self.grants = grants  # the actions the token service allows docker login's account
        self.transient = transient  # registry calls answered 503 before the first real answer
        self.lost = lost  # registry calls carried out, then answered 502 (an answer lost on the way)
        self.deletes = True  # False: DELETE is answered 404, as by a registry that has no such call
        self.scopes: list[str] = []  # what the token service was asked for
        self.authorizations: list[tuple[str, str]] = []  # (path, Authorization) of every request

    @property
    def host(self) -> str:
        address, port = self.server_address[:2]
        return f"{address!s}:{port}"


class _Handler(QuietHandler):
    server: TokenRegistry

    def _token(self) -> None:
        """The token service: a token naming the actions asked for that the account may do."""
        scopes = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)["scope"]
        self.server.scopes.extend(scopes)
        expected = "Basic " + base64.b64encode(f"{USER}:{SECRET}".encode()).decode()
        _, repository, actions = scopes[0].split(":")  # the token is for the first: the one the call is in
        allowed = [action for action in actions.split(",") if action in self.server.grants]
        if self.headers.get("Authorization") != expected or not allowed:
            return self._answer(401)
        token = f"{repository}|{','.join(allowed)}"
        return self._answer(200, json.dumps({"token": token}).encode())

    def _handle(self) -> None:
        self.server.authorizations.append((self.path, self.headers.get("Authorization", "")))
        if self.path.startswith("/token"):
            return self._token()
        repository, _, tag = self.path.removeprefix("/v2/").partition("/manifests/")
        action = ACTIONS[self.command]
        repository_granted, _, actions = self.headers.get("Authorization", "").removeprefix("Bearer ").partition("|")
        if repository_granted != repository or action not in actions.split(","):
            realm = f"http://{self.server.host}/token"
            challenge = f'Bearer realm="{realm}",service="fake",scope="repository:{repository}:{action}"'
            return self._answer(401, headers={"WWW-Authenticate": challenge})
        if self.server.transient:
            self.server.transient -= 1
            return self._answer(503)
        data = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
        status, body, headers = self._apply(repository, tag, data)
        if self.server.lost:
            self.server.lost -= 1
            return self._answer(502)
        return self._answer(status, body, headers)

    def _apply(self, repository: str, tag: str, data: bytes) -> tuple[int, bytes, dict[str, str]]:
        """The call itself, once authorised: its answer."""
        if self.command == "PUT":
            self.server.manifests[(repository, tag)] = data
            return 201, b"", {}
        if (repository, tag) not in self.server.manifests:
            return 404, b"", {}
        if self.command == "DELETE" and not self.server.deletes:
            return 404, b"", {}
        if self.command == "DELETE":
            del self.server.manifests[(repository, tag)]
            return 202, b"", {}
        headers = {"Content-Type": "application/vnd.oci.image.manifest.v1+json", "Docker-Content-Digest": "sha256:1"}
        return 200, self.server.manifests[(repository, tag)], headers

    do_GET = do_HEAD = do_PUT = do_DELETE = _handle


@pytest.fixture
def registry() -> Iterator[TokenRegistry]:
    with serving(TokenRegistry()) as server:
        yield server


def logged_in(tmp_path: Path, host: str) -> RegistryClient:
    """A client with docker login's credentials for `host`."""
    auth = base64.b64encode(f"{USER}:{SECRET}".encode()).decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth}}}))
    return RegistryClient(timeout=10, attempts=2, docker_config=tmp_path)


def test_each_call_asks_the_token_service_for_the_scope_the_registry_names(
    registry: TokenRegistry, tmp_path: Path
) -> None:
    registry.manifests[("team/app", "1")] = MANIFEST
    client = logged_in(tmp_path, registry.host)
    assert client.digest(f"{registry.host}/team/app:1") == "sha256:1"
    client.copy_tag(f"{registry.host}/team/app:1", f"{registry.host}/team/app:latest")
    assert client.delete_tag(f"{registry.host}/team/app:latest") is True
    assert ("team/app", "latest") not in registry.manifests and ("team/app", "1") in registry.manifests
    assert registry.scopes == ["repository:team/app:pull", "repository:team/app:push", "repository:team/app:delete"]
    basic = [path for path, authorization in registry.authorizations if authorization.startswith("Basic")]
    assert basic and all(path.startswith("/token") for path in basic)  # the password only to the token service


def test_each_scope_of_a_challenge_is_a_parameter_of_its_own(registry: TokenRegistry, tmp_path: Path) -> None:
    client = logged_in(tmp_path, registry.host)
    realm = f"http://{registry.host}/token"
    challenge = f'Bearer realm="{realm}",service="fake",scope="repository:team/app:pull,push repository:team/ci:pull"'
    answer = client.credentials.answer(parse(f"{registry.host}/team/app:1"), challenge)
    assert answer == "Bearer team/app|pull,push"
    assert registry.scopes == ["repository:team/app:pull,push", "repository:team/ci:pull"]  # as a blob mount asks


def test_a_tag_delete_tries_again_what_can_pass(tmp_path: Path) -> None:
    with serving(TokenRegistry(transient=1)) as registry:
        registry.manifests[("team/app", "rc")] = MANIFEST
        assert logged_in(tmp_path, registry.host).delete_tag(f"{registry.host}/team/app:rc") is True
    assert ("team/app", "rc") not in registry.manifests


def test_a_tag_delete_whose_answer_was_lost_is_seen_to_have_worked(tmp_path: Path) -> None:
    with serving(TokenRegistry(lost=1)) as registry:
        registry.manifests[("team/app", "rc")] = MANIFEST
        assert logged_in(tmp_path, registry.host).delete_tag(f"{registry.host}/team/app:rc") is True
    assert ("team/app", "rc") not in registry.manifests


def test_a_404_from_a_registry_without_tag_deletes_is_a_refusal(registry: TokenRegistry, tmp_path: Path) -> None:
    registry.manifests[("team/app", "rc")] = MANIFEST
    registry.deletes = False
    assert logged_in(tmp_path, registry.host).delete_tag(f"{registry.host}/team/app:rc") is False
    assert ("team/app", "rc") in registry.manifests


def test_a_delete_the_account_may_not_do_says_so_in_one_line(tmp_path: Path) -> None:
    with serving(TokenRegistry(grants=frozenset({"pull", "push"}))) as registry:
        registry.manifests[("team/app", "rc")] = MANIFEST
        with pytest.raises(EngineError, match="refused the credentials of docker login") as caught:
            logged_in(tmp_path, registry.host).delete_tag(f"{registry.host}/team/app:rc")
    assert not caught.value.transient and SECRET not in str(caught.value)
    assert ("team/app", "rc") in registry.manifests


def test_without_a_login_a_tag_delete_is_refused_not_raised(registry: TokenRegistry, tmp_path: Path) -> None:
    registry.manifests[("team/app", "rc")] = MANIFEST
    anonymous = RegistryClient(timeout=10, attempts=2, docker_config=tmp_path)  # no config.json: no credentials
    assert anonymous.delete_tag(f"{registry.host}/team/app:rc") is False
    assert ("team/app", "rc") in registry.manifests
