"""Model cards: the README.md beside a model file, with the YAML metadata the Hugging Face hub validates
(license, language, datasets, metrics, model-index), then what the model is, how it was trained, its
evaluation, its intended use and its limits (Mitchell et al. 2019, "Model Cards for Model Reporting").

``card_facts`` gathers the facts from the model file's own metadata (config, tokenizer, training summary) and,
for a built-in model, from ``pretrained.CARDS``; ``render`` writes them; ``write_card`` is called when a
training run ends (and so again on each resume). ``lstm-text info`` shows ``headline``. No torch here.
"""

from __future__ import annotations

import json
from pathlib import Path

from .checkpoint import MODEL_FILE, atomic_write

CARD_FILE = "README.md"


def _builtin(path: Path) -> dict | None:
    from .pretrained import CARDS, HERE

    return CARDS.get(path.parent.name) if path.parent.parent == HERE else None


def companion_of(ckpt) -> tuple[str, float] | None:
    """The built-in model that answers, for a built-in one, the lines in the languages it does not read, and the
    weight of its word on the lines in the languages both read (``pretrained.CARDS``' "companion" and "mix");
    None for the others."""
    builtin = _builtin(Path(str(ckpt.meta.get("path", MODEL_FILE))).resolve())
    if not builtin or "companion" not in builtin:
        return None
    return builtin["companion"], builtin.get("mix", 0.0)


def card_facts(ckpt) -> dict:
    """The card's facts for a model file (``checkpoint.Checkpoint``): metadata first, the rest in the body."""
    cfg, t = ckpt.cfg, ckpt.meta.get("training", {})
    path = Path(str(ckpt.meta.get("path", MODEL_FILE))).resolve()
    builtin = _builtin(path)
    task = "text-classification" if cfg.labels else "text-generation"
    name = path.parent.name
    if cfg.labels:
        data = [Path(p).name for p in t.get("data", [])]
        results = [
            {"dataset": "dev: " + ", ".join(Path(p).name for p in t.get("dev", [])) or "held out", "split": "dev",
             "metric": m, "name": n, "value": t[k]}
            for m, n, k in (("accuracy", "dev accuracy", "dev_accuracy"), ("f1", "dev macro-F1", "dev_macro_f1"))
            if isinstance(t.get(k), (int, float))
        ]  # fmt: skip
    else:
        data = [Path(p).name for p in t.get("corpus", [])]
        vf = t.get("config", {}).get("val_fraction", 0.1)
        results = [
            {"dataset": ", ".join(data) or "training text", "split": f"validation (the last {vf:g} of each file)",
             "metric": "bpc", "name": "validation bits per character", "value": t["best_val_bpc"]}
        ] if isinstance(t.get("best_val_bpc"), (int, float)) else []  # fmt: skip
    from .data.datasets import REGISTRY

    known = [REGISTRY[d] for d in t.get("corpus", []) if d in REGISTRY]
    facts = {
        "name": name,
        "task": task,
        "license": "unknown",  # the weights carry the terms of their training text, which lstm-text cannot know
        "language": ["en"] if known else [],
        "datasets": data,
        "sources": [{"name": d.name, "licence": d.license} for d in known],
        "results": results,
        "summary": _summary(cfg, ckpt.tokenizer),
        "training": t,
        "config": cfg.to_dict(),
        "tokenizer": f"{ckpt.tokenizer.kind}, {cfg.vocab_size:,} ids"
        + (f", normalisation {ckpt.tokenizer.normalize}" if getattr(ckpt.tokenizer, "normalize", "") else ""),
        "intended_use": (
            f"Classifying short texts into {', '.join(cfg.labels)}, like the data it was trained on."
            if cfg.labels
            else "Generating text in the style of its training text, and scoring text (bits per character)."
        ),
        "limitations": [
            "It knows only what its training data shows: text unlike it (another language, domain or register) "
            + ("gets confident answers that are worth less." if cfg.labels else "is predicted poorly."),
            "Its figures are measured on held-out parts of the same sources, not on text from elsewhere.",
        ]
        + ([] if cfg.labels else ["Generated text can repeat or invent; it is not checked for facts or safety."]),
    }
    if builtin:
        facts |= builtin
    return facts


def _summary(cfg, tok) -> str:
    dirs = "bidirectional " if cfg.bidirectional else ""
    layers = f"{cfg.layers} layer{'s' if cfg.layers > 1 else ''}"
    heads = (["a language-model head"] if cfg.lm_head else []) + (
        [f"a classification head ({', '.join(cfg.labels)})"] if cfg.labels else []
    )
    return (
        f"A{'n' if not dirs else ''} {dirs}LSTM of {layers} x {cfg.hidden} units over {cfg.embed}-wide "
        f"{tok.kind} embeddings, with {' and '.join(heads)}, trained with lstm-text."
    )


def _yaml(v, indent: int = 0) -> str:
    """A small YAML writer for the card's metadata: mappings, lists, and scalars as JSON (valid YAML)."""
    pad = " " * indent
    if isinstance(v, dict):
        lines = []
        for k, x in v.items():
            if isinstance(x, (dict, list)) and x:
                lines.append(f"{pad}{k}:\n{_yaml(x, indent + 2)}")
            else:
                lines.append(f"{pad}{k}: {json.dumps(x, ensure_ascii=False)}")
        return "\n".join(lines)
    lines = []
    for x in v:
        if isinstance(x, dict):
            inner = _yaml(x, indent + 2).split("\n")
            lines.append(f"{pad}- {inner[0].lstrip()}")
            lines += inner[1:]
        else:
            lines.append(f"{pad}- {json.dumps(x, ensure_ascii=False)}")
    return "\n".join(lines)


def metadata(f: dict) -> dict:
    """The hub's metadata: license, language, datasets, metrics, model-index (name, task, dataset, metrics)."""
    meta = {"license": f["license"]}
    if f.get("license_name"):
        meta["license_name"] = f["license_name"]
    if f["language"]:
        meta["language"] = f["language"]
    meta |= {
        "library_name": "lstm-text",
        "pipeline_tag": f["task"],
        "tags": ["lstm", "lstm-text"],
        "datasets": f.get("hub_datasets") or f["datasets"],
        "metrics": sorted({r["metric"] for r in f["results"]}),
        "model-index": [
            {
                "name": f["name"],
                "results": [
                    {
                        "task": {"type": f["task"]},
                        "dataset": {"name": r["dataset"], "type": r.get("type", r["dataset"]), "split": r["split"]},
                        "metrics": [{"type": r["metric"], "value": round(r["value"], 4), "name": r["name"]}],
                    }
                    for r in f["results"]
                ],
            }
        ],
    }
    return meta


def render(f: dict) -> str:
    """The card as Markdown with its YAML front matter."""
    t = f["training"]
    out = ["---", _yaml(metadata(f)), "---", "", f"# {f['name']}", "", f["summary"], ""]
    out += ["## Use", "", "```", "pip install lstm-text", f.get("usage") or _usage(f), "```", "", f["intended_use"], ""]
    out += ["## Training", ""]
    if f["datasets"]:
        out.append(f"- data: {', '.join(f['datasets'])}")
    if t.get("dev"):
        out.append(f"- dev (selection and calibration): {', '.join(Path(p).name for p in t['dev'])}")
    for key, what in (
        ("train_tokens", "training tokens"),
        ("train_examples", "training examples"),
        ("tokens", "tokens read"),
        ("steps", "steps"),
        ("epochs", "epochs"),
        ("wall_seconds", "wall-clock seconds"),
    ):
        if t.get(key) is not None:
            v = t[key]
            out.append(f"- {what}: {v:,}" if isinstance(v, int) else f"- {what}: {v}")
    out.append(f"- tokenizer: {f['tokenizer']}")
    if not f["language"]:
        out.append("- language: not recorded (lstm-text cannot tell; add `language:` to the metadata above)")
    if t.get("init"):
        out.append(f"- started from: {t['init']}")
    if t.get("vectors"):
        out.append(f"- word vectors: {Path(t['vectors']).name}")
    out += ["", "Model configuration and training configuration (as the model file records them):", "", "```json"]
    out += [json.dumps({"model": f["config"], "train": t.get("config", {})}, indent=1), "```", ""]
    if f.get("sources"):
        out += ["Data and licences:", ""] + [f"- {s['name']}: {s['licence']}" for s in f["sources"]] + [""]
    out += ["", "## Evaluation", ""]
    if f["results"]:
        out += ["| data | split | metric | value |", "| --- | --- | --- | --- |"]
        out += [f"| {r['dataset']} | {r['split']} | {r['name']} | {r['value']:.4f} |" for r in f["results"]]
    else:
        out.append("Not evaluated yet: `lstm-text evaluate` measures it.")
    out += ["", "## Limitations", ""] + [f"- {x}" for x in f["limitations"]] + [""]
    out += ["## Files", ""] + f.get("files", [
        f"`{MODEL_FILE}` holds the weights, the configuration and the tokenizer (safetensors, no pickled code);",
        "`lstm-text export . -o onnx` makes ONNX graphs of it for onnxruntime and other runtimes.",
    ]) + [""]  # fmt: skip
    return "\n".join(out).replace("\n\n\n", "\n\n")


def _usage(f: dict) -> str:
    ref = f.get("builtin_name") or f"./{f['name']}"
    if f["task"] == "text-classification":
        return f'echo "What a wonderful film." | lstm-text classify --model {ref}'
    return f'lstm-text generate {ref} "Once upon a time" --max-tokens 200'


def write_card(where: str | Path) -> Path:
    """Write (or rewrite) README.md beside a model file: a run directory or a model file's folder."""
    from .checkpoint import model_path, read_model

    path = model_path(where)
    card = path.parent / CARD_FILE
    atomic_write(card, render(card_facts(read_model(path))).encode("utf-8"))
    return card


def headline(f: dict) -> dict:
    """What ``lstm-text info`` shows of the card: licence, language, data and the evaluation figures."""
    return {
        "license": f["license"] + (f" ({f['license_name']})" if f.get("license_name") else ""),
        "language": ", ".join(f["language"]) or "not recorded",
        "data": ", ".join(f["datasets"]) or "not recorded",
        "results": "; ".join(f"{r['dataset']} {r['name']} {r['value']:.4f}" for r in f["results"]) or "none",
        "intended use": f["intended_use"],
    }
