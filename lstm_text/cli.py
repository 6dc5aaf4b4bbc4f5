"""The command line: thin Typer commands that parse, build a config, call the library once and render.

The only module that imports typer. Errors the user can fix become one line on stderr and exit 1
(usage errors exit 2); never a traceback (set LSTM_TEXT_DEBUG=1 to see one).
"""

from __future__ import annotations

import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(
    name="lstm-text",
    help="Train LSTM language models on your text, generate from a prompt, classify sentiment.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class TokenizerKind(str, Enum):
    char = "char"
    bpe = "bpe"
    unigram = "unigram"


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


def _given(**kw) -> dict:
    return {k: (v.value if isinstance(v, Enum) else v) for k, v in kw.items() if v is not None}


@app.command()
def train(
    corpus: Annotated[list[str], typer.Argument(help="Text files, or a dataset name such as tinyshakespeare.",
                                                show_default=False)] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory to create (or to continue with --resume).")
                   ] = ...,
    tokenizer: Annotated[Optional[TokenizerKind], typer.Option(help="char, or SentencePiece bpe/unigram.")] = None,
    vocab_size: Annotated[Optional[int], typer.Option(help="Vocabulary size (char: 0 keeps every character).")
                          ] = None,
    layers: Annotated[Optional[int], typer.Option(help="Stacked LSTM layers.")] = None,
    hidden: Annotated[Optional[int], typer.Option(help="LSTM units per layer.")] = None,
    embed: Annotated[Optional[int], typer.Option(help="Embedding width.")] = None,
    dropout: Annotated[Optional[float], typer.Option(help="Locked dropout between layers and before the head.")
                       ] = None,
    embed_dropout: Annotated[Optional[float], typer.Option(help="Drop whole embedding rows (AWD-LSTM).")] = None,
    tie_weights: Annotated[Optional[bool], typer.Option("--tie-weights/--no-tie-weights",
                                                        help="Share embedding and output weights.")] = None,
    val_fraction: Annotated[Optional[float], typer.Option(help="Last fraction of the text used to validate.")
                            ] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Parallel streams per step.")] = None,
    seq_len: Annotated[Optional[int], typer.Option(help="Truncated BPTT length in tokens.")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Peak learning rate (AdamW).")] = None,
    warmup: Annotated[Optional[int], typer.Option(help="Linear warm-up steps.")] = None,
    weight_decay: Annotated[Optional[float], typer.Option(help="AdamW weight decay.")] = None,
    grad_clip: Annotated[Optional[float], typer.Option(help="Clip the gradient norm to this (0: off).")] = None,
    max_steps: Annotated[Optional[int], typer.Option(help="Stop after this many steps.")] = None,
    epochs: Annotated[Optional[float], typer.Option(help="Stop after this many passes over the data.")] = None,
    time_budget: Annotated[Optional[float], typer.Option(
        help="Stop after this many seconds of training, then evaluate and save. "
             "Without any stopping rule: 300.")] = None,
    eval_interval: Annotated[Optional[int], typer.Option(help="Steps between validations (default: quarters).")
                             ] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed.")] = None,
    device: Annotated[Optional[Device], typer.Option(help="Where to train.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the interrupted run in --out.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
):
    """Train a language model on a text file; writes a self-contained run directory."""
    from .config import ModelConfig, TrainConfig
    from .train import train_lm
    from .ui import TrainProgress, err, kv_table, out as stdout

    if not corpus and not resume:
        raise typer.BadParameter("give a text file or a dataset name (e.g. tinyshakespeare)", param_hint="CORPUS")
    tcfg = _given(tokenizer=tokenizer, vocab_size=vocab_size, val_fraction=val_fraction, batch_size=batch_size,
                  seq_len=seq_len, lr=lr, warmup=warmup, weight_decay=weight_decay, grad_clip=grad_clip,
                  max_steps=max_steps, epochs=epochs, time_budget=time_budget, eval_interval=eval_interval,
                  seed=seed, device=device)
    if not resume and not any(k in tcfg for k in ("max_steps", "epochs", "time_budget")):
        tcfg["time_budget"] = 300.0
    mcfg = _given(layers=layers, hidden=hidden, embed=embed, dropout=dropout, embed_dropout=embed_dropout,
                  tie_weights=tie_weights)
    ModelConfig(vocab_size=2, **mcfg)  # validate the model flags before reading any data
    summary = train_lm(corpus or [], out, model=mcfg, train=TrainConfig(**tcfg),
                       callback=TrainProgress(quiet), resume=resume)
    if not quiet:
        err.print(kv_table(f"trained {out}", [
            ("steps", summary["steps"]), ("epochs", summary["epochs"]), ("seconds", summary["seconds"]),
            ("best val bpc", summary["best_val_bpc"]), ("last val bpc", summary["last_val_bpc"]),
            ("model", str(out / "model.safetensors")),
        ]))
    else:
        del stdout


def _read_prompt(prompt: str | None, prompt_file: Path | None) -> str:
    from .data import read_text

    if prompt is not None and prompt_file is not None:
        raise typer.BadParameter("give PROMPT or --prompt-file, not both", param_hint="--prompt-file")
    if prompt_file is not None:
        if str(prompt_file) == "-":
            return sys.stdin.read()
        return read_text(prompt_file)
    if prompt == "-":
        return sys.stdin.read()
    return prompt or ""


@app.command()
def generate(
    model: Annotated[str, typer.Argument(help="Run directory or model file.")],
    prompt: Annotated[Optional[str], typer.Argument(help="Text to continue ('-': stdin).")] = None,
    prompt_file: Annotated[Optional[Path], typer.Option(help="Read the prompt from this file ('-': stdin).")
                           ] = None,
    max_tokens: Annotated[int, typer.Option(help="New tokens per sample.")] = 500,
    temperature: Annotated[float, typer.Option(help="Sampling temperature (> 0).")] = 1.0,
    top_k: Annotated[int, typer.Option(help="Sample from the k most likely tokens (0: all).")] = 0,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling mass in (0, 1].")] = 1.0,
    min_p: Annotated[float, typer.Option(help="Drop tokens below min-p x the top probability.")] = 0.0,
    repetition_penalty: Annotated[float, typer.Option(help="Penalise tokens already seen (1: off).")] = 1.0,
    stop: Annotated[Optional[list[str]], typer.Option(help="End a sample at this string (repeatable).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed: same seed, same text.")] = None,
    num_samples: Annotated[int, typer.Option(help="Samples to draw (as one batch).")] = 1,
    greedy: Annotated[bool, typer.Option(help="Always take the most likely token.")] = False,
    device: Annotated[Device, typer.Option(help="Where to run.")] = Device.cpu,
):
    """Generate text from a prompt; streams to stdout as it is produced."""
    import lstm_text

    from .config import GenerateConfig
    from .ui import warn

    text = _read_prompt(prompt, prompt_file)
    opts = dict(max_tokens=max_tokens, temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p,
                repetition_penalty=repetition_penalty, stop=stop or [], seed=seed, greedy=greedy)
    GenerateConfig(**opts)  # validate options before loading the model
    if num_samples < 1:
        raise typer.BadParameter("must be at least 1", param_hint="--num-samples")
    m = lstm_text.load(model, device.value)
    unknown = m.unknown_chars(text)
    if unknown:
        warn(f"the prompt has {len(unknown)} character(s) this model never saw in training "
             f"({''.join(sorted(unknown))[:20]!r}); they become the unknown token")
    w = sys.stdout
    if num_samples == 1:
        w.write(text)
        w.flush()
        for piece in m.stream(text, **opts):
            w.write(piece)
            w.flush()
        w.write("\n")
    else:
        for i, sample in enumerate(m.generate(text, num_samples=num_samples, **opts)):
            if i:
                w.write("\n" + "-" * 40 + "\n")
            w.write(text + sample + "\n")
    w.flush()


@app.command()
def evaluate(
    model: Annotated[str, typer.Argument(help="Run directory or model file.")],
    file: Annotated[Path, typer.Argument(help="Text file to measure.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    device: Annotated[Device, typer.Option(help="Where to run.")] = Device.cpu,
):
    """Measure a language model on a text file: bits per character, perplexity, counts."""
    import lstm_text

    from .data import read_text
    from .ui import kv_table, out

    text = read_text(file)
    m = lstm_text.load(model, device.value)
    r = m.evaluate(text)
    if as_json:
        print(json.dumps(r))
    else:
        out().print(kv_table(f"{file}", [("bits per character", r["bpc"]), ("loss per token (nats)", r["loss"]),
                                          ("perplexity per token", r["perplexity"]), ("tokens", r["tokens"]),
                                          ("characters", r["characters"])]))


@app.command()
def info(
    model: Annotated[str, typer.Argument(help="Run directory, model file or built-in model name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
):
    """Show a model's heads, configuration, parameter count, tokenizer and training summary."""
    import lstm_text

    from .ui import kv_table, out

    d = lstm_text.load(model).info()
    if as_json:
        print(json.dumps(d))
        return
    tr = d["training"]
    rows = [("path", d["path"]), ("heads", ", ".join(d["heads"])), ("parameters", d["parameters"]),
            ("tokenizer", f"{d['tokenizer']} ({d['vocab_size']} ids)")]
    rows += [(k, str(v)) for k, v in d["config"].items() if k not in ("vocab_size",)]
    for k in ("steps", "epochs", "seconds", "best_val_bpc", "last_val_bpc", "corpus", "dev_accuracy"):
        if tr.get(k) is not None:
            rows.append((f"training: {k}", tr[k] if not isinstance(tr[k], list) else " ".join(map(str, tr[k]))))
    out().print(kv_table(f"lstm-text model {model}", rows))


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app and turn every expected failure into one line on stderr."""
    try:  # typer >= 0.22 vendors click; older releases depend on it
        from typer._click import exceptions as click
    except ImportError:  # pragma: no cover
        import click.exceptions as click

    from .errors import LstmTextError
    from .ui import error

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
        error(str(e))
        return e.exit_code
    except KeyboardInterrupt:
        error("interrupted")
        return 130
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)  # the reader went away (e.g. `| head`): not an error
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except MemoryError:
        error("out of memory; try a smaller --batch-size or model")
        return 1
    except Exception as e:  # a bug: still one line, with the way to get the traceback
        if os.environ.get("LSTM_TEXT_DEBUG"):
            raise
        error(f"internal error: {type(e).__name__}: {e} (set LSTM_TEXT_DEBUG=1 for the traceback)")
        return 3
