"""The ``salova`` command line: thin handlers over the library.

Each command lives in a module of this package and is imported only when it runs, so
``salova segment`` does not pay for importing the model stack. A handler parses its
options, builds a config, calls one library function and prints the result. A
:class:`~salova.errors.SalovaError` becomes one line on stderr starting with ``error:``
and exit code 2.
"""

from __future__ import annotations

import importlib
import sys

import click

from salova import __version__
from salova.errors import SalovaError

__all__ = ["COMMANDS", "cli", "main"]

COMMANDS: dict[str, str] = {
    "build-data": "salova.cli.data:build_data",
    "convert-data": "salova.cli.data:convert_data",
    "data-stats": "salova.cli.data:data_stats",
    "ask": "salova.cli.infer:ask",
    "chat": "salova.cli.infer:chat",
    "demo": "salova.cli.infer:demo",
    "index": "salova.cli.infer:index",
    "segment": "salova.cli.video:segment",
    "serve": "salova.cli.serve:serve",
    "synth": "salova.cli.video:synth",
    "train": "salova.cli.train:train",
    "train-curves": "salova.cli.train:train_curves",
    "export": "salova.cli.train:export",
    "eval": "salova.cli.eval:evaluate_command",
    "synth-bench": "salova.cli.eval:synth_bench",
    "niah": "salova.cli.eval:niah",
    "ablate": "salova.cli.eval:ablate",
    "synth-stream": "salova.cli.seal:synth_stream",
    "tokens": "salova.cli.seal:tokens",
    "seal-eval": "salova.cli.seal:seal_eval",
}
"""Command name -> ``module:function`` of its click command."""


class LazyGroup(click.Group):
    """A group whose commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module_name, attribute = COMMANDS[cmd_name].split(":")
        return getattr(importlib.import_module(module_name), attribute)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="salova")
def cli() -> None:
    """SALOVA: find the scenes of a long video that answer a question."""


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``salova`` console script and ``python -m salova``."""
    try:
        rc = cli.main(args=argv, prog_name="salova", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("error: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:  # usage errors, bad option values
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(2)
    except SalovaError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    sys.exit(rc if isinstance(rc, int) else 0)
