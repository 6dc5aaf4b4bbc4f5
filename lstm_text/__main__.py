"""``python -m lstm_text``: the command line (``torchrun ... -m lstm_text train`` runs it this way)."""

from .cli import main

raise SystemExit(main())
