"""Writing files so that a reader never sees half of one."""

from __future__ import annotations

import os
from pathlib import Path


def create_unique(directory: str | os.PathLike, prefix: str, suffix: str) -> tuple[int, str]:
    """An exclusive new file in ``directory``: ``(fd, path)``.

    Like tempfile.mkstemp, whose import would cost a run's start ~6 ms.
    """
    while True:
        path = os.path.join(directory, f"{prefix}{os.urandom(6).hex()}{suffix}")
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644), path
        except FileExistsError:
            continue


def write_atomic(target: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``target``, then rename it over ``target``.

    The rename is atomic, so concurrent readers see the old file or the new one, never a mix,
    and a crash mid-write leaves no partial file behind.
    """
    fd, tmp = create_unique(target.parent, f".{target.name}-", ".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
