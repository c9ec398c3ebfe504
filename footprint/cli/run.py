"""``footprint run -- CMD...``: measure any command; its exit code is passed through."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from footprint.cli._common import StoreOption, fmt_duration, fmt_emissions, fmt_kwh, literal


def summary_line(run) -> str:
    """The one line printed after a run: what, how much, how it was known, where it is."""
    rec = run.record
    measured = [d.id for d in rec.devices if d.measured]
    estimated = [d.id for d in rec.devices if not d.measured]
    how = "; ".join(
        part
        for part in (
            "measured " + ", ".join(measured) if measured else "",
            "estimated " + ", ".join(estimated) if estimated else "",
        )
        if part
    )
    if rec.emissions_kg is not None:
        carbon = f"{fmt_emissions(rec.emissions_kg)} CO2e"
        if rec.region:
            carbon += f" ({rec.region}, {rec.carbon_intensity_g_per_kwh or 0:.0f} g/kWh)"
    else:
        carbon = "CO2e not computed (no --region or --carbon-intensity)"
    where = f"saved as {rec.id[:8]} in {run.path.parent}" if run.path else "not saved"
    return (
        f"footprint: {rec.name!r} {rec.status} in {fmt_duration(rec.duration_s)}: "
        f"{fmt_kwh(rec.energy_kwh)} ({how or 'no devices'}), {carbon}; {where}"
    )


def register(app: typer.Typer) -> None:
    @app.command(
        "run",
        context_settings={"allow_interspersed_args": False},
        help="Run a command and measure its energy: footprint run [OPTIONS] -- CMD [ARGS]...",
    )
    def run_command(
        cmd: Annotated[list[str], typer.Argument(help="The command to run, after --.")],
        name: Annotated[str | None, typer.Option(help="Run name (default: the command).")] = None,
        region: Annotated[
            str | None, typer.Option(help="Grid region: ISO 3166 code, sub-region, zone.")
        ] = None,
        carbon_intensity: Annotated[
            float | None, typer.Option(help="Carbon intensity in g CO2e/kWh (instead of region).")
        ] = None,
        pue: Annotated[
            str | None,
            typer.Option(help="Power usage effectiveness: a number or a preset (default 1.0)."),
        ] = None,
        store: StoreOption = None,
        tag: Annotated[list[str] | None, typer.Option(help="KEY=VALUE tag, repeatable.")] = None,
        cpu_utilisation: Annotated[
            str, typer.Option(help="CPU estimate basis: machine or process (the command's tree).")
        ] = "machine",
        sample_interval_s: Annotated[
            float, typer.Option("--sample-interval", help="Timeline sampling period in seconds.")
        ] = 0.1,
        powercap_root: Annotated[Path, typer.Option(hidden=True)] = Path("/sys/class/powercap"),
    ) -> int:
        import footprint
        from footprint.errors import UsageError

        tags = {}
        for item in tag or []:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise UsageError(f"--tag must be KEY=VALUE, got {item!r}")
            tags[key] = value
        pue_value: float | str | None = pue
        try:
            pue_value = float(pue) if pue is not None else None
        except ValueError:
            pass  # a preset name ("cloud", "on-prem"): the carbon model checks it
        tracker = footprint.track(
            name or Path(cmd[0]).name,
            region=region,
            carbon_intensity=carbon_intensity,
            pue=pue_value,
            store=store,
            tags=tags,
            # "process" follows footprint's own tree, which includes the command.
            cpu_utilisation=cpu_utilisation,
            sample_interval_s=sample_interval_s,
            powercap_root=powercap_root,
        )
        got_term: list[int] = []
        with tracker as run:
            try:
                proc = subprocess.Popen(cmd)
            except OSError as exc:
                run.fail(f"{type(exc).__name__}: {exc}")
                raise UsageError(f"cannot run {cmd[0]!r}: {exc.strerror or exc}") from exc

            def forward(signum, frame):
                got_term.append(signum)
                proc.send_signal(signum)

            # Ctrl-C reaches the child through the terminal's process group; SIGTERM (a
            # scheduler) is forwarded. Handlers, not SIG_IGN: an ignored signal would be
            # inherited by the child.
            old_int = signal.signal(signal.SIGINT, lambda s, f: None)
            old_term = signal.signal(signal.SIGTERM, forward)
            try:
                rc = proc.wait()
            finally:
                signal.signal(signal.SIGINT, old_int)
                signal.signal(signal.SIGTERM, old_term)
            if got_term or rc in (-signal.SIGINT, -signal.SIGTERM, 130, 143):
                run.interrupt(f"command ended by signal (exit {rc})")
            elif rc != 0:
                run.fail(f"command exited with {rc}")
        print(literal(summary_line(run)), file=sys.stderr)
        return 128 - rc if rc < 0 else rc
