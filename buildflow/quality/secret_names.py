"""Build args and test env whose names look like secrets: their values would be kept where anyone can read them.

Only names are judged; values are never read, compared or shown. A name is cut into words at every character
that is not a letter or digit and where a lower-case letter or digit meets an upper-case one (`hfToken` is
`HF TOKEN`), and compared in upper case without trailing digits (`TOKEN2` is `TOKEN`). It looks like a secret when

1. a word is, or ends with, one of SECRET_WORDS (`HF_TOKEN`, `DBPASSWORD`, `CLIENT_SECRET`, `OPENAIAPIKEY`), or
2. a word is `AUTH` (`NPM_AUTH`, `AUTH_HEADER`), or
3. two words in a row are one of KEY_KINDS then `KEY` or `KEYS` (`OPENAI_API_KEY`, `AWS_ACCESS_KEY_ID`),

unless the name is a setting about a secret rather than the secret itself: its first word is a switch
(SWITCHES: `USE_AUTH`, `NO_PASSWORD`) or its last word, not the matched one, is a property (PROPERTIES:
`PASSWORD_MIN_LENGTH`, `HF_TOKEN_FILE`, `AUTH_MODE`). Words that merely start with a secret word are not one:
`TOKENIZER_VERSION`, `MAX_TOKENS`, `AUTHOR`, `SECRETARY` pass.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from buildflow.errors import BuildflowError, FieldPath, Problem
from buildflow.model import Pipeline

SECRET_WORDS = (
    "TOKEN",
    "PASSWORD",
    "PASSWORDS",
    "PASSWD",
    "PASSPHRASE",
    "SECRET",
    "SECRETS",
    "CREDENTIAL",
    "CREDENTIALS",
    "AUTHORIZATION",
    "APIKEY",
    "PRIVATEKEY",
    "ACCESSKEY",
    "SESSIONKEY",
)
KEY_KINDS = frozenset({"API", "PRIVATE", "ACCESS", "SESSION", "ENCRYPTION", "SIGNING"})
SWITCHES = frozenset({"NO", "USE", "ENABLE", "DISABLE", "SKIP", "ALLOW", "REQUIRE", "WITH", "WITHOUT", "IS", "HAS"})
PROPERTIES = frozenset(
    {
        "FILE", "FILES", "PATH", "DIR", "ENV", "VAR", "NAME", "NAMES", "TYPE", "KIND", "MODE", "METHOD", "FORMAT",
        "URL", "URI", "ENDPOINT", "HOST", "PORT", "SERVER", "DOMAIN", "REALM", "REGION", "PROVIDER", "ISSUER",
        "AUDIENCE", "SCOPE", "SCOPES", "ENABLED", "DISABLED", "REQUIRED", "VERSION", "LENGTH", "LEN", "SIZE",
        "MIN", "MAX", "LIMIT", "COUNT", "POLICY", "TTL", "TIMEOUT", "EXPIRY", "EXPIRES", "LIFETIME", "USER",
        "USERNAME",
    }
)  # fmt: skip
_WORD_BREAK = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")
_SHOWN_IMAGES = 3
ARG_ADVICE = (
    "a build arg's value is kept in the image's history and in buildflow's build records"
    " — declare it under secrets: (secrets: {{{id}: {{env: {env}}}}}) and mount it with RUN --mount=type=secret,id={id}"
)
ENV_ADVICE = "a test env value is written in the pipeline file, and so in version control — keep secrets out of it"

Key = tuple[str, str, str]  # target name, field ("args" or "test.env"), variable name


def words(name: str) -> list[str]:
    """A name's words, upper case, trailing digits dropped: 'hfToken2' and 'HF_TOKEN' are both ['HF', 'TOKEN']."""
    return [word for word in (part.upper().rstrip("0123456789") for part in _WORD_BREAK.split(name)) if word]


@lru_cache(maxsize=4096)
def looks_like_secret(name: str) -> bool:
    """Whether a build arg or environment variable name looks like it holds a secret (see the module docstring)."""
    parts = words(name)
    matched = [i for i, word in enumerate(parts) if _is_secret_word(word) or _is_key_pair(parts, i)]
    if not matched or parts[0] in SWITCHES:
        return False
    return not (parts[-1] in PROPERTIES and matched[-1] < len(parts) - 1)


def _is_secret_word(word: str) -> bool:
    """AUTH, or a word that is or ends with a secret word (TOKEN, GHTOKEN; not TOKENIZER)."""
    return word == "AUTH" or word.endswith(SECRET_WORDS)


def _is_key_pair(parts: list[str], index: int) -> bool:
    """Whether parts[index] is KEY or KEYS right after API, PRIVATE, ACCESS, SESSION, ENCRYPTION or SIGNING."""
    return index > 0 and parts[index] in ("KEY", "KEYS") and parts[index - 1] in KEY_KINDS


def suspicious_names(pipeline: Pipeline, *, display: str | None = None) -> list[str]:
    """One line per build arg or test env variable whose name looks like a secret: where it is, why, what to do.

    A variable is reported once where the pipeline file declares it (a target's `args`, `defaults.args` or a
    target's `test.env`), naming the images that have it when they are not just the target itself. Lines start
    with `display` (default: the pipeline's file as it was given), and never contain a value.
    """
    found = _findings(pipeline)
    if not found:
        return []
    shown = display or str(pipeline.file)
    text, data = _document(pipeline, shown)
    grouped: dict[FieldPath, list[str]] = {}
    for key, ids in found.items():
        grouped.setdefault(_declared_at(key, data), []).extend(ids)
    return _render(shown, grouped, text)


def _findings(pipeline: Pipeline) -> dict[Key, list[str]]:
    """The secret-looking variables of every image, with the ids of the images that have them, in file order."""
    found: dict[Key, list[str]] = {}
    for target in pipeline.targets.values():
        for field, names in (("args", target.args), ("test.env", target.tests.env or {})):
            for name in names:
                if looks_like_secret(name):
                    found.setdefault((target.name, field, name), []).append(target.id)
    return found


def _document(pipeline: Pipeline, display: str) -> tuple[str, Mapping[str, Any]]:
    """The pipeline file's text and data, read again to say where each finding is declared; empty if unreadable."""
    from buildflow.pipeline.source import read_document

    try:
        return read_document(pipeline.file, display)
    except BuildflowError:
        return "", {}


def _declared_at(key: Key, data: Mapping[str, Any]) -> FieldPath:
    """The field path of a finding: the target's own args or test env, else defaults.args when it comes from there."""
    target, field, name = key
    if field == "test.env":
        return ("targets", target, "test", "env", name)
    own = _mapping(_mapping(_mapping(data.get("targets")).get(target)).get("args"))
    defaults = _mapping(_mapping(data.get("defaults")).get("args"))
    return ("defaults", "args", name) if name not in own and name in defaults else ("targets", target, "args", name)


def _mapping(value: object) -> Mapping[str, Any]:
    """The value if it is a mapping, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def _render(display: str, grouped: Mapping[FieldPath, list[str]], text: str) -> list[str]:
    """The lines, file:line: field: message, as every other problem buildflow reports."""
    from buildflow.pipeline.source import line_finder

    find = line_finder(text) if text else lambda path: None
    return [Problem(_message(path, ids), path, display, find(path)).render() for path, ids in grouped.items()]


def _message(path: FieldPath, ids: list[str]) -> str:
    """What is wrong with one finding and what to do about it."""
    name = str(path[-1])
    advice = ENV_ADVICE if path[-2] == "env" else ARG_ADVICE.format(id=secret_id(name), env=env_name(name))
    return f"looks like a secret{_images(path, ids)}; {advice}"


def _images(path: FieldPath, ids: list[str]) -> str:
    """' (in 4 images: a, b, c and 1 more)', or nothing when the only image is the target the path names."""
    if ids == [path[1]]:
        return ""
    more = len(ids) - _SHOWN_IMAGES
    shown = ", ".join(ids[:_SHOWN_IMAGES]) + (f" and {more} more" if more > 0 else "")
    return f" (in {len(ids)} image{'s' if len(ids) > 1 else ''}: {shown})"


def secret_id(name: str) -> str:
    """A BuildKit secret id for a variable: 'HF_TOKEN' -> 'hf_token' (letters, digits, _ . -; at most 64)."""
    return re.sub(r"[^a-z0-9_.-]+", "_", name.lower())[:64] or "secret"


def env_name(name: str) -> str:
    """An environment variable name to read the secret from: the name itself when it is a valid one."""
    cleaned = re.sub(r"[^A-Za-z0-9_]+", "_", name)
    return cleaned if re.match(r"[A-Za-z_]", cleaned) else f"_{cleaned}"
