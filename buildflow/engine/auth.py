"""Docker's credentials for registries: config.json, credential helpers, Basic and Bearer challenges.

Secrets read here are only ever sent in Authorization headers to the registry (or its token service) they
belong to; they are never logged, and redirects to other hosts drop them. `docker login` keeps a registry's
credentials under its host name, and Docker Hub's under the daemon's IndexServerAddress, asked of the daemon
(engine/trust.py) rather than written here.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import threading
import urllib.parse
from pathlib import Path

from buildflow.engine.base import EngineError
from buildflow.engine.transport import Transport
from buildflow.references import DEFAULT_DOMAIN, Reference

_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


class Credentials:
    """Answers registries' challenges with Docker's credentials, and keeps the bearer tokens they give."""

    def __init__(self, transport: Transport, docker_config: Path | None = None) -> None:
        self.transport = transport
        self.docker_config = docker_config or Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker"))
        self._tokens: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def header(self, ref: Reference) -> dict[str, str]:
        """The bearer token held for a repository, as a header (empty when none is held)."""
        with self._lock:
            token = self._tokens.get((ref.host, ref.remote))
        return {"Authorization": f"Bearer {token}"} if token else {}

    def answer(self, ref: Reference, challenge: str) -> str | None:
        """An Authorization header answering a Basic or Bearer challenge, or None when there is no answer. The
        token service is asked with a GET, each scope of the challenge a `scope` parameter of its own (the token
        specification's form; a challenge joins them with spaces)."""
        credentials = self.of(ref.host)
        if challenge.lower().startswith("basic"):
            return _basic(credentials) if credentials else None
        fields = dict(_CHALLENGE.findall(challenge))
        if "realm" not in fields:
            return None
        scopes = (fields.get("scope") or f"repository:{ref.remote}:pull,push").split()  # a mount names two
        query = urllib.parse.urlencode([("service", fields.get("service", "")), *(("scope", one) for one in scopes)])
        headers = {"Authorization": _basic(credentials)} if credentials else {}
        try:
            status, _, body = self.transport.send("GET", f"{fields['realm']}?{query}", headers)
            answer = json.loads(body) if status == 200 else {}
        except (EngineError, ValueError):
            return None
        token = answer.get("token") or answer.get("access_token") if isinstance(answer, dict) else None
        if not token:
            return None
        with self._lock:
            self._tokens[(ref.host, ref.remote)] = token
        return f"Bearer {token}"

    def of(self, host: str) -> tuple[str, str] | None:
        """(user, secret) for a registry from the Docker config or its credential helper; never logged."""
        key = self.key(host)
        try:
            config = json.loads((self.docker_config / "config.json").read_text()) if key else None
        except (OSError, ValueError):
            return None
        if not isinstance(config, dict):
            return None
        helper = config.get("credHelpers", {}).get(key) or config.get("credsStore")
        if helper:
            return _from_helper(helper, key)
        auth = config.get("auths", {}).get(key, {}).get("auth")
        if auth:
            user, _, secret = base64.b64decode(auth).decode().partition(":")
            return user, secret
        return None

    def key(self, host: str) -> str:
        """The key `docker login` keeps a registry's credentials under: its host, or for Docker Hub the daemon's
        IndexServerAddress ('' when no daemon answers)."""
        return self.transport.trust.daemon.hub_key if host == DEFAULT_DOMAIN else host


def _basic(credentials: tuple[str, str]) -> str:
    """An HTTP Basic Authorization value."""
    return "Basic " + base64.b64encode(":".join(credentials).encode()).decode()


def _from_helper(helper: str, host: str) -> tuple[str, str] | None:
    """Ask docker-credential-HELPER for a registry's credentials."""
    try:
        result = subprocess.run(
            [f"docker-credential-{helper}", "get"], input=host, capture_output=True, text=True, timeout=30, check=False
        )
        answer = json.loads(result.stdout) if result.returncode == 0 else {}
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None
    return (answer["Username"], answer["Secret"]) if answer.get("Secret") else None
