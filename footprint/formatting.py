"""How numbers read to a person: energy, emissions, durations and power in the unit that fits.

Shared by the command line and the HTML report, so a figure reads the same everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from footprint.record import DeviceRecord

_SI_ENERGY = (
    (3.6e9, "MWh"),
    (3.6e6, "kWh"),
    (3600.0, "Wh"),
    (1.0, "J"),
    (1e-3, "mJ"),
    (1e-6, "µJ"),
    (1e-9, "nJ"),
)


def fmt_energy_j(energy_j: float | None) -> str:
    """Joules in the unit that reads best: nJ, µJ, mJ and J below 1 Wh, then Wh, kWh, MWh;
    three significant digits, never an exponent for a person."""
    if energy_j is None or not math.isfinite(energy_j):
        return "–"
    if energy_j == 0:
        return "0 J"
    for factor, unit in _SI_ENERGY:
        if abs(energy_j) >= factor or unit == "nJ":
            return f"{_sig(energy_j / factor)} {unit}"
    return "–"


def fmt_kwh(energy_kwh: float | None) -> str:
    return "–" if energy_kwh is None else fmt_energy_j(energy_kwh * 3.6e6)


def fmt_emissions(emissions_kg: float | None) -> str:
    """kg CO2e as ng, µg, mg, g, kg or t, whichever reads best."""
    if emissions_kg is None:
        return "–"
    g = emissions_kg * 1000
    if g == 0:
        return "0 g"
    if g < 1e-3:
        return f"{_sig(g * 1e6)} µg" if g >= 1e-6 else f"{_sig(g * 1e9)} ng"
    if g < 1:
        return f"{_sig(g * 1000)} mg"
    if g < 1000:
        return f"{_sig(g)} g"
    if emissions_kg < 1000:
        return f"{_sig(emissions_kg)} kg"
    return f"{_sig(emissions_kg / 1000)} t"


def fmt_duration(duration_s: float | None) -> str:
    if duration_s is None:
        return "–"
    if duration_s < 60:
        return f"{_sig(duration_s)} s"
    minutes, seconds = divmod(duration_s, 60)
    if minutes < 60:
        return f"{int(minutes)} min {seconds:02.0f} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{int(hours)} h {int(minutes):02d} min"
    return f"{hours / 24:.1f} days"


def fmt_power(power_w: float | None) -> str:
    if power_w is None:
        return "–"
    return f"{_sig(power_w / 1000)} kW" if power_w >= 1000 else f"{_sig(power_w)} W"


def _sig(x: float, digits: int = 3) -> str:
    """``digits`` significant digits, without exponent for everyday magnitudes."""
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    x = float(f"{x:.{digits - 1}e}")  # rounded first: 9.9999 reads 10.0, not 10.00
    magnitude = math.floor(math.log10(abs(x)))
    if magnitude >= digits:
        return f"{x:,.0f}"
    if magnitude < -4:
        return f"{x:.{digits - 1}e}"
    return f"{x:.{max(digits - 1 - magnitude, 0)}f}"


def measured_label(devices: Iterable[DeviceRecord]) -> str:
    """``"measured"``, ``"estimated"``, ``"mixed"`` or ``"none"`` for a record's devices."""
    flags = {d.measured for d in devices}
    if not flags:
        return "none"
    if flags == {True}:
        return "measured"
    return "estimated" if flags == {False} else "mixed"


# C0/C1 controls (escape sequences, carriage returns) and the bidirectional and invisible
# formatting characters that can make a terminal show other text than is there.
_UNSAFE = {
    *range(0x00, 0x20),
    *range(0x7F, 0xA0),
    0x061C,
    *range(0x200B, 0x2010),
    *range(0x202A, 0x202F),
    *range(0x2060, 0x2070),
    0xFEFF,
}
_ESCAPES = {c: (f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}") for c in _UNSAFE}


_ESCAPES_KEEP_LINES = {c: e for c, e in _ESCAPES.items() if c not in (0x09, 0x0A)}


def literal_lines(text: str) -> str:
    """:func:`literal`, keeping tabs and newlines (for pages, where they lay text out)."""
    return text.translate(_ESCAPES_KEEP_LINES)


def literal(text: object) -> str:
    """``text`` as the literal string it is, safe for a terminal: control, bidirectional and
    invisible formatting characters are shown as escapes (``\\x1b``, ``\\u202e``). Markup is not
    interpreted by the caller (Rich cells are given as ``rich.text.Text``)."""
    return str(text).translate(_ESCAPES)


# What CommonMark/GFM would read mid-line: escapes, code, emphasis, links and images, HTML and
# autolinks, entities, tables, strikethrough. (Line-start syntax cannot occur: no newlines.)
_MARKDOWN = str.maketrans({c: "\\" + c for c in "\\`*_[]<>&|~"})


def md_text(value: object) -> str:
    """A user string as literal Markdown text: one line (control characters escaped), every
    character Markdown or HTML would read (links, images, emphasis, headings, tags) escaped."""
    return literal(str(value)).translate(_MARKDOWN)


def markdown_table(headers: list[str], rows: Iterable[list[str]], notes: Iterable[str] = ()) -> str:
    """A GitHub-flavoured Markdown table (every cell literal text, see :func:`md_text`), then
    the notes as a list."""
    lines = ["| " + " | ".join(map(md_text, headers)) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(map(md_text, row)) + " |" for row in rows]
    notes = list(notes)
    if notes:
        lines += ["", *(f"- {md_text(note)}" for note in notes)]
    return "\n".join(lines)


def csv_text(headers: list[str], rows: Iterable[list[object]]) -> str:
    """Rows as CSV (a header row first; None as an empty field), without a final newline."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows([["" if v is None else v for v in row] for row in rows])
    return buf.getvalue().rstrip("\n")
