"""The live line's drawing on a pseudo-terminal (footprint/live.py), rendered by pyte."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import termios

import pytest

from footprint.live import LiveLine

pyte = pytest.importorskip("pyte")


def _size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _read(master: int) -> bytes:
    os.set_blocking(master, False)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except (BlockingIOError, OSError):
            return out
        if not chunk:
            return out
        out += chunk


def test_the_line_keeps_the_last_row_and_follows_a_resize():
    master, slave = pty.openpty()
    _size(slave, 24, 80)
    with os.fdopen(slave, "w") as stream:
        line = LiveLine(stream=stream)
        line.on_start(None)  # type: ignore[arg-type]  (on_start reads only the terminal)
        os.write(slave, b"program output\r\n")
        line.draw("footprint status one")
        screen = pyte.Screen(80, 24)
        feed = pyte.ByteStream(screen)
        feed.feed(_read(master))
        assert screen.display[23].rstrip() == "footprint status one"
        assert "program output" in "\n".join(screen.display[:23])

        _size(slave, 30, 80)  # the user makes the window taller
        screen.resize(30, 80)
        line.draw("footprint status two")
        feed.feed(_read(master))
        assert screen.display[29].rstrip() == "footprint status two"
        assert "footprint" not in screen.display[23]  # the old row was cleared

        line.on_end(None, None)  # type: ignore[arg-type]
        feed.feed(_read(master))
        assert screen.display[29].strip() == "" and line.draws == 2
    os.close(master)


def test_a_stream_that_is_not_a_terminal_gets_nothing(tmp_path):
    with open(tmp_path / "log", "w") as stream:
        line = LiveLine(stream=stream)
        line.on_start(None)  # type: ignore[arg-type]
        line.draw("footprint status")
        line.on_end(None, None)  # type: ignore[arg-type]
    assert (tmp_path / "log").read_text() == "" and line.draws == 0
