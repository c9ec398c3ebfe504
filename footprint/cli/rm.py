"""``footprint rm RUN...``: delete runs (a job: with its parts), after a confirmation."""

from __future__ import annotations

import shutil
import sys
from typing import Annotated

import typer

from footprint.cli._common import StoreOption, literal, reading_store


def register(app: typer.Typer) -> None:
    @app.command("rm", help="Delete runs from the store (asks first; --yes to skip).")
    def rm_command(
        run_ids: Annotated[
            list[str], typer.Argument(metavar="RUN...", help="Run ids or unique prefixes.")
        ],
        store: StoreOption = None,
        yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    ) -> int:
        from footprint.errors import UsageError

        st = reading_store(store)
        records = [st.get(i) for i in run_ids]  # every id resolved before anything is deleted
        for r in records:
            if r.is_part:
                raise UsageError(
                    f"{r.id[:8]} is one process's part of job {r.job.id[:8] if r.job else '?'}: "
                    "remove the whole job by its id"
                )
        print(f"to delete from {st.path}:")
        for r in records:
            print(literal(f"  {r.id[:8]}  {r.name}  ({r.status}, {r.started_at[:16]})"))
        if not yes:
            if not sys.stdin.isatty():
                raise UsageError(
                    "not deleting without a confirmation: pass --yes (stdin is not a terminal "
                    "to ask on)"
                )
            answer = input(f"delete {len(records)} run{'s' if len(records) != 1 else ''}? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("nothing deleted")
                return 1
        for r in records:
            if r.job is not None and r.job.role == "job":
                shutil.rmtree(st.jobs_path / r.id, ignore_errors=True)
            st.remove(r.id)
        print(f"deleted {len(records)} run{'s' if len(records) != 1 else ''}")
        return 0
