"""``footprint merge STORE...``: stores copied from several nodes, combined into one."""

from __future__ import annotations

from typing import Annotated

import typer

from footprint.cli._common import StoreOption, literal, reading_store


def register(app: typer.Typer) -> None:
    @app.command(
        "merge",
        help="Copy the runs and job parts of STORE... into --store: a job whose nodes each "
        "kept their own store becomes one job again.",
    )
    def merge_command(
        sources: Annotated[list[str], typer.Argument(help="Store directories to copy from.")],
        store: StoreOption = None,
    ) -> int:
        from footprint.store import Store, merge

        srcs = [reading_store(s) for s in sources]
        for src in srcs:
            if not src.path.is_dir():
                from footprint.errors import StoreError

                raise StoreError(f"no run store at {str(src.path)!r}: check the path")
        dest = Store(store)
        counts = merge(srcs, dest)
        print(
            literal(
                f"merged {len(srcs)} store(s) into {dest.path}: {counts['copied']} copied, "
                f"{counts['replaced']} replaced by a later version, {counts['same']} already "
                f"there, {counts['kept']} kept (the copy there was further along)"
            )
        )
        return 0
