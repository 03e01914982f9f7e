"""The ``salova`` command line: thin handlers over the library.

Each handler parses its options, builds a config, calls one library function and prints
the result. A :class:`~salova.errors.SalovaError` becomes one line on stderr starting with
``error:`` and exit code 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from salova import __version__
from salova.errors import SalovaError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="salova")
def cli() -> None:
    """SALOVA: find the scenes of a long video that answer a question."""


def _echo_json(obj) -> None:
    click.echo(json.dumps(obj, indent=2, ensure_ascii=False))


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
