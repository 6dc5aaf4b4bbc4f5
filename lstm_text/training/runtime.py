"""Where a process runs: its rank in a data-parallel group and its device. The one place that knows them,
so torch.distributed and CUDA support slot in here without touching the loop's logic."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import LstmTextError


@dataclass
class Runtime:
    rank: int = 0
    world_size: int = 1
    device: str = "cpu"

    @property
    def is_main(self) -> bool:
        """Only the main process logs and writes files."""
        return self.rank == 0

    @classmethod
    def from_env(cls, device: str = "auto") -> Runtime:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world > 1:
            raise LstmTextError("multi-process training is not supported yet; run without torchrun")
        return cls(rank=0, world_size=1, device=resolve_device(device))


def resolve_device(name: str) -> str:
    """``auto`` -> cuda, mps or cpu, whichever this torch build has; an explicit device must exist."""
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise LstmTextError("--device cuda: no CUDA GPU is available to this torch build")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise LstmTextError("--device mps: Apple's MPS backend is not available here")
    return name
