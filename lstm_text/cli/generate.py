"""``generate``: one or more samples streamed to stdout, or ``--interactive``'s prompt loop with its history."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

import lstm_text

from ..config import Device, GenerateConfig
from ..errors import LstmTextError
from .options import Quantize, Sentiment, _q, _read_prompt, option


def generate(
    model: Annotated[str, typer.Argument(help="Run directory or model file.")],
    prompt: Annotated[str | None, typer.Argument(help="Text to continue ('-': stdin).")] = None,
    prompt_file: Annotated[Path | None, typer.Option(help="Read the prompt from this file ('-': stdin).")] = None,
    max_tokens: int = option(GenerateConfig, "max_tokens"),
    temperature: float = option(GenerateConfig, "temperature"),
    top_k: int = option(GenerateConfig, "top_k"),
    top_p: float = option(GenerateConfig, "top_p"),
    min_p: float = option(GenerateConfig, "min_p"),
    repetition_penalty: float = option(GenerateConfig, "repetition_penalty"),
    stop: list[str] | None = option(
        GenerateConfig, "stop", help="End a sample at this string (repeatable).", default=None
    ),
    seed: int | None = option(GenerateConfig, "seed"),
    num_samples: Annotated[int, typer.Option(help="Samples to draw (as one batch).")] = 1,
    greedy: bool = option(GenerateConfig, "greedy"),
    quantize: Annotated[
        Quantize, typer.Option(help="int8: int8 weights for the per-token steps (CPU only; faster on larger models).")
    ] = Quantize.none,
    device: Annotated[Device, typer.Option(help="Where to run.")] = Device.cpu,
    sentiment: Annotated[
        Sentiment | None,
        typer.Option(
            help="Steer towards this class of --classifier (FUDGE: the top candidates reweighted).", show_default=False
        ),
    ] = None,
    classifier: Annotated[
        str | None, typer.Option(help="Classifier that steers --sentiment \\[default: sentiment]", show_default=False)
    ] = None,
    strength: Annotated[
        float | None,
        typer.Option(help="Weight of the classifier's log-probability (0-100) \\[default: 4]", show_default=False),
    ] = None,
    interactive: Annotated[
        bool, typer.Option("--interactive", "-i", help="A prompt loop keeping the LSTM state across turns (/help).")
    ] = False,
):
    """Generate text from a prompt; streams to stdout as it is produced."""
    from ..ui import warn

    text = _read_prompt(prompt, prompt_file)
    opts: dict[str, Any] = dict(
        max_tokens=max_tokens,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        min_p=min_p,
        repetition_penalty=repetition_penalty,
        stop=stop or [],
        seed=seed,
        greedy=greedy,
    )
    GenerateConfig(**opts)  # validate options before loading the model
    if num_samples < 1:
        raise typer.BadParameter("must be at least 1", param_hint="--num-samples")
    if sentiment is None and not interactive and (classifier is not None or strength is not None):
        raise typer.BadParameter("--classifier and --strength steer --sentiment; give --sentiment too")
    if interactive and num_samples != 1:
        raise typer.BadParameter("an interactive session draws one sample per turn", param_hint="--num-samples")
    if interactive and "-" in (prompt, str(prompt_file)):
        raise typer.BadParameter("an interactive session reads its turns from stdin; give the prompt as text")
    steering = dict(sentiment=sentiment and sentiment.value, classifier=classifier or "sentiment", strength=strength)
    if strength is not None:
        from ..infer.steer import check_strength

        check_strength(strength)
    m = lstm_text.load(model, device.value, _q(quantize))
    if interactive:
        _repl(m.session(**steering, **opts), text)
        return
    for note in m.prompt_notes(text):
        warn(note)
    w = sys.stdout
    if num_samples == 1:
        pieces = m.stream(text, **steering, **opts)  # checks the steering before the prompt is written
        w.write(text)
        w.flush()
        for piece in pieces:
            w.write(piece)
            w.flush()
        w.write("\n")
    else:
        for i, sample in enumerate(m.generate(text, num_samples=num_samples, **steering, **opts)):
            if i:
                w.write("\n" + "-" * 40 + "\n")
            w.write(text + sample + "\n")
    w.flush()


HISTORY_LINES = 1000  # turns of `generate --interactive` kept across sessions


class _History:
    """readline's history of the prompt loop, kept in ``path`` across sessions."""

    def __init__(self, readline, path: Path):
        self.readline, self.path = readline, path
        readline.set_auto_history(False)  # added here, so piped-in test turns and typed ones alike are kept
        readline.set_history_length(HISTORY_LINES)
        try:
            readline.read_history_file(str(path))
        except OSError:  # none yet, or unreadable: start empty
            pass

    def add(self, line: str) -> None:
        self.readline.add_history(line)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.readline.write_history_file(str(self.path))
        except OSError:  # a read-only home: editing still works, the history is not kept
            pass


def history_path() -> Path:
    """Where `generate --interactive` keeps its history: LSTM_TEXT_HISTORY, else the user's cache folder."""
    env = os.environ.get("LSTM_TEXT_HISTORY")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lstm-text" / "generate_history"


def _line_editing() -> _History | None:
    """Line editing (arrows, Home/End, Ctrl-R) and history for input() on a terminal: readline, where Python
    has it (not on Windows, whose console edits lines itself)."""
    try:
        import readline
    except ImportError:
        return None
    return _History(readline, history_path())


def _repl(session, first: str) -> None:
    """``generate --interactive``: read turns from stdin until /quit or end of input; each reply streams to
    stdout, command replies and errors go to stderr."""
    from ..ui import error

    tty = sys.stdin.isatty()
    history = _line_editing() if tty else None
    if tty:
        sys.stderr.write("type text and the model continues it; /help lists the commands, /quit ends\n")
    w = sys.stdout

    def reply(text: str) -> None:
        try:
            for piece in session.turn(text):
                w.write(piece)
                w.flush()
        except KeyboardInterrupt:  # Ctrl-C ends this reply, not the session
            pass
        w.write("\n")  # display only: the model's text runs on where the reply stopped
        w.flush()

    if first:
        w.write(first)
        reply(first)
    while True:
        try:
            line = input("> " if tty else "")
        except EOFError:
            break
        if history and line.strip():
            history.add(line)
        if not line.startswith("/"):
            reply(line)
            continue
        try:
            msg = session.command(line)
        except LstmTextError as e:
            error(str(e))
            continue
        if msg is None:
            break
        sys.stderr.write(msg + "\n")
        sys.stderr.flush()
