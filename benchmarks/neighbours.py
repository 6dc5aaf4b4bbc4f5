"""Nearest neighbours in a table of word vectors by cosine similarity: a look at what vectors (pretrained or
trained) have learned. For benchmarks and tests; not part of the installed package.
"""

from __future__ import annotations

import numpy as np

from lstm_text.data.vectors import WordVectors
from lstm_text.errors import LstmTextError


def nearest(vectors: WordVectors, word: str, k: int = 5) -> list[tuple[str, float]]:
    """The ``k`` words closest to ``word`` by cosine similarity, best first, without ``word`` itself."""
    query = vectors.get(word)
    if query is None:
        raise LstmTextError(f"{word!r} is not in the vectors")
    norms = np.linalg.norm(vectors.matrix, axis=1)  # (N,)
    sims = vectors.matrix @ query / np.maximum(norms * np.linalg.norm(query), 1e-12)  # (N,)
    sims[vectors.index[word]] = -np.inf
    k = min(k, len(vectors) - 1)
    if k <= 0:
        return []
    top = np.argpartition(-sims, k - 1)[:k]
    top = top[np.argsort(-sims[top], kind="stable")]
    return [(vectors.words[i], float(sims[i])) for i in top]
