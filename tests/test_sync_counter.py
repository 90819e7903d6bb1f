"""The host-sync counter sees every kind of sync it names, and nothing in sync-free code."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from tests.sync_counter import count_host_syncs, cuda_syncs_raise

X = torch.randn(8, 4)


@pytest.mark.parametrize("fn, name", [
    (lambda: X.sum().item(), "aten::_local_scalar_dense"),
    (lambda: bool(X.sum() > 0), "aten::_local_scalar_dense"),
    (lambda: float(X[0, 0]), "aten::_local_scalar_dense"),
    (lambda: X[X[:, 0] > 0], "aten::nonzero"),
    (lambda: torch.where(X > 0), "aten::nonzero"),
    (lambda: X.masked_select(X > 0), "aten::masked_select"),
    (lambda: torch.unique(X), "aten::_unique2"),
    (lambda: X.cpu(), "Tensor.cpu"),
    (lambda: X.tolist(), "Tensor.tolist"),
    (lambda: X.numpy(), "Tensor.numpy"),
    (lambda: torch.tensor([0.5, 0.25]), "torch.tensor"),
])
def test_each_kind_of_sync_is_counted(fn, name):
    assert count_host_syncs(fn)[name] >= 1


def test_sync_free_code_counts_nothing_and_backward_is_seen():
    w = torch.randn(4, 3, requires_grad=True)

    def step() -> None:
        logits = torch.where(X > 0, X, 0.0) @ w
        torch.nn.functional.cross_entropy(logits, torch.zeros(8, dtype=torch.int64)).backward()

    assert count_host_syncs(step) == Counter()
    assert count_host_syncs(lambda: X.double().to(torch.float16)) == Counter()  # dtype casts are no transfer

    class ReadsInBackward(torch.autograd.Function):
        forward = staticmethod(lambda ctx, x: x * 2)
        backward = staticmethod(lambda ctx, grad: grad * float(grad.sum()))

    assert count_host_syncs(lambda: ReadsInBackward.apply(w).sum().backward())["aten::_local_scalar_dense"] == 1


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_sync_debug_mode_raises_on_a_sync_and_is_restored():
    x = torch.randn(8, device="cuda")
    with cuda_syncs_raise():
        (x * 2).sum()
        with pytest.raises(RuntimeError):
            x.sum().item()
    assert torch.cuda.get_sync_debug_mode() == 0
