"""lstm-text: train LSTM language models on your text, generate from a prompt, classify sentiment.

Heavy modules (torch) load on first use, so ``import lstm_text`` and ``lstm-text --help`` stay instant.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["load", "LstmTextError", "__version__"]

from .errors import LstmTextError


def load(path, device: str = "cpu", quantize: str = ""):
    """Load a model: a run directory, a ``.safetensors`` file, or a built-in name such as ``sentiment``.

    ``quantize="int8"`` runs generation, bpc evaluation and classification with int8 weights (CPU).
    """
    from .api import load as _load

    return _load(path, device, quantize)
