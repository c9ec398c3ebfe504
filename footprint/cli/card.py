"""``footprint card RUN_ID``: the "Environmental impact" snippet for a Hugging Face model card."""

from __future__ import annotations

from typing import Annotated

import typer

from footprint.cli._common import ForceOption, OutOption, StoreOption, output_to


def register(app: typer.Typer) -> None:
    @app.command(
        "card",
        help="Print a run's Hugging Face model-card snippet: the co2_eq_emissions metadata block "
        "and a short Markdown paragraph.",
    )
    def card_command(
        run_id: Annotated[str, typer.Argument(help="Run id or unique prefix.")],
        store: StoreOption = None,
        training_type: Annotated[
            str | None,
            typer.Option(
                help="pre-training or fine-tuning (default: the run's training_type tag, else "
                "pre-training)."
            ),
        ] = None,
        out: OutOption = None,
        force: ForceOption = False,
    ) -> int:
        with output_to(out, force):
            from footprint.reporting.card import card
            from footprint.store import Store

            print(card(Store(store).get(run_id), training_type=training_type), end="")
            return 0
