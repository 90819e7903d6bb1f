"""Host tensors to the device in one copy the host does not wait for (epoch plans, index tensors)."""

from __future__ import annotations

import torch


def upload(tensor: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """`tensor` on `device`: through pinned memory and non-blocking on CUDA, a plain `.to` elsewhere.

    A blocking copy makes the host wait until the GPU has drained its queue; a non-blocking one
    from pinned memory is queued like a kernel (torch's pinned allocator keeps the buffer alive
    until it has run).
    """
    device = torch.device(device)
    if device.type == "cuda" and tensor.device.type == "cpu":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)
