"""Where a process runs: its rank in a data-parallel group, its device and its numeric precision (resolved
by ``device``). The one place in training that knows torch.distributed and autocast, so the loop's logic reads
the same on one CPU process and on N GPUs under torchrun.

Data parallel, the DistributedDataParallel way: every rank holds the same weights, reads its own rows of
the data and averages gradients with one all-reduce before clipping. The gradients are averaged in one
flat all-reduce after backward rather than by DDP's bucketed hooks: an LSTM's weight gradients all finish
at the very end of backward through time, so there is nothing to overlap, and the classifier trains rows
of an otherwise fixed embedding and unfreezes layers mid-run, which DDP's buckets (fixed at wrap time) do
not follow.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from datetime import timedelta

from ..device import resolve_device, resolve_precision
from ..errors import LstmTextError


@dataclass
class Runtime:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: str = "cpu"
    precision: str = "fp32"  # fp32 | bf16 (autocast) | fp16 (autocast with a gradient scaler)

    @property
    def is_main(self) -> bool:
        """Only the main process logs and writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def main_only(self, callback):
        """``callback`` on rank 0, a no-op elsewhere: one process reports for the group."""
        return callback if self.is_main and callback else (lambda event, info: None)

    def global_rows(self, batch_size: int, saved: dict | None) -> int:
        """A run's rows per step over all processes: on resume its saved global batch (so any number of processes
        that divides it continues the same run), else ``batch_size`` rows per process."""
        return saved.get("rows", saved["train"]["batch_size"]) if saved else batch_size * self.world_size

    @classmethod
    def from_env(cls, device: str = "auto", precision: str = "auto") -> Runtime:
        """This process's place, from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR...)."""
        import torch

        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
        dev = resolve_device(device)
        if dev == "cuda":
            dev = f"cuda:{local}"
            if local >= torch.cuda.device_count():
                raise LstmTextError(f"local rank {local} has no GPU: {torch.cuda.device_count()} visible")
        if dev.startswith("cuda"):
            torch.cuda.set_device(torch.device(dev))
        if world > 1:
            import torch.distributed as dist

            if not dist.is_initialized():
                backend = "nccl" if dev.startswith("cuda") else "gloo"
                try:
                    dist.init_process_group(backend, timeout=timedelta(minutes=30))
                except (RuntimeError, ValueError) as e:
                    raise LstmTextError(f"could not join the torchrun group ({backend}): {e}") from None
        return cls(rank, world, local, dev, resolve_precision(precision, dev))

    # -- precision ---------------------------------------------------------------------------------------
    @property
    def device_type(self) -> str:
        return self.device.split(":")[0]

    def autocast(self):
        """The forward pass's context: bf16/fp16 autocast (cuDNN's LSTM runs in it), or nothing for fp32."""
        import torch

        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(self.device_type, dtype=dtype)

    def grad_scaler(self):
        """fp16 needs its loss scaled so small gradients survive; bf16 has fp32's range and needs none."""
        import torch

        return torch.amp.GradScaler(self.device_type) if self.precision == "fp16" else None

    def batch_to(self, t):
        """A CPU batch tensor on this device: pinned and copied without blocking on CUDA."""
        if self.device_type == "cuda":
            return t.pin_memory().to(self.device, non_blocking=True)
        return t if self.device == "cpu" else t.to(self.device)

    # -- the group ---------------------------------------------------------------------------------------
    def average_grads(self, params, loss):
        """Average every parameter's gradient and the loss over the ranks (one flat all-reduce); the loss."""
        if not self.distributed:
            return loss
        import torch
        import torch.distributed as dist

        params = [p for p in params if p.requires_grad]
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1).float() for g in grads] + [loss.detach().float().reshape(1)])
        dist.all_reduce(flat)
        flat /= self.world_size
        i = 0
        for p, g in zip(params, grads):
            n = g.numel()
            p.grad = flat[i : i + n].view_as(g).to(g.dtype)
            i += n
        return flat[-1]

    def agree(self, values: list[float]) -> list[float]:
        """The element-wise maximum of ``values`` over the ranks (stop signals, rank 0's clock)."""
        if not self.distributed:
            return values
        import torch
        import torch.distributed as dist

        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return t.tolist()

    def broadcast_params(self, model) -> None:
        """Rank 0's weights everywhere (a safeguard: seeded initialisation already agrees)."""
        if self.distributed:
            import torch.distributed as dist

            for t in list(model.parameters()) + list(model.buffers()):
                dist.broadcast(t.data, 0)

    def gather_rows(self, t, dim: int):
        """``t`` from every rank, concatenated along ``dim`` in rank order (each rank's rows of a batch)."""
        if not self.distributed:
            return t
        import torch
        import torch.distributed as dist

        parts = [torch.empty_like(t) for _ in range(self.world_size)]
        dist.all_gather(parts, t.contiguous())
        return torch.cat(parts, dim)

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        """Leave the group once every rank is done (rank 0 writes the final model after the others finish)."""
        if self.distributed:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.barrier()
                dist.destroy_process_group()
