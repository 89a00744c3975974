"""How Docker reaches each registry: insecure or not (the daemon's insecure-registries), the TLS trust for it
(the system's CAs, plus CA and client certificates in /etc/docker/certs.d/HOST/), and Docker Hub's credential key.

The daemon is asked once per run (`docker info`), and only when a registry that is not on IPv4 loopback is first
reached: 127.0.0.0/8 is insecure on every Docker daemon, so runs against a local registry never ask it.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import json
import os
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from buildflow.engine.base import EngineError

CERTS_DIR = Path("/etc/docker/certs.d")  # Docker's; the one place Docker reads registries' certificates from
CERTS_DIR_VARIABLE = "BUILDFLOW_DOCKER_CERTS_DIR"  # another directory laid out like it (tests, rootless Docker)
INFO_TIMEOUT = 20  # seconds `docker info` may take
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
LOOPBACK_V4 = ipaddress.ip_network("127.0.0.0/8")  # insecure on every Docker daemon: it always adds it
# What `docker info` is asked: the registry settings and the key `docker login` keeps Docker Hub's credentials under.
_INFO_FORMAT = '{"RegistryConfig": {{json .RegistryConfig}}, "IndexServerAddress": {{json .IndexServerAddress}}}'


@dataclass(frozen=True)
class DaemonRegistries:
    """What a Docker daemon says about registries: which ones it reaches without TLS verification, and the key
    `docker login` keeps Docker Hub's credentials under in config.json (its IndexServerAddress)."""

    insecure_names: frozenset[str] = frozenset()  # insecure-registries given by name (host:port), Secure false
    secure_names: frozenset[str] = frozenset()  # registries the daemon names as secure (Docker Hub, mirrors)
    insecure_networks: tuple[IPNetwork, ...] = (LOOPBACK_V4,)  # insecure-registries given as CIDRs
    hub_key: str = ""  # "" when the daemon did not answer: Docker Hub's credentials are then not looked up

    def insecure(self, host: str) -> bool:
        """Docker's rule: a registry named insecure, or one whose address is in an insecure network."""
        if host in self.insecure_names or host in self.secure_names:
            return host in self.insecure_names
        return any(address in network for address in addresses(host) for network in self.insecure_networks)


def daemon_registries(info: Mapping[str, Any]) -> DaemonRegistries:
    """The registry settings in a `docker info` answer (RegistryConfig, IndexServerAddress); Docker's defaults for
    what it leaves out."""
    config = info.get("RegistryConfig")
    config = config if isinstance(config, dict) else {}
    indexes = config.get("IndexConfigs")
    by_security: dict[bool, set[str]] = {True: set(), False: set()}
    for name, index in indexes.items() if isinstance(indexes, dict) else ():
        if isinstance(index, dict) and isinstance(index.get("Secure"), bool):
            by_security[index["Secure"]].add(str(index.get("Name") or name))
    networks: list[IPNetwork] = []
    for cidr in config.get("InsecureRegistryCIDRs") or []:
        with contextlib.suppress(TypeError, ValueError):
            networks.append(ipaddress.ip_network(str(cidr), strict=False))
    hub_key = info.get("IndexServerAddress")
    return DaemonRegistries(
        insecure_names=frozenset(by_security[False]),
        secure_names=frozenset(by_security[True]),
        insecure_networks=tuple(networks) if LOOPBACK_V4 in networks else (LOOPBACK_V4, *networks),
        hub_key=hub_key if isinstance(hub_key, str) else "",
    )


@functools.cache
def from_daemon(context: str = "") -> DaemonRegistries:
    """The registry settings of the daemon of a docker context ("" for the current one), asked once per process;
    Docker's defaults when no daemon answers."""
    from buildflow.engine.docker import Docker

    try:
        answer = Docker(context=context, timeout=INFO_TIMEOUT).output(["info", "--format", _INFO_FORMAT])
        info = json.loads(answer)
    except (EngineError, ValueError):
        return DaemonRegistries()
    return daemon_registries(info) if isinstance(info, dict) else DaemonRegistries()


def addresses(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The IP addresses of a registry host (host, host:port, [v6]:port), resolved as Docker does; [] when it does
    not resolve."""
    name = urllib.parse.urlsplit(f"//{host}").hostname or ""
    with contextlib.suppress(ValueError):
        return [ipaddress.ip_address(name)]
    try:
        found = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    return [ipaddress.ip_address(str(entry[4][0]).partition("%")[0]) for entry in found]


def on_loopback_v4(host: str) -> bool:
    """localhost or 127.x.x.x: insecure for Docker without asking the daemon (127.0.0.0/8 always is)."""
    name = urllib.parse.urlsplit(f"//{host}").hostname or ""
    return name == "localhost" or name.startswith("127.")


class Trust:
    """For each registry host: whether Docker reaches it as an insecure registry, and the TLS context to reach it
    with. Both are worked out once per host; the daemon is asked once, when first needed."""

    def __init__(
        self, daemon: Callable[[], DaemonRegistries] = from_daemon, certs_dir: Path | str | None = None
    ) -> None:
        self._ask = daemon
        self._daemon: DaemonRegistries | None = None
        self.certs_dir = Path(certs_dir or os.environ.get(CERTS_DIR_VARIABLE) or CERTS_DIR)
        self._insecure: dict[str, bool] = {}
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._lock = threading.Lock()
        self._asking = threading.Lock()

    @property
    def daemon(self) -> DaemonRegistries:
        """The daemon's registry settings, asked on first use (once, whichever thread needs them first)."""
        with self._asking:
            if self._daemon is None:
                self._daemon = self._ask()
            return self._daemon

    def insecure(self, host: str) -> bool:
        """Docker reaches this registry without verifying its certificate, or over plain HTTP."""
        if on_loopback_v4(host):
            return True
        with self._lock:
            known = self._insecure.get(host)
        if known is None:
            known = self.daemon.insecure(host)
            with self._lock:
                self._insecure[host] = known
        return known

    def context(self, host: str) -> ssl.SSLContext:
        """The TLS context for a registry: the system's CAs and certs.d/HOST/*.crt, the client certificate pairs
        certs.d/HOST/*.cert and *.key, and no verification for an insecure registry (as Docker does)."""
        with self._lock:
            context = self._contexts.get(host)
        if context is None:
            context = self._new_context(host)
            with self._lock:
                self._contexts[host] = context
        return context

    def _new_context(self, host: str) -> ssl.SSLContext:
        """A TLS context for a host, its certificates read from its certs.d directory. An insecure registry's is not
        verified (as Docker does): it needs no CA, and loading the system's would cost a run's first request ~0.1 s."""
        insecure = self.insecure(host)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT) if insecure else ssl.create_default_context()
        if insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        directory = self.certs_dir / host
        try:
            files = sorted(directory.iterdir()) if directory.is_dir() else []
        except OSError as error:
            message = f"{directory}: cannot read the registry's certificates ({error})"
            raise EngineError(message, transient=False) from None
        for path in files:
            _load(context, path, files)
        return context

    def untrusted(self, host: str, reason: str) -> str:
        """What to do when a registry's certificate does not verify: one line naming the host and what to set."""
        return (
            f"{host}: its TLS certificate is not trusted ({reason}): put the certificate of the CA that signed it in "
            f"{self.certs_dir / host / 'ca.crt'}, or add {host} to insecure-registries in the Docker daemon's "
            "daemon.json (and restart it)"
        )

    def no_client_certificate(self, host: str, reason: str) -> str:
        """What to do when a registry refuses the connection for want of a (good) client certificate."""
        return (
            f"{host}: the registry wants a client certificate it trusts ({reason}): put it and its key in "
            f"{self.certs_dir / host}/ as client.cert and client.key"
        )

    def not_tls(self, host: str, reason: str) -> str:
        """What to do when a registry that is not insecure does not speak TLS."""
        return (
            f"{host}: the registry does not answer TLS ({reason}); if it serves plain HTTP, add {host} to "
            "insecure-registries in the Docker daemon's daemon.json (and restart it)"
        )


def _load(context: ssl.SSLContext, path: Path, files: list[Path]) -> None:
    """Docker's certs.d files: *.crt a CA, *.cert and *.key a client certificate and its key (both or neither)."""
    try:
        if path.suffix == ".crt":
            context.load_verify_locations(cafile=str(path))
        elif path.suffix == ".cert":
            key = path.with_suffix(".key")
            if key not in files:
                raise EngineError(f"{path}: a client certificate without its key {key.name}", transient=False)
            context.load_cert_chain(str(path), str(key))
        elif path.suffix == ".key" and path.with_suffix(".cert") not in files:
            raise EngineError(f"{path}: a key without its client certificate {path.stem}.cert", transient=False)
    except (OSError, ssl.SSLError) as error:
        raise EngineError(f"{path}: not a usable PEM certificate or key ({error})", transient=False) from None
