"""Docker image references: the grammar of distribution/reference, registry qualification, normalisation."""

from __future__ import annotations

import re
from typing import NamedTuple

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"  # ASCII only, as the distribution spec says
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(
    rf"^(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$"
)
_NAME_MAX = 255
DEFAULT_DOMAIN = "docker.io"


class Reference(NamedTuple):
    """A parsed image reference; `domain` is '' when the reference names none."""

    domain: str
    path: str
    tag: str
    digest: str

    @property
    def repository(self) -> str:
        """domain/path, or path alone."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    @property
    def host(self) -> str:
        """The registry to ask: the domain, or Docker Hub's."""
        return self.domain or DEFAULT_DOMAIN

    @property
    def remote(self) -> str:
        """The repository as the registry API names it: Docker Hub's official images under library/."""
        return f"library/{self.path}" if self.host == DEFAULT_DOMAIN and "/" not in self.path else self.path

    @property
    def version(self) -> str:
        """What the registry is asked for: the digest, else the tag, else latest."""
        return self.digest or self.tag or "latest"

    @property
    def canonical(self) -> str:
        """host/remote:tag or host/remote@digest, as the registry is asked for it."""
        return f"{self.host}/{self.remote}{'@' if self.digest else ':'}{self.version}"

    def __str__(self) -> str:
        text = self.repository
        text += f":{self.tag}" if self.tag else ""
        return text + (f"@{self.digest}" if self.digest else "")


def looks_like_domain(component: str) -> bool:
    """Docker's rule: the first component is a registry when it has '.' or ':' or is localhost."""
    return "." in component or ":" in component or component == "localhost" or component != component.lower()


def parse(text: str) -> Reference:
    """Parse a reference or raise ValueError saying what is wrong with it."""
    match = _REFERENCE.match(text)
    if not match:
        raise ValueError(_why_invalid(text))
    domain = match["domain"] or ""
    path = match["path"]
    if domain and not looks_like_domain(domain):
        path, domain = f"{domain}/{path}", ""
    if len(f"{domain}/{path}" if domain else path) > _NAME_MAX:
        raise ValueError(f"the name is longer than {_NAME_MAX} characters")
    return Reference(domain, path, match["tag"] or "", match["digest"] or "")


def _why_invalid(text: str) -> str:
    """A reason a reference does not parse, in words."""
    name, _, tag = text.rpartition(":") if ":" in text.rsplit("/", 1)[-1] else (text, "", "")
    if name != name.lower() and "/" not in name:
        return "repository names must be lowercase"
    if tag and not re.fullmatch(_TAG, tag):
        return "a tag is at most 128 letters, digits, '_', '.' or '-', all ASCII, and cannot start with '.' or '-'"
    if not text or text.startswith(("/", ":")) or text.endswith(("/", ":")):
        return "an empty name or tag"
    return "not a valid image reference (lowercase name[:tag], e.g. t2t:tf1.8-t2t1.6)"


def qualify(reference: Reference, registry: str) -> Reference:
    """Put a tag under `registry` unless it names a registry itself; the tag defaults to latest."""
    if reference.digest:
        raise ValueError("a tag cannot contain a digest (@sha256:...)")
    tag = reference.tag or "latest"
    if not registry or reference.domain:
        return Reference(reference.domain, reference.path, tag, "")
    domain, _, prefix = registry.partition("/")
    path = f"{prefix}/{reference.path}" if prefix else reference.path
    if len(f"{domain}/{path}") > _NAME_MAX:
        raise ValueError(f"the name under {registry} is longer than {_NAME_MAX} characters")
    return Reference(domain, path, tag, "")


def normalized(reference: Reference) -> str:
    """The fully spelled-out form used to compare references: docker.io/library/x:latest."""
    domain = reference.domain or DEFAULT_DOMAIN
    path = reference.path
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = f"library/{path}"
    tag = reference.tag or ("" if reference.digest else "latest")
    text = f"{domain}/{path}" + (f":{tag}" if tag else "")
    return text + (f"@{reference.digest}" if reference.digest else "")


def pinned(reference: str, digest: str) -> str:
    """repository@digest: exactly the image built in this run."""
    return f"{untagged(reference)}@{digest}"


def untagged(reference: str) -> str:
    """A reference without its tag (a registry's :port is not a tag)."""
    return reference.rsplit(":", 1)[0] if ":" in reference.rsplit("/", 1)[-1] else reference
