"""Where the project's files live, and how they are written: the repository root and data/,
atomic file writes (the mode a plain open gives; no temporary file outlives a killed writer)
and a locked CSV appender (nothing already written is lost when a process
is killed mid-write), a checked CSV reader, and checks of output paths made before any work."""

from __future__ import annotations

import csv
import fcntl
import io
import os
import socket
import stat
import tempfile
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gqa_lib.errors import GQAError

# The repository root (an editable install or a clone) and its data/ folder; GQA_DATA_DIR
# points the corpus and tokenizer at another folder.
REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("GQA_DATA_DIR", REPO_ROOT / "data"))


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over `path`.

    The file gets the mode a plain ``open`` would give it (0o666 less the umask), or keeps
    the mode of the file it replaces; the temporary file is named after its writer
    (``.NAME.HOST-PID.XXXX.tmp``), so one left by a writer killed mid-write on this machine
    is removed by the next write of `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_orphans(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{_owner()}.",
                               suffix=".tmp")
    try:
        os.fchmod(fd, _mode_for(path))
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


_HOST = "".join(c if c.isalnum() else "_" for c in socket.gethostname()) or "host"


def _owner() -> str:
    return f"{_HOST}-{os.getpid()}"


def _mode_for(path: Path) -> int:
    """The replaced file's mode, else 0o666 less the process umask (mkstemp's is 0o600)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    try:  # Linux >= 4.7: read it without changing it
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _remove_orphans(path: Path) -> None:
    """Delete temporary files of `path` whose writer, a process on this machine, is gone."""
    try:
        names = os.listdir(path.parent)
    except OSError:
        return
    for name in names:
        if orphan_temporary(name, path.name):
            try:
                os.unlink(path.parent / name)
            except OSError:
                pass


def orphan_temporary(name: str, of: str | None = None) -> bool:
    """Whether the file `name` is a temporary file of :func:`atomic_write_bytes` (of the file
    `of`, or of any) whose writer, a process on this machine, is gone: what a write killed
    midway leaves beside its target."""
    if not (name.startswith(".") and name.endswith(".tmp")):
        return False
    target, sep, rest = name[1:].rpartition(f".{_HOST}-")
    if not sep or (of is not None and target != of):
        return False
    pid = rest.split(".", 1)[0]
    return pid.isdigit() and not _alive(int(pid))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


@contextmanager
def file_lock(path: str | Path):
    """Exclusive advisory lock on `path`.lock (for several jobs sharing one CSV)."""
    lock = Path(str(path) + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


RUN_LOCK = ".gqa-run.lock"  # the lock file a process holds in a folder it writes a run into


@contextmanager
def folder_lock(folder: str | Path, what: str = "--out"):
    """Hold an exclusive lock on `folder` (fcntl.flock on `folder`/RUN_LOCK, created with
    the folder if need be) while the block runs: a second process asking for it is refused
    in one line (GQAError) instead of writing the same files. The kernel drops the lock when
    its holder exits, however it exits, so a lock file left by a killed process is never
    stale; the file is removed on release, and a waiter that locked a removed file retries.
    Folders this call created are removed again where the block left them empty."""
    folder = Path(folder)
    made = [p for p in (folder, *folder.parents) if not p.exists()]  # what mkdir creates
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / RUN_LOCK
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise GQAError(f"{what} {str(folder)!r} is in use by another process (it holds "
                           f"{RUN_LOCK}); wait for it to finish or choose another {what}"
                           ) from None
        try:  # the file we locked must still be the one at `path` (a holder may unlink it)
            if os.path.samestat(os.fstat(fd), os.stat(path)):
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        os.write(fd, f"{_owner()}\n".encode())
        yield
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
        os.close(fd)
        for p in made:  # innermost first; only folders nothing was written into
            try:
                p.rmdir()
            except OSError:
                break


def read_csv_table(path: str | Path) -> tuple[list[str], list[dict[str, str]]]:
    """(header, rows) of a UTF-8 CSV; ([], []) when the file does not exist.

    GQAError (one line naming the file) for a folder, text that is not UTF-8, malformed
    CSV, NUL bytes (Python >= 3.11 reads them silently: refused here), a blank or duplicated
    header name, and a row with more cells than the header (a file without a header row
    usually shows up as one of these)."""
    path = Path(path)
    if path.is_dir():
        raise GQAError(f"{path} is a folder, not a CSV file")
    if not path.exists():
        return [], []
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            header = list(reader.fieldnames or [])
    except UnicodeDecodeError as e:
        raise GQAError(f"{path}: not UTF-8 text (byte {e.start}); re-save the CSV as "
                       "UTF-8") from None
    except csv.Error as e:
        raise GQAError(f"{path}: not a readable CSV ({e})") from None
    except OSError as e:
        raise GQAError(f"{path}: cannot read ({e.strerror or e})") from None
    if any(not h.strip() for h in header) or len(set(header)) != len(header):
        raise GQAError(f"{path}: the header row has blank or repeated column names: {header}")
    for i, r in enumerate(rows, 2):
        if None in r:
            raise GQAError(f"{path}:{i}: more cells than the header has columns")
        if any("\0" in v for v in r.values() if v):
            raise GQAError(f"{path}:{i}: holds NUL bytes; not a text CSV")
    return header, rows


def read_csv_rows(path: str | Path) -> list[dict[str, str]]:
    """The rows of :func:`read_csv_table` (an empty list when the file does not exist)."""
    return read_csv_table(path)[1]


def write_csv_rows(path: str | Path, rows: Iterable[Mapping[str, Any]],
                   columns: list[str]) -> None:
    """Atomically rewrite a CSV with the given columns (missing values left empty)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="raise", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({c: r.get(c, "") for c in columns})
    atomic_write_text(path, buf.getvalue())


# ----- output paths, checked before any work is done ----------------------------------------
def check_writable_dir(path: str | Path, what: str = "--out") -> Path:
    """`path` is (or can be created as) a folder this process can write into; GQAError in
    one line otherwise (a file, a path under a file, or no write permission)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise GQAError(f"{what} {str(path)!r} is a file, not a folder")
    _check_ancestors(path, what)
    return path


def check_writable_file(path: str | Path, what: str = "--out") -> Path:
    """`path` is (or can be created as) a file this process can rewrite atomically (its
    folder must be writable too); GQAError in one line otherwise."""
    path = Path(path)
    if path.is_dir():
        raise GQAError(f"{what} {str(path)!r} is a folder, not a file")
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise GQAError(f"{what} {str(path)!r} is not readable and writable by this user")
    _check_ancestors(path.parent if str(path.parent) else Path("."), what, of=path)
    return path


def _check_ancestors(path: Path, what: str, of: Path | None = None) -> None:
    """The nearest existing ancestor of `path` (or `path` itself) must be a writable folder."""
    target = of or path
    p = path.absolute()
    while not p.exists():
        if p.parent == p:
            break
        p = p.parent
    if not p.is_dir():
        raise GQAError(f"{what} {str(target)!r} lies under {str(p)!r}, which is a file")
    if not os.access(p, os.W_OK | os.X_OK):
        raise GQAError(f"{what} {str(target)!r}: folder {str(p)!r} is not writable by this user")
