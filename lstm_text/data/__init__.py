"""The data layer: text and input lines (``text``), batch layouts (``batches``), labelled files
(``labelled``) and the dataset registry (``datasets``). Standard library only at import time."""

from .text import read_lines, read_text, split_text

__all__ = ["read_lines", "read_text", "split_text"]
