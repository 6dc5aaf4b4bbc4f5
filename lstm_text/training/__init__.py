"""Training: one loop for every task (``loop``), the process's rank and device (``runtime``), and the two
tasks, language model (``lm``) and classifier (``classifier``)."""

from .classifier import train_classifier
from .lm import train_lm

__all__ = ["train_classifier", "train_lm"]
