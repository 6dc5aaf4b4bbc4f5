"""Sentiment-steered generation (FUDGE, ``generate --sentiment``) against unsteered sampling, in one run.

For each setting (unsteered, positive, negative) it draws ``--samples`` continuations of a cycle of neutral
review openings from a language model, one sample at a time as ``generate`` streams them, and reports:
- the share classified as the target by lstm-text's own classifier (``--classifier``, the judge that also
  steers) and by VADER (an independent lexicon judge: positive iff compound >= 0.05, negative iff <= -0.05);
- fluency: the unsteered LM's bits per character on the sampled texts (prompt included), pooled over them;
- tokens/s of the generation (batch 1, streaming; the classifier's one-time load and fit check excluded).

Run: ``python benchmarks/steer.py --lm runs/imdb --json /tmp/steer.json`` (VADER: ``pip install
vaderSentiment`` in this interpreter, or ``--vader-python`` naming one that has it).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the CLI does

import lstm_text  # noqa: E402

PROMPTS = [
    "I watched this movie",
    "The film",
    "This movie",
    "The story",
    "I saw this film",
    "The acting",
    "When I rented this",
    "The plot",
    "My wife and I",
    "The director",
]


def vader(texts: list[str], python: str | None) -> list[float]:
    """VADER's compound score of each text, here or in another interpreter that has vaderSentiment."""
    code = (
        "import json, sys\n"
        "from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer\n"
        "a = SentimentIntensityAnalyzer()\n"
        "print(json.dumps([a.polarity_scores(t)['compound'] for t in json.load(sys.stdin)]))\n"
    )
    if python is None and importlib.util.find_spec("vaderSentiment") is None:
        sys.exit("vaderSentiment not found: pip install vaderSentiment, or give --vader-python")
    r = subprocess.run(
        [python or sys.executable, "-c", code], input=json.dumps(texts), capture_output=True, text=True, check=True
    )
    return json.loads(r.stdout)


def run_setting(lm, label: str | None, args) -> dict:
    steer = dict(sentiment=label, classifier=args.classifier, strength=args.strength) if label else {}
    if label:  # load the classifier and check its fit before timing, as a streaming session would once
        lm.steer(label, classifier=args.classifier, strength=args.strength, prompt=PROMPTS[0])
    texts, tokens, seconds = [], 0, 0.0
    for i in range(args.samples):
        prompt = PROMPTS[i % len(PROMPTS)]
        t = time.perf_counter()
        out = lm.generate(prompt, max_tokens=args.max_tokens, temperature=args.temperature, seed=args.seed + i, **steer)
        seconds += time.perf_counter() - t
        tokens += len(lm.tokenizer.encode(out))
        texts.append(prompt + out)
    return {"texts": texts, "tokens": tokens, "seconds": seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lm", required=True, help="language model run directory (e.g. trained on imdb/unsup.txt)")
    ap.add_argument("--classifier", default="sentiment")
    ap.add_argument("--samples", type=int, default=50)
    ap.add_argument("--max-tokens", type=int, default=300)
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--strength", type=float, default=None, help="default: generate's default")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--vader-python", default=None)
    ap.add_argument("--json", default=None, help="write the figures (and the texts) here")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)  # batch-1 steps: threads cost more than they give on 2 cores
    lm = lstm_text.load(args.lm)
    clf = lstm_text.load(args.classifier)
    from lstm_text.infer.steer import STRENGTH

    strength = STRENGTH if args.strength is None else args.strength
    rows = []
    for label in (None, "positive", "negative"):
        r = run_setting(lm, label, args)
        probs = [x["probs"] for x in clf.classify(r["texts"])]
        compound = vader(r["texts"], args.vader_python)
        chars = sum(len(t) for t in r["texts"])
        bits = sum(lm.evaluate(t)["bpc"] * len(t) for t in r["texts"])
        row = {
            "setting": label or "unsteered",
            "strength": strength if label else 0.0,
            "clf_positive": sum(p["positive"] > p["negative"] for p in probs) / len(probs),
            "clf_negative": sum(p["negative"] >= p["positive"] for p in probs) / len(probs),
            "clf_mean_p_positive": sum(p["positive"] for p in probs) / len(probs),
            "vader_positive": sum(c >= 0.05 for c in compound) / len(compound),
            "vader_negative": sum(c <= -0.05 for c in compound) / len(compound),
            "bpc_unsteered_lm": bits / chars,
            "tokens_per_s": r["tokens"] / r["seconds"],
            "examples": r["texts"][:3],
        }
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "examples"}), file=sys.stderr, flush=True)
    print(
        f"{args.samples} samples per setting, {args.max_tokens} tokens, temperature {args.temperature}, "
        f"classifier {args.classifier}, strength {strength:g}"
    )
    print(
        "| setting | lstm-text: positive | lstm-text: negative | VADER: positive | VADER: negative "
        "| bpc (unsteered LM) | tokens/s |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['setting']} | {r['clf_positive']:.0%} | {r['clf_negative']:.0%} | {r['vader_positive']:.0%} "
            f"| {r['vader_negative']:.0%} | {r['bpc_unsteered_lm']:.3f} | {r['tokens_per_s']:,.0f} |"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "strength": strength, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
