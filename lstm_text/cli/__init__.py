"""The command line: thin Typer commands that parse, build a config, call the library once and render.

The only package that imports typer; one module per command group (Typer's "One File Per Command"), the options
they share in ``options``. Errors the user can fix become one line on stderr and exit 1 (usage errors exit 2);
never a traceback (set LSTM_TEXT_DEBUG=1 to see one).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

# NumPy's OpenBLAS would spin threads of its own under classify's parallel batches (measured: 40% slower)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import typer  # noqa: E402

from ..errors import flag  # noqa: E402
from . import classify, generate, models, probe, serve, train  # noqa: E402  (light: heavy imports are lazy)
from .generate import _repl  # noqa: E402, F401  (tests drive the prompt loop)
from .options import _rank  # noqa: E402

app = typer.Typer(
    name="lstm-text",
    help="Train LSTM language models on your text, generate from a prompt, classify sentiment.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        try:  # the fused cell of classify (setup.py), built at install when a C compiler is there
            from ..infer import _cell

            cell = f"compiled LSTM cell: in use ({Path(_cell.__file__).name})"
        except ImportError:
            cell = (
                "compiled LSTM cell: not built (no C compiler at install): classify runs the same steps in NumPy, "
                "about half as fast; reinstall with a C compiler to build it"
            )
        print(f"lstm-text {__version__}\n{cell}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version,
            is_eager=True,
            help="Show the version, and whether the compiled cell is in use.",
        ),
    ] = False,
) -> None:
    """Train LSTM language models on your text, generate from a prompt, classify sentiment."""


# the order of --help's command list
app.command()(train.train)
app.command()(generate.generate)
app.command()(classify.evaluate)
app.command()(models.info)
app.command()(models.export)
app.command("train-classifier")(train.train_classifier)
app.command()(classify.classify)
app.command()(serve.bench)
app.command()(serve.serve)
app.command("inspect")(probe.inspect_cmd)
app.command()(probe.plot)


def _full_option_names() -> None:
    """--help never cuts an option's name (``--tokenizer-sa…`` at 80 columns): the name columns of Typer's
    options tables do not wrap, so only the help text column narrows on a small terminal."""
    from rich.table import Table
    from typer import rich_utils

    if getattr(rich_utils.Table, "full_names", False):
        return

    class OptionsTable(Table):
        full_names = True

        def add_row(self, *cells, **kw) -> None:
            new = not self.columns  # the options table's columns come with its first row; the commands' before
            for part in getattr(cells[-1], "renderables", ()) if cells else ():
                if getattr(part, "overflow", "") is None:  # a word too long for the help column (an example) folds
                    part.overflow = "fold"
            super().add_row(*cells, **kw)
            if new:
                for column in self.columns[:-2]:  # the names: not the type (it folds) nor the help text
                    column.no_wrap = True

    rich_utils.Table = OptionsTable  # type: ignore[misc]  # Typer builds its tables from this name


def _param_names(args: list[str]):
    """How this command line says a library parameter: the running command's own option (``out`` -> ``--out``,
    a positional argument by its metavar), else ``flag``'s ``--name``."""
    from typer.main import get_command

    command = getattr(get_command(app), "commands", {}).get(args[0]) if args else None
    said = {}
    for p in getattr(command, "params", ()):
        if p.param_type_name == "argument":
            said[p.name] = p.human_readable_name
        else:
            said[p.name] = max(p.opts, key=len)  # --out, not -o
    return lambda name: said.get(name, flag(name))


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app and turn every expected failure into one line on stderr."""
    try:  # typer >= 0.22 vendors click; older releases depend on it
        from typer._click import exceptions as click
    except ImportError:  # pragma: no cover
        import click.exceptions as click  # type: ignore[no-redef]  # the same module, from click itself

    from ..errors import LstmTextError
    from ..ui import error

    args = sys.argv[1:] if argv is None else argv
    if not args or {"-h", "--help"} & set(args):
        _full_option_names()
    try:
        rv = app(args=argv, prog_name="lstm-text", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except click.NoArgsIsHelpError:  # `lstm-text` alone: the help was shown
        return 0
    except click.UsageError as e:
        hint = f" (see 'lstm-text {e.ctx.info_name} --help')" if e.ctx and e.ctx.parent else ""
        error(f"{e.format_message()}{hint}")
        return 2
    except click.ClickException as e:
        error(e.format_message())
        return e.exit_code
    except typer.Abort:
        error("interrupted")
        return 130
    except LstmTextError as e:
        if _rank() == 0 or e.exit_code < 128:  # under torchrun, one line per stop signal, from rank 0
            msg = e.render(_param_names(args))
            error(msg if _rank() == 0 else f"rank {_rank()}: {msg}")
        return e.exit_code
    except KeyboardInterrupt:
        error("interrupted")
        return 130
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)  # the reader went away (e.g. `| head`): not an error
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as e:  # the environment's fault (no space left, read-only, a missing device): one line
        if os.environ.get("LSTM_TEXT_DEBUG"):
            raise
        error(f"{e.strerror or e}: {e.filename}" if e.filename else f"{e.strerror or e}")
        return 1
    except MemoryError:
        error("out of memory; try a smaller --batch-size or model")
        return 1
    except Exception as e:  # a bug: still one line, with the way to get the traceback
        if os.environ.get("LSTM_TEXT_DEBUG"):
            raise
        error(f"internal error: {type(e).__name__}: {e} (set LSTM_TEXT_DEBUG=1 for the traceback)")
        return 3
