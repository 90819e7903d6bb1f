"""Host syncs of a callable, counted on any device, so tests can assert a training step has none.

On CUDA every host read of device data (`.item()`, `bool(t)`, boolean-mask indexing, `nonzero`,
`.cpu()`) and every blocking upload (`torch.tensor(..., device=)`) makes the CPU wait for the GPU.
`count_host_syncs` finds them on the CPU too: the profiler records the aten ops that read a value
or a data-dependent shape, and a TorchFunctionMode sees the Python-level transfers the profiler
cannot tell from a dtype cast. `cuda_syncs_raise` is the CUDA check itself: torch's sync debug
mode turned to errors.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext

import torch
from torch.overrides import TorchFunctionMode
from torch.profiler import ProfilerActivity, profile

# aten ops that read device data on the host: a value (`_local_scalar_dense`: item, bool, float,
# int) or a data-dependent output shape (nonzero: boolean indexing, torch.where(mask)).
HOST_READ_OPS = frozenset({
    "aten::_local_scalar_dense", "aten::nonzero", "aten::masked_select", "aten::equal",
    "aten::_unique2", "aten::unique_dim", "aten::unique_consecutive",
})
# Python-level transfers: reads of tensor data on the host, and tensors built from host data.
HOST_METHODS = {torch.Tensor.cpu: "Tensor.cpu", torch.Tensor.tolist: "Tensor.tolist",
                torch.Tensor.numpy: "Tensor.numpy", torch.tensor: "torch.tensor"}
MOVES = {torch.Tensor.to: "Tensor.to", torch.Tensor.cuda: "Tensor.cuda"}


class _HostTransfers(TorchFunctionMode):
    """Counts HOST_METHODS calls, and `.to()` / `.cuda()` calls that change a tensor's device."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[str] = Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        if func in HOST_METHODS:
            self.counts[HOST_METHODS[func]] += 1
        elif func in MOVES and isinstance(result, torch.Tensor) and result.device != args[0].device:
            self.counts[MOVES[func]] += 1
        return result


def count_host_syncs(fn: Callable[[], object], python_level: bool = True) -> Counter[str]:
    """Run `fn()` once; the host syncs it made, by op or method name (empty when none).

    `python_level=False` counts the profiler's ops only, for torch.compile'd code: a
    TorchFunctionMode around it changes Dynamo's guards and makes it trace again (and inside a
    compiled graph, Python-level calls have become ops anyway)."""
    transfers = _HostTransfers()
    with profile(activities=[ProfilerActivity.CPU]) as prof, transfers if python_level else nullcontext():
        fn()
    reads = Counter(event.name for event in prof.events() if event.name in HOST_READ_OPS)
    return reads + transfers.counts


@contextmanager
def cuda_syncs_raise() -> Iterator[None]:
    """Inside: any CUDA call that synchronises the host with the device raises a RuntimeError."""
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode(previous)
