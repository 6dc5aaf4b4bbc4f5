"""Where a model runs and in what precision: ``auto`` resolved to the device this torch build has, an explicit
device checked to exist, a precision checked against it. Training and inference both ask here (inference never
imports ``training``); torch is imported inside the functions, so importing this module costs nothing.
"""

from __future__ import annotations

from .config import PRECISIONS
from .errors import LstmTextError

CUDA_INSTALL = "pip install torch --index-url https://download.pytorch.org/whl/cu124"
TORCH_INSTALL_PAGE = "https://pytorch.org/get-started/locally/"


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
        if torch.version.cuda is None:  # a CPU-only wheel (pip's default on many machines)
            raise LstmTextError(
                f"{{device}} cuda: this torch {torch.__version__} is a CPU-only build; install a CUDA build with "
                f"'{CUDA_INSTALL}' (choose the CUDA version at {TORCH_INSTALL_PAGE})",
                param="device",
            )
        raise LstmTextError(
            f"{{device}} cuda: torch was built for CUDA {torch.version.cuda} but sees no GPU; check the driver "
            "(nvidia-smi) and CUDA_VISIBLE_DEVICES",
            param="device",
        )
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise LstmTextError("{device} mps: Apple's MPS backend is not available here", param="device")
    return name


def resolve_precision(name: str, device: str) -> str:
    """``auto``: bf16 autocast on a CUDA GPU that has it, else fp16 with a gradient scaler; fp32 elsewhere."""
    if name not in PRECISIONS:
        raise LstmTextError(f"{{precision}} must be one of {', '.join(PRECISIONS)}", param="precision")
    if name in ("bf16", "fp16") and not device.startswith("cuda"):
        raise LstmTextError(
            f"{{precision}} {name} is for CUDA GPUs; on {device} training runs in fp32", param="precision"
        )
    if name != "auto":
        return name
    if device.startswith("cuda"):
        import torch

        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"
