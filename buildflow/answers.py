"""The answer cache: a re-run of `validate` or `plan --offline` with the same command line and environment, whose
inputs did not change, prints its recorded output again without importing click or the rest of buildflow.

A recording run notes every path it opens, lists or stats (an audit hook, and os.stat/os.lstat wrapped), copies
its stdout, and stores the answer only when it wrote nothing to stderr, started no process, opened no socket and
wrote no file outside buildflow's cache directory. A replay stats every input again and answers only when each
signature is the same. The standard library only, and little of it: a replay costs little more than starting Python.
"""

from __future__ import annotations

import io
import marshal
import os
import stat
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from hashlib import sha256
    from types import TracebackType
    from typing import Any, BinaryIO, TextIO

    from _typeshed import ReadableBuffer
else:
    try:
        from _sha256 import sha256  # CPython's own: importing hashlib costs more than all the rest of a replay
    except ImportError:  # pragma: no cover
        from hashlib import sha256

FORMAT = 1
MAX_ENTRIES = 500
RACY_NS = 2_000_000_000  # an input changed this close to the run's start may have changed unseen (as git says)
_OFF = ("0", "off", "false", "no")
_VALUED = frozenset({"-f", "--file", "--var", "--set", "--registry", "--log-format"})
_NEVER = frozenset({"-h", "--help", "--version", "--debug", "--"})
_LISTING = frozenset({"os.listdir", "os.scandir"})
_CHANGING = frozenset(
    {"os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.symlink", "os.link", "os.truncate", "os.chmod", "os.utime"}
)
_UNSAFE = frozenset(
    {
        "subprocess.Popen",
        "os.system",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.fork",
        "os.forkpty",
        "os.chdir",
        "socket.connect",
        "socket.bind",
        "socket.sendto",
        "socket.sendmsg",
        "socket.getaddrinfo",
    }
)
_ON_FILES = frozenset({"open"}) | _LISTING | _CHANGING
_IMPORTING = frozenset({"_frozen_importlib_external", "importlib._bootstrap_external", "zipimport"})
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
_REAL_STAT, _REAL_LSTAT = os.stat, os.lstat

Signature = tuple[int, ...] | None
Input = tuple[str, bool, bool, Signature]  # path, symlinks followed, listed, signature


def enabled() -> bool:
    """False when BUILDFLOW_FILE_CACHE is 0, off, false or no (the switch of the document cache too)."""
    return os.environ.get("BUILDFLOW_FILE_CACHE", "").strip().lower() not in _OFF


def cache_root() -> str:
    """$XDG_CACHE_HOME/buildflow, by default ~/.cache/buildflow (caches.user_cache's parent, without pathlib)."""
    home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(home, "buildflow")


def answerable(argv: list[str]) -> bool:
    """True for `validate` and `plan --offline`, without help, the version, debug output or `--`."""
    if _NEVER.intersection(argv):
        return False
    value_next = False
    for index, word in enumerate(argv):
        if value_next or word.startswith("-"):
            value_next = not value_next and word in _VALUED
            continue
        return word == "validate" or (word == "plan" and "--offline" in argv[index + 1 :])
    return False


def _isatty(stream: TextIO | None) -> bool | None:
    """Whether a standard stream is a terminal; None when it is missing or closed."""
    try:
        return stream.isatty() if stream is not None else None
    except (OSError, ValueError):
        return None


def cache_key(argv: list[str], version: str) -> str | None:
    """The key of this run's answer, or None when the run is neither replayed nor recorded."""
    if not answerable(argv) or not enabled():
        return None
    terminals = (_isatty(sys.stdin), _isatty(sys.stdout), _isatty(sys.stderr))
    if terminals[1] is not False or terminals[2] is not False:
        return None
    try:
        directory = os.getcwd()
    except OSError:
        return None
    today = time.strftime("%Y%m%d", time.gmtime())  # every run resolves the `date` variable, from the clock
    python = (sys.version, sys.executable, sys.flags, sys.stdout.encoding, sys.stdout.errors)
    facts = (FORMAT, version, python, argv, directory, sorted(os.environ.items()), terminals, today)
    return sha256(repr(facts).encode("utf-8", "surrogatepass")).hexdigest()


def _entry_path(key: str) -> str:
    """Where the answer of one key is kept."""
    return os.path.join(cache_root(), "answers", key[:2], key)


def signature(path: str, follow: bool, listed: bool) -> Signature:
    """What must not change: a file's mode, inode, size and times; a listed directory's mode, inode and times; any
    other directory's mode and inode (the components of a resolved path change times all day); None if missing."""
    try:
        status = _REAL_STAT(path) if follow else _REAL_LSTAT(path)
    except (OSError, ValueError):
        return None
    if not stat.S_ISDIR(status.st_mode):
        return (status.st_mode, status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns)
    if listed:
        return (status.st_mode, status.st_ino, status.st_mtime_ns, status.st_ctime_ns)
    return (status.st_mode, status.st_ino)


def replay(key: str) -> None:
    """Print the kept answer of this run and exit with its code, when every input is as it was; else return."""
    try:
        with open(_entry_path(key), "rb") as handle:
            form, inputs, output, code = marshal.loads(handle.read())
        if form != FORMAT or not isinstance(output, bytes) or code not in (0, 1, 2):
            return
        if any(signature(path, follow, listed) != kept for path, follow, listed, kept in inputs):
            return
    except (OSError, ValueError, EOFError, TypeError):  # a damaged entry is no answer
        return
    sys.stdout.flush()
    sys.stdout.buffer.write(output)
    sys.stdout.buffer.flush()
    sys.exit(code)


class _Tee(io.BufferedIOBase):
    """A binary stream that writes through to a real one and keeps a copy of what went by."""

    def __init__(self, stream: BinaryIO) -> None:
        super().__init__()
        self._stream = stream
        self.copy = bytearray()

    def writable(self) -> bool:
        """Always."""
        return True

    def write(self, data: ReadableBuffer) -> int:
        """Write through, and keep a copy."""
        self.copy += data
        return self._stream.write(data)

    def flush(self) -> None:
        """Flush the real stream."""
        self._stream.flush()

    def fileno(self) -> int:
        """The real stream's descriptor."""
        return self._stream.fileno()

    def isatty(self) -> bool:
        """Whether the real stream is a terminal."""
        return self._stream.isatty()


def _teed(stream: TextIO) -> tuple[TextIO, _Tee]:
    """A text stream that behaves as `stream` does, writing through a tee."""
    tee = _Tee(stream.buffer)
    wrapper = io.TextIOWrapper(
        tee,  # type: ignore[type-var]  # a writable binary stream is all a text wrapper that only writes needs
        encoding=stream.encoding,
        errors=stream.errors,
        line_buffering=bool(stream.line_buffering),
        write_through=True,
    )
    return wrapper, tee


def _ignored_prefixes() -> tuple[str, ...]:
    """Where Python and its libraries live: files read there are not the run's inputs."""
    import site

    prefixes = [os.path.dirname(os.__file__), *site.getsitepackages()]
    if site.ENABLE_USER_SITE:
        prefixes.append(site.getusersitepackages())
    return tuple(os.path.join(prefix, "") for prefix in prefixes)


class _Recording:
    """What one run read, and whether it did anything a replay would not do."""

    def __init__(self) -> None:
        self.started_ns = time.time_ns()
        self.directory = os.getcwd()
        self.cache = os.path.join(os.path.realpath(cache_root()), "")
        self.cache_as_given = os.path.join(os.path.abspath(cache_root()), "")
        self.ignored = _ignored_prefixes()
        self.inputs: dict[str, tuple[bool, bool]] = {}  # path -> (symlinks followed, listed)
        self.unsafe = False
        self.active = True

    def absolute(self, path: Any) -> str | None:
        """The path as an absolute string, or None for a descriptor."""
        if isinstance(path, int):
            return None
        name = os.fsdecode(path)
        return name if os.path.isabs(name) else os.path.join(self.directory, name)

    def in_cache(self, name: str) -> bool:
        """True under buildflow's cache directory."""
        return name.startswith(self.cache) or name.startswith(self.cache_as_given)

    def noted(self, name: str) -> bool:
        """True for a path that may be an input (not Python's, not a library's, not a cache's)."""
        return not (self.in_cache(name) or name.startswith(self.ignored) or "__pycache__" in name)

    def note(self, name: str, follow: bool, listed: bool) -> None:
        """One more input, or one more thing to check of an input noted before."""
        before = self.inputs.get(name, (False, False))
        self.inputs[name] = (before[0] or follow, before[1] or listed)

    def opened(self, path: Any, mode: Any, flags: Any) -> None:
        """A file opened: an input when read, the end of the recording when written outside the cache."""
        name = self.absolute(path)
        if name is None or self.in_cache(name):
            return
        if any(letter in mode for letter in "wax+") if isinstance(mode, str) else bool(flags & _WRITE_FLAGS):
            self.unsafe = True
        elif self.noted(name):
            self.note(name, True, False)
            self.note(os.path.dirname(name), True, True)

    def listed(self, path: Any) -> None:
        """A directory listed: its entries are an input."""
        name = self.absolute("." if path is None else path)
        if name is not None and self.noted(name):
            self.note(name, True, True)

    def probed(self, path: Any, follow: bool) -> None:
        """A path stat-ed: whether it is there, and what it is, are an input."""
        name = self.absolute(path)
        if name is not None and self.noted(name):
            self.note(name, follow, False)

    def changed(self, event: str, arguments: tuple[Any, ...]) -> None:
        """A file or directory created, moved or removed: unsafe unless in the cache (or the cache's own parents)."""
        names = [self.absolute(argument) for argument in arguments if isinstance(argument, str | bytes | os.PathLike)]
        if event == "os.mkdir" and names and names[0] and self.cache_as_given.startswith(os.path.join(names[0], "")):
            return
        if any(name is not None and not self.in_cache(name) for name in names):
            self.unsafe = True

    def finished(self) -> list[Input] | None:
        """Every input with its signature, or None when one changed too recently to trust its time."""
        self.active = False
        for entry in sys.path:
            if entry and os.path.isdir(entry):
                self.note(os.path.abspath(entry), True, True)
        for module_name, module in list(sys.modules.items()):
            source = getattr(module, "__file__", None)
            if module_name.partition(".")[0] == "buildflow" and source:
                self.note(source, True, False)
        self.note(self.directory, True, True)
        inputs = [(path, *how, signature(path, *how)) for path, how in self.inputs.items()]
        recent = self.started_ns - RACY_NS
        if any(kept is not None and len(kept) > 2 and kept[-2] >= recent for *_, kept in inputs):
            return None
        return inputs


class _Listening:
    """The process's one audit hook (a hook cannot be removed) and the recording it reports to."""

    recording: _Recording | None = None
    hooked = False


_LISTENING = _Listening()


def _heard(event: str, arguments: tuple[Any, ...]) -> None:
    """The audit hook: what the recording run opens, lists, starts and changes."""
    recording = _LISTENING.recording
    if recording is None or not recording.active:
        return
    if event in _UNSAFE:
        recording.unsafe = True
    elif event in _ON_FILES and sys._getframe(1).f_globals.get("__name__") not in _IMPORTING:
        if event == "open":
            recording.opened(*arguments[:3])
        elif event in _LISTING:
            recording.listed(arguments[0])
        else:
            recording.changed(event, arguments)


def _probing(real: Callable[..., os.stat_result], follow: bool) -> Callable[..., os.stat_result]:
    """os.stat or os.lstat, noting the path of each call made while recording."""

    def probe(path: Any, *arguments: Any, **options: Any) -> os.stat_result:
        recording = _LISTENING.recording
        if recording is not None and recording.active and options.get("dir_fd") is None:
            recording.probed(path, follow and options.get("follow_symlinks", True))
        return real(path, *arguments, **options)

    return probe


class Recorded:
    """Around a run: its stdout copied, its inputs noted, its exit code kept; on the way out, its answer stored
    when it may be replayed. Nothing happens without a key."""

    def __init__(self, key: str | None) -> None:
        self.key = key
        self.streams: tuple[TextIO, TextIO] | None = None
        self.tees: tuple[_Tee, _Tee] | None = None

    def __enter__(self) -> None:
        if self.key is None or not hasattr(sys.stdout, "buffer") or not hasattr(sys.stderr, "buffer"):
            self.key = None
            return
        self.streams = (sys.stdout, sys.stderr)
        (sys.stdout, out), (sys.stderr, err) = _teed(sys.stdout), _teed(sys.stderr)
        self.tees = (out, err)
        _LISTENING.recording = _Recording()
        if not _LISTENING.hooked:
            sys.addaudithook(_heard)
            _LISTENING.hooked = True
        os.stat, os.lstat = _probing(_REAL_STAT, True), _probing(_REAL_LSTAT, False)

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        recording, _LISTENING.recording = _LISTENING.recording, None
        if self.key is None or self.streams is None or self.tees is None or recording is None:
            return
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = self.streams
        os.stat, os.lstat = _REAL_STAT, _REAL_LSTAT
        code = (error.code or 0) if isinstance(error, SystemExit) else None
        out, err = self.tees
        if code not in (0, 1, 2) or err.copy or recording.unsafe:
            recording.active = False
            return
        inputs = recording.finished()
        if inputs is not None:
            store(self.key, marshal.dumps((FORMAT, inputs, bytes(out.copy), code)))


def store(key: str, entry: bytes) -> None:
    """Keep an answer (a temporary file, then renamed); failing to changes nothing."""
    path = _entry_path(key)
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(temporary, "wb") as handle:
            handle.write(entry)
        os.replace(temporary, path)
        bound(os.path.dirname(os.path.dirname(path)))
    except OSError:
        return


def bound(root: str, limit: int = MAX_ENTRIES) -> None:
    """Past `limit` answers, remove the oldest until a fifth of the room is free again."""
    entries = []
    for folder in os.scandir(root):
        if folder.is_dir(follow_symlinks=False):
            entries += [(entry.stat().st_mtime_ns, entry.path) for entry in os.scandir(folder.path)]
    if len(entries) <= limit:
        return
    for _, path in sorted(entries)[: len(entries) - limit * 4 // 5]:
        try:
            os.remove(path)
        except OSError:
            continue
