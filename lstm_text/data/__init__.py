"""The data layer: a corpus's files and chunks (``corpus``), text and input lines (``text``), token files
(``tokens``) in their cache (``cache``) made by worker processes (``workers``), batch layouts (``batches``),
labelled files (``labelled``), the dataset registry (``datasets``) and word vectors (``vectors``). Standard
library only at import time."""

from .text import read_lines, read_text, split_text

__all__ = ["read_lines", "read_text", "split_text"]
