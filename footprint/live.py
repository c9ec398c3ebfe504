"""The live status line (``track(live=True)``, ``footprint run --live``): elapsed time, power
per device kind, energy, CO2e and the latest forecast, on the terminal's last row.

Drawn only when stderr is a terminal, at most once a second, from the sampler's ticks (never
from the program's threads). The program's own output is left alone: the line keeps the bottom
row to itself with a scroll region (as apt's progress line does), so the program's lines and
progress bars scroll above it; each draw is one write that saves the cursor, draws, and puts the
cursor back. At the run's end the row is cleared and the scroll region reset.
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING, Any, TextIO

from footprint.formatting import literal

if TYPE_CHECKING:
    from footprint.record import RunRecord
    from footprint.run import Run
    from footprint.sampler import Snapshot

MIN_INTERVAL_S = 1.0


def _duration(s: float) -> str:
    s = int(s)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _energy(j: float) -> str:
    kwh = j / 3.6e6
    if kwh >= 1:
        return f"{kwh:.3g} kWh"
    if j >= 3600:
        return f"{j / 3600:.3g} Wh"
    return f"{j:.3g} J"


def _mass(kg: float) -> str:
    return f"{kg:.3g} kg" if kg >= 1 else f"{kg * 1000:.3g} g"


class LiveLine:
    """The run listener that draws the line (on ``stream``, default ``sys.stderr``)."""

    def __init__(self, stream: TextIO | None = None, clock: Any = time.monotonic) -> None:
        import sys

        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.draws = 0
        self._fd: int | None = None
        self._rows = 0
        self._last_draw: float | None = None
        self._last: tuple[float, dict[str, float]] | None = None
        self._lock = threading.Lock()

    def _terminal(self) -> int | None:
        try:
            fd = self.stream.fileno()
        except (AttributeError, OSError, ValueError):
            return None
        return fd if os.isatty(fd) else None

    def _write(self, text: str) -> None:
        if self._fd is not None:
            try:
                os.write(self._fd, text.encode("utf-8", "replace"))
            except OSError:  # the terminal went away: stop drawing, never fail the run
                self._fd = None

    def on_start(self, run: Run) -> None:
        fd = self._terminal()
        if fd is None:
            return  # not a terminal: no line at all
        try:
            rows = os.get_terminal_size(fd).lines
        except OSError:
            return
        if rows < 3:
            return
        with self._lock:
            self._fd, self._rows = fd, rows
            # a new line for room, the scroll region above the last row, the cursor back up
            self._write(f"\n\x1b7\x1b[1;{rows - 1}r\x1b8\x1b[1A")

    def on_tick(self, run: Run, snapshot: Snapshot) -> None:
        if self._fd is None:
            return
        now = self.clock()
        if self._last_draw is not None and now - self._last_draw < MIN_INTERVAL_S:
            return
        self._last_draw = now
        self.draw(self.text(run, snapshot))

    def on_phase_start(self, run: Run, phase: Any) -> None:
        """Phases are not shown."""

    def on_phase_end(self, run: Run, phase: Any) -> None:
        """Phases are not shown."""

    def on_end(self, run: Run, record: RunRecord) -> None:
        with self._lock:
            if self._fd is None:
                return
            rows = self._rows
            self._write(f"\x1b7\x1b[{rows};1H\x1b[2K\x1b[r\x1b8")
            self._fd = None

    def text(self, run: Run, snapshot: Snapshot) -> str:
        """The line's text at ``snapshot``."""
        energy_j, duration_s, emissions_kg = run.so_far(snapshot)
        now = run.device_energies_j(snapshot)
        parts = [f"footprint {literal(run.name)} {_duration(duration_s)}"]
        if self._last is not None and snapshot.t > self._last[0]:
            dt = snapshot.t - self._last[0]
            kinds: dict[str, float] = {}
            for d in run.devices:
                w = max(0.0, now.get(d.id, 0.0) - self._last[1].get(d.id, 0.0)) / dt
                kinds[d.kind] = kinds.get(d.kind, 0.0) + w
            estimated = any(not d.measured for d in run.devices)
            power = " ".join(
                f"{k} {w:.0f} W" if w >= 100 else f"{k} {w:.3g} W" for k, w in kinds.items()
            )
            parts.append(power + (" (est.)" if estimated else ""))
        self._last = (snapshot.t, now)
        parts.append(_energy(energy_j))
        if emissions_kg is not None:
            parts.append(f"{_mass(emissions_kg)} CO2e")
        if run.forecasts:
            f = run.forecasts[-1]
            parts.append(
                f"forecast {_energy(f.energy_kwh * 3.6e6)} "
                f"({_energy(f.energy_kwh_low * 3.6e6)}-{_energy(f.energy_kwh_high * 3.6e6)}), "
                f"ends {f.ends_at.astimezone():%H:%M}"
            )
        return " | ".join(parts)

    def draw(self, text: str) -> None:
        with self._lock:
            if self._fd is None:
                return
            try:
                size = os.get_terminal_size(self._fd)
                cols, rows = size.columns, size.lines
            except OSError:
                cols, rows = 80, self._rows
            region = ""
            if rows != self._rows and rows >= 3:  # the terminal was resized: move the line
                region = f"\x1b[{self._rows};1H\x1b[2K\x1b[1;{rows - 1}r"
                self._rows = rows
            line = text[: max(1, cols - 1)]
            self._write(f"\x1b7{region}\x1b[{self._rows};1H\x1b[2K\x1b[7m{line}\x1b[0m\x1b8")
            self.draws += 1
