"""What registry clean-up needs beyond lookups: every tag of a repository, page by page, and manifest deletes.

A manifest is deleted by its digest (DELETE /v2/NAME/manifests/DIGEST), which removes every tag that points at
it; the caller decides which digests may go. A registry that does not delete (distribution with deletes off
answers 405 UNSUPPORTED) is told apart from other failures, so that it can be said in one line. The bytes of
deleted images leave the registry's storage only when the registry collects its garbage.
"""

from __future__ import annotations

import datetime
import enum
import hashlib
import json
import re
import urllib.parse

from buildflow.engine.base import EngineError
from buildflow.engine.registry import MANIFEST_TYPES, RegistryClient
from buildflow.references import parse

TAGS_PER_PAGE = 1000
_DELETE_ANSWERED = frozenset({404, 405})  # gone already; deletes refused (405 UNSUPPORTED)
_NEXT = re.compile(r"<([^>]+)>\s*;\s*rel=\"?next\"?")


class Deleted(enum.Enum):
    """How a manifest delete ended."""

    DELETED = "deleted"
    MISSING = "missing"  # already gone (another clean-up, or never there)
    REFUSED = "refused"  # the registry does not delete manifests (405 UNSUPPORTED)


class RegistryCatalog(RegistryClient):
    """A registry client that also lists tags and deletes manifests by digest."""

    def tags(self, repository: str) -> list[str]:
        """Every tag of a repository (HOST/NAME), following the registry's pages (Link: <…>; rel="next")."""
        ref = parse(f"{repository}:probe")
        url = f"{self._base(ref)}/v2/{ref.remote}/tags/list?n={TAGS_PER_PAGE}"
        found: list[str] = []
        while url:
            status, headers, body = self._request_url("GET", ref, url, {}, None)
            if status == 404:
                return found  # no such repository: nothing was ever pushed there
            found.extend(_page_tags(body, repository))
            url = _next_page(url, headers.get("Link", ""))
        return found

    def delete_manifest(self, repository: str, digest: str) -> Deleted:
        """Delete the manifest `digest` of a repository, and with it every tag on it."""
        ref = parse(f"{repository}@{digest}")
        url = f"{self._base(ref)}/v2/{ref.remote}/manifests/{digest}"
        status, headers, _ = self._request_url("DELETE", ref, url, {}, None, answered=_DELETE_ANSWERED)
        if status in (200, 202):
            return Deleted.DELETED
        if status == 404:
            return Deleted.MISSING
        if status == 405:
            return Deleted.REFUSED
        raise self._http_error(status, headers.get("Retry-After", ""), ref, f"DELETE {ref.canonical}")

    def contents(self, reference: str) -> dict[str, int]:
        """What an image or artifact is made of: its manifest (or index, and the manifests below it), config and
        layers, each digest with its size in bytes."""
        ref = parse(reference)
        status, _, body = self._request("GET", ref, f"manifests/{ref.version}", {"Accept": MANIFEST_TYPES})
        if status == 404:
            return {}
        try:
            manifest = json.loads(body)
        except ValueError:
            manifest = None
        found = {"sha256:" + hashlib.sha256(body).hexdigest(): len(body)}
        if not isinstance(manifest, dict):
            return found
        for blob in [manifest.get("config"), *manifest.get("layers", [])]:
            if isinstance(blob, dict) and "digest" in blob:
                found[str(blob["digest"])] = int(blob.get("size", 0))
        for child in manifest.get("manifests", []):
            if isinstance(child, dict) and "digest" in child:
                found |= self.contents(f"{ref.host}/{ref.remote}@{child['digest']}")
        return found

    def created(self, reference: str) -> float:
        """When an image says it was made (its config's `created`), in seconds since the epoch; 0 when unknown."""
        try:
            manifest = self._image_manifest(reference)
            config = self.blob_json(reference, manifest["config"]["digest"])
            stamp = str(config.get("created", "")) if isinstance(config, dict) else ""
            return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        except (EngineError, ValueError, KeyError, TypeError):
            return 0.0


def _page_tags(body: bytes, repository: str) -> list[str]:
    """The tags of one page of a tags/list answer."""
    try:
        document = json.loads(body)
    except ValueError:
        raise EngineError(f"{repository}: the registry answered a tag list that is no JSON", transient=False) from None
    tags = document.get("tags") if isinstance(document, dict) else None
    return [str(tag) for tag in tags] if isinstance(tags, list) else []


def _next_page(url: str, link: str) -> str:
    """The URL of the next page a Link header names (relative to the registry), or '' on the last page."""
    match = _NEXT.search(link)
    if not match:
        return ""
    following = urllib.parse.urljoin(url, match.group(1))
    same_host = urllib.parse.urlsplit(following).netloc == urllib.parse.urlsplit(url).netloc
    return following if same_host else ""  # a registry's pages stay on it: never follow a link elsewhere
