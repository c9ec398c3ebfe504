"""``footprint run -- CMD...``: measure any command; its exit code is passed through."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from footprint.cli._common import (
    StoreOption,
    fmt_duration,
    fmt_emissions,
    fmt_kwh,
    literal,
    parse_tags,
)


def summary_line(run, rec=None, where: str | None = None) -> str:
    """The one line printed after a run: what, how much, how it was known, where it is."""
    rec = rec or run.record
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
    if where is None:
        where = f"saved as {rec.id[:8]} in {run.path.parent}" if run.path else "not saved"
    return (
        f"footprint: {rec.name!r} {rec.status} in {fmt_duration(rec.duration_s)}: "
        f"{fmt_kwh(rec.energy_kwh)} ({how or 'no devices'}), {carbon}; {where}"
    )


#: Signals footprint run passes on to its command.
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_SI_KERNEL = 0x80  # siginfo si_code of a signal the kernel sent (a terminal's Ctrl-C, a hangup)


@contextmanager
def _held_signals() -> Iterator[set[int]]:
    """Hold SIGINT, SIGTERM, SIGHUP and SIGCHLD for :func:`_wait` to take one at a time, with
    who sent them. Set before the tracker starts, so its threads inherit the mask and no signal
    is handled behind the wait's back. Signals left when the command is done are dropped."""
    waited: set[int] = {*FORWARDED, signal.SIGCHLD}
    signal.pthread_sigmask(signal.SIG_BLOCK, waited)
    try:
        yield waited
    finally:
        while signal.sigtimedwait(waited, 0) is not None:
            pass
        signal.pthread_sigmask(signal.SIG_UNBLOCK, waited)


def _unblock(waited: set[int]) -> Callable[[], None]:
    def in_child() -> None:  # the command starts with the signal mask it would have had
        signal.pthread_sigmask(signal.SIG_UNBLOCK, waited)

    return in_child


def _wait(proc: subprocess.Popen, waited: set[int], got: list[int]) -> int:
    """Wait for the command, passing on each signal sent to footprint run once: a signal the
    kernel sent to the whole foreground process group (a terminal's Ctrl-C, a hangup) reached
    the command already, and torchrun, for one, reads a second SIGINT as "kill now"."""
    while True:
        rc = proc.poll()
        if rc is not None:
            return rc
        info = signal.sigtimedwait(waited, 1.0)
        if info is None or info.si_signo == signal.SIGCHLD:
            continue
        got.append(info.si_signo)
        same_group = _pgid(proc.pid) == os.getpgrp()
        if info.si_code == _SI_KERNEL and same_group:
            continue
        try:
            proc.send_signal(info.si_signo)
        except ProcessLookupError:
            pass


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


_SECRET = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "KEY", "CREDENTIAL")


def _secret(name: str) -> bool:
    return any(word in name.upper().replace("-", "_") for word in _SECRET)


def redact(cmd: list[str]) -> list[str]:
    """The command line with the values of secret-looking options hidden: ``--token X``,
    ``--api-key=X``, ``AWS_SECRET_ACCESS_KEY=X`` (names holding TOKEN, SECRET, PASSWORD, KEY
    ...) become ``***``."""
    out: list[str] = []
    hide_next = False
    for arg in cmd:
        if hide_next:
            out.append("***")
            hide_next = False
            continue
        name, eq, _ = arg.partition("=")
        if arg.startswith("-") and _secret(name.lstrip("-")):
            if eq:
                out.append(f"{name}=***")
            else:
                out.append(arg)
                hide_next = True
            continue
        if (
            eq
            and not arg.startswith("-")
            and name
            and name.replace("_", "").isalnum()
            and _secret(name)
        ):
            out.append(f"{name}=***")
            continue
        out.append(arg)
    return out


def _pairs(option: str, items: list[str] | None, form: str) -> dict[str, float]:
    from footprint.errors import UsageError

    out: dict[str, float] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not sep or not key.strip() or number != number:
            raise UsageError(f"{option} must be {form}; got {item!r}")
        out[key.strip()] = number
    return out


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
            str,
            typer.Option(
                help="Whose CPU use is charged: process (the command's tree) or machine (all)."
            ),
        ] = "process",
        cpu_power_w: Annotated[
            float | None,
            typer.Option(help="W of all the CPUs the command may use at full load (estimate)."),
        ] = None,
        ram_w_per_gb: Annotated[
            float | None, typer.Option(help="W per GiB of memory in use (estimate).")
        ] = None,
        sample_interval_s: Annotated[
            float, typer.Option("--sample-interval", help="Timeline sampling period in seconds.")
        ] = 0.1,
        powercap_root: Annotated[Path, typer.Option(hidden=True)] = Path("/sys/class/powercap"),
        metrics_port: Annotated[
            int | None,
            typer.Option(
                help="Serve Prometheus metrics on this port while the command runs "
                "(http://ADDR:PORT/metrics; 0: any free port).",
            ),
        ] = None,
        task: Annotated[str | None, typer.Option(help="The task, for leaderboards.")] = None,
        model: Annotated[str | None, typer.Option(help="The model, for leaderboards.")] = None,
        variant: Annotated[
            str | None, typer.Option(help="The variant (int8, distilled...), for leaderboards.")
        ] = None,
        baseline: Annotated[
            bool, typer.Option("--baseline", help="This (task, model, variant) is the baseline.")
        ] = False,
        count: Annotated[
            list[str] | None,
            typer.Option(help="UNIT=N units of work the command did (repeatable): queries=1000."),
        ] = None,
        metric: Annotated[
            list[str] | None,
            typer.Option(help="NAME=VALUE a quality metric of the command (repeatable)."),
        ] = None,
        record_command: Annotated[
            bool,
            typer.Option(
                "--record-command/--no-record-command",
                help="Keep the command line and working directory in the record (values of "
                "options that look like secrets are redacted).",
            ),
        ] = True,
        live: Annotated[
            bool,
            typer.Option(
                "--live",
                help="A status line (power, energy, CO2e, forecast) on the terminal's last row "
                "while the command runs; nothing when stderr is not a terminal.",
            ),
        ] = False,
        metrics_addr: Annotated[
            str,
            typer.Option(help="Address the metrics are served on (0.0.0.0: every interface)."),
        ] = "127.0.0.1",
    ) -> int:
        import footprint

        tags = parse_tags(tag)
        counts = _pairs("--count", count, "UNIT=N, e.g. --count queries=1000")
        metrics = _pairs("--metric", metric, "NAME=VALUE, e.g. --metric accuracy=0.91")
        if record_command:
            tags.setdefault("command", shlex.join(redact(cmd)))
            tags.setdefault("cwd", os.getcwd())
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
            cpu_power_w=cpu_power_w,
            ram_w_per_gb=ram_w_per_gb,
            sample_interval_s=sample_interval_s,
            powercap_root=powercap_root,
            live=live,
            task=task,
            model=model,
            variant=variant,
            baseline=baseline,
        )
        if metrics_port is not None:  # bound before the command starts: a busy port fails now
            from footprint.integrations.prometheus import serve

            endpoint = serve(metrics_port, metrics_addr, every_rank=True)
            assert endpoint is not None
            print(literal(f"footprint: metrics at {endpoint.url}"), file=sys.stderr, flush=True)
        got: list[int] = []
        with _held_signals() as waited, tracker as run:
            env = None
            if run.job_id is None:  # trackers in the command join this run's job
                from footprint.jobs.identity import ENV_PARENT

                parent = {"run": run.id, "pid": os.getpid(), "store": str(run.store_path)}
                env = {**os.environ, ENV_PARENT: json.dumps(parent)}
            try:
                proc = subprocess.Popen(cmd, preexec_fn=_unblock(waited), env=env)
            except OSError as exc:
                # as a shell would: 127 for a command that is not there, 126 for one that
                # cannot be run; one line, and the run is recorded as failed
                code = 127 if isinstance(exc, FileNotFoundError) else 126
                run.fail(f"cannot run {cmd[0]!r}: {exc.strerror or exc} (exit {code})")
                print(
                    literal(f"footprint: error: cannot run {cmd[0]!r}: {exc.strerror or exc}"),
                    file=sys.stderr,
                )
                return code
            rc = _wait(proc, waited, got)
            if got or rc in (-signal.SIGINT, -signal.SIGTERM, -signal.SIGHUP, 130, 143, 129):
                names = ", ".join(signal.Signals(s).name for s in dict.fromkeys(got))
                why = f"{names} to footprint run; " if names else ""
                run.interrupt(
                    f"command ended by signal ({why}exit {rc}): {shlex.join(redact(cmd))}"
                )
            elif rc != 0:
                run.fail(f"command exited with {rc}: {shlex.join(redact(cmd))}")
            if counts:
                run.count(**counts)
        if metrics:
            run.log(**metrics)
        job = None
        if run.job_id is None and run.path is not None:
            from footprint.jobs.member import adopt
            from footprint.store import Store

            job = adopt(run.id, run.record, Store(run.store_path))
        if job is not None and job.job is not None:
            n = job.job.parts
            where = f"saved as job {job.id[:8]} ({n} parts) in {run.store_path}"
            print(literal(summary_line(run, job, where)), file=sys.stderr)
        else:
            print(literal(summary_line(run)), file=sys.stderr)
        return 128 - rc if rc < 0 else rc
