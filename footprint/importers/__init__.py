"""Importers: turn other tools' logs into footprint run records, so they join leaderboards.

Each importer reads a file only (never the other tool's library), marks every record it makes
with ``imported_from`` (tool, version, file, row...) and keeps the tool's figures as reported.
"""

from __future__ import annotations

from footprint.errors import FootprintError


class ImportFormatError(FootprintError, ValueError):
    """A file to import is not in the expected format; the message names the file and the fix."""


__all__ = ["ImportFormatError"]
