"""The ``footprint`` command: one small module per subcommand, each calling the library.

:func:`main` turns the project's errors into one clear stderr line and an exit code.
"""

from __future__ import annotations

import sys
import warnings

EXIT_ERROR = 1
EXIT_USAGE = 2

# Subcommand modules, each with ``register(app)``; listed here so adding one is one line.
_COMMANDS = (
    "footprint.cli.sensors",
    "footprint.cli.run",
    "footprint.cli.runs",
    "footprint.cli.show",
    "footprint.cli.rm",
    "footprint.cli.merge",
    "footprint.cli.regions",
    "footprint.cli.whatif",
    "footprint.cli.recompute",
    "footprint.cli.leaderboard",
    "footprint.cli.compare",
    "footprint.cli.import_codecarbon",
    "footprint.cli.report",
    "footprint.cli.card",
    "footprint.cli.demo",
)


def _app():
    import importlib

    import typer

    app = typer.Typer(
        name="footprint",
        help="Measure the energy and carbon footprint of machine-learning runs.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )

    def _version(value: bool) -> None:
        if value:
            from footprint import __version__

            print(f"footprint {__version__}")
            raise typer.Exit()

    @app.callback()
    def _root(
        version: bool = typer.Option(
            False, "--version", callback=_version, is_eager=True, help="Print the version."
        ),
    ) -> None:
        """Measure the energy and carbon footprint of machine-learning runs."""

    for module in _COMMANDS:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue  # a subcommand not built yet
        mod.register(app)
    return app


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


def main(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``) and return the exit code."""
    import typer

    from footprint.errors import FootprintError, UsageError

    args = sys.argv[1:] if argv is None else list(argv)
    # Library warnings (a degraded sensor...) reach the terminal as one line each.
    warnings.showwarning = lambda msg, cat, *a, **k: print(
        f"footprint: warning: {_one_line(str(msg))}", file=sys.stderr
    )
    try:
        result = _app()(args=args, prog_name="footprint", standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        print("footprint: aborted", file=sys.stderr)
        return 130
    except typer.TyperException as exc:  # typer's (vendored click's) usage errors
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
            print(ctx.get_help())
            return EXIT_USAGE
        print(f"footprint: error: {_one_line(exc.format_message())}", file=sys.stderr)
        if ctx is not None:
            print(f"  (see `{ctx.command_path} --help`)", file=sys.stderr)
        return getattr(exc, "exit_code", EXIT_USAGE) or EXIT_USAGE
    except (UsageError, ValueError) as exc:
        print(f"footprint: error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except FootprintError as exc:
        print(f"footprint: error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        return EXIT_ERROR
    except OSError as exc:  # an output file that cannot be written, a full disk...
        where = f" {exc.filename!r}" if getattr(exc, "filename", None) else ""
        print(
            f"footprint: error: cannot write or read{where}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return EXIT_ERROR
    return result if isinstance(result, int) else 0
