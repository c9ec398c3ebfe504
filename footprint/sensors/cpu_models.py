"""CPU facts from /proc/cpuinfo and the TDP of a CPU model from codecarbon's table.

Everything here is fast on purpose: the CPU model comes from /proc/cpuinfo (never py-cpuinfo's
``get_cpu_info()``, ~1.4 s), and codecarbon's ``cpu_power.csv`` is located with
``importlib.util.find_spec`` and read as text, without importing codecarbon (~170 ms). A lookup
scans the lower-cased file for one token of the model and parses only the lines that contain it
(well under a millisecond), and both the file and every answer are cached for the process.

A TDP is only ever taken from an *exact* match after :func:`normalise_cpu_name` is applied to
both sides; anything else (no row, or rows that disagree) is "no match", and the caller uses a
labelled default. A VM that reports only "AMD EPYC" must never borrow some EPYC's TDP.
"""

from __future__ import annotations

import csv
import functools
import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path

# Normalisation, applied in this order to a lower-cased name (see docs/estimates.md):
_NORMALISE_STEPS: tuple[tuple[re.Pattern[str], str], ...] = (
    # trademark marks: "Intel(R) Xeon(R)", "Core(TM)", "Surface® Edition"
    (re.compile(r"\((?:r|tm|c)\)|[®™©]"), " "),
    # the clock speed Intel appends: "CPU @ 2.90GHz"
    (re.compile(r"@\s*\d+(?:\.\d+)?\s*ghz"), " "),
    # Intel's generation prefix: "11th Gen Intel(R) Core(TM) i7-1185G7"
    (re.compile(r"^\s*\d+(?:st|nd|rd|th)\s+gen\s+(?=intel)"), " "),
    # AMD's core-count suffix: "AMD EPYC 7763 64-Core Processor", "Eight-Core Processor"
    (
        re.compile(r"\b(?:\d+|dual|triple|quad|six|eight|ten|twelve|sixteen)-core\s+processor\b"),
        " ",
    ),
    # AMD APU suffix: "AMD Ryzen 7 4800H with Radeon Graphics"
    (re.compile(r"\bwith\s+radeon\b.*$"), " "),
    # the bare words "CPU" and "Processor" (codecarbon's rows mostly omit them)
    (re.compile(r"\b(?:cpu|processor)\b"), " "),
    (re.compile(r"\s+"), " "),
)

# A name without any of these normalises to its lower-cased, whitespace-collapsed self: the
# lookup uses this to skip the regex passes for most rows.
_NORMALISE_MARKERS = re.compile(r"[(@®™©]|-core|\b(?:cpu|processor|radeon|gen)\b")

_CORES_IN_NAME = re.compile(r"\b(\d+)-core\s+processor\b", re.IGNORECASE)


def normalise_cpu_name(name: str) -> str:
    """Normalise a CPU model name for exact comparison with codecarbon's table.

    Lower-cases, removes "(R)", "(TM)", "(C)", "®", "™", the "@ 2.90GHz" clock, a leading
    "11th Gen" before "Intel", an "n-Core Processor" suffix, a "with Radeon ..." suffix, the
    words "CPU" and "Processor", and collapses whitespace (including non-breaking spaces).

    >>> normalise_cpu_name("Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz")
    'intel xeon platinum 8259cl'
    >>> normalise_cpu_name("AMD EPYC 7763 64-Core Processor")
    'amd epyc 7763'
    """
    text = name.lower()
    for pattern, replacement in _NORMALISE_STEPS:
        text = pattern.sub(replacement, text)
    return text.strip()


def cores_in_model_name(name: str) -> int | None:
    """Physical cores per package when the name states them ("... 64-Core Processor")."""
    found = _CORES_IN_NAME.search(name)
    return int(found.group(1)) if found else None


@dataclass(frozen=True)
class TdpMatch:
    """The outcome of a TDP lookup: ``tdp_w`` and ``row`` are None when nothing matched."""

    model: str
    key: str
    row: str | None
    tdp_w: float | None
    reason: str


def codecarbon_cpu_power_csv() -> Path | None:
    """Path of codecarbon's ``data/hardware/cpu_power.csv``, found without importing codecarbon."""
    try:
        spec = importlib.util.find_spec("codecarbon")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location) / "data" / "hardware" / "cpu_power.csv"
        if path.is_file():
            return path
    return None


def _table_text(path: Path) -> tuple[str, str]:
    """The table's text and its lower-cased copy, read once per process (the runtime's)."""
    from footprint import runtime

    def load() -> tuple[str, str]:
        text = path.read_text(encoding="utf-8")
        return text, text.lower()

    return runtime.get().cached(f"cpu-table:{path}", load)


def lookup_tdp(model: str, table: Path | None = None) -> TdpMatch:
    """Find the TDP (W per package) of ``model`` in codecarbon's ``cpu_power.csv``.

    A row matches only if its normalised name equals the normalised model. Rows that match
    but disagree on the TDP make the answer "no match" (the table cannot say which is right).
    ``table`` defaults to the installed codecarbon's file. Cached per (model, table).
    """
    path = table if table is not None else codecarbon_cpu_power_csv()
    return _lookup_cached(model, path)


@functools.lru_cache(maxsize=64)
def _lookup_cached(model: str, path: Path | None) -> TdpMatch:
    key = normalise_cpu_name(model)
    if path is None:
        return TdpMatch(model, key, None, None, "codecarbon's cpu_power.csv not found")
    if not key:
        return TdpMatch(model, key, None, None, "empty CPU model name")
    text, lower = _table_text(path)
    # Normalisation only deletes text, so every token of a matching row's normalised name is a
    # substring of that row's lower-cased line: scanning for the longest token is a safe filter.
    tokens = key.split(" ")
    token = min(tokens, key=lower.count)  # the rarest token
    lines: dict[int, str] = {}
    start = lower.find(token)
    while start != -1:
        line_start = lower.rfind("\n", 0, start) + 1
        line_end = lower.find("\n", start)
        line_end = len(lower) if line_end == -1 else line_end
        if all(t in lower[line_start:line_end] for t in tokens):
            lines[line_start] = text[line_start:line_end]
        start = lower.find(token, line_end)
    matches: dict[float, str] = {}
    for fields in csv.reader(lines.values()):
        if len(fields) != 2 or not _same_cpu(fields[0], key):
            continue
        try:
            tdp_w = float(fields[1])
        except ValueError:  # a few rows hold values like "27.29.5"
            continue
        if tdp_w > 0:
            matches.setdefault(tdp_w, fields[0])
    if len(matches) == 1:
        tdp_w, row = next(iter(matches.items()))
        return TdpMatch(model, key, row, tdp_w, f"codecarbon cpu_power.csv exact match: {row}")
    if matches:
        listed = ", ".join(f"{row!r} = {tdp:g} W" for tdp, row in sorted(matches.items()))
        return TdpMatch(model, key, None, None, f"ambiguous rows for {model!r}: {listed}")
    return TdpMatch(model, key, None, None, f"no exact match for {model!r}")


def _same_cpu(row_name: str, key: str) -> bool:
    lower = row_name.lower()
    if _NORMALISE_MARKERS.search(lower):
        return normalise_cpu_name(row_name) == key
    return " ".join(lower.split()) == key


@dataclass(frozen=True)
class CpuInfo:
    """What /proc/cpuinfo says about this machine's CPUs (as this machine sees them)."""

    model: str | None
    logical_cpus: int
    hypervisor: bool
    siblings: int | None  # logical CPUs per package
    physical_cores: int | None  # distinct (physical id, core id) pairs
    packages: int | None  # distinct physical ids


def read_cpuinfo(proc_root: str | os.PathLike[str] = "/proc") -> CpuInfo:
    """Parse ``<proc_root>/cpuinfo`` (cached per root in the runtime: the kernel rebuilds it on
    each read)."""
    from footprint import runtime

    root = os.fspath(proc_root)
    info = runtime.get().cached(f"cpuinfo:{root}", lambda: _parse_cpuinfo(root))
    return info


def clear_cpuinfo_cache() -> None:
    """Forget cached /proc/cpuinfo parses (tests that rewrite a fake tree use this)."""
    from footprint import runtime

    data = runtime.get().data
    for key in [k for k in data if k.startswith("cpuinfo:")]:
        data.pop(key, None)


def _parse_cpuinfo(root: str) -> CpuInfo:
    try:
        with open(os.path.join(root, "cpuinfo"), encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        text = ""
    model: str | None = None
    logical = 0
    hypervisor = False
    siblings: int | None = None
    cores: set[tuple[str, str]] = set()
    packages: set[str] = set()
    physical_id = "0"
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if not sep:
            continue
        name, value = name.strip(), value.strip()
        if name == "processor":
            logical += 1
            physical_id = "0"
        elif name == "model name" and model is None and value:
            model = value
        elif name == "flags" and not hypervisor:
            hypervisor = "hypervisor" in value.split()
        elif name == "siblings" and siblings is None and value.isdigit():
            siblings = int(value)
        elif name == "physical id":
            physical_id = value
            packages.add(value)
        elif name == "core id":
            cores.add((physical_id, value))
    return CpuInfo(
        model=model,
        logical_cpus=logical or (os.cpu_count() or 1),
        hypervisor=hypervisor,
        siblings=siblings,
        physical_cores=len(cores) or None,
        packages=len(packages) or None,
    )
