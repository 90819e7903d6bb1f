import math

import torch

from core.model.heads import BNNeck, PromptClassifier


def test_bnneck_bias_frozen_at_zero_and_classifier_bias_free():
    neck = BNNeck(4, 3)
    assert not neck.bn.bias.requires_grad and torch.equal(neck.bn.bias, torch.zeros(4))
    assert neck.classifier.bias is None and neck.classifier.weight.shape == (3, 4)
    feat = torch.tensor([[1.0, 2.0, 3.0, 4.0], [3.0, 2.0, 1.0, 0.0]])
    feat_bn, logits = neck(feat)
    # Training mode: batch statistics, weight 1, bias 0 -> (x - mean) / sqrt(var + eps).
    expected = torch.tensor([[-1.0, 0.0, 1.0, 1.0], [1.0, 0.0, -1.0, -1.0]])
    torch.testing.assert_close(feat_bn, expected, atol=1e-3, rtol=0)
    torch.testing.assert_close(logits, feat_bn @ neck.classifier.weight.T)


def test_prompt_classifier_is_scaled_cosine():
    text = torch.tensor([[2.0, 0.0], [0.0, 3.0], [1.0, 1.0]])
    head = PromptClassifier(text, logit_scale=10.0)
    logits = head(torch.tensor([[5.0, 0.0], [1.0, 1.0]]))
    r = 1 / math.sqrt(2)
    torch.testing.assert_close(logits, 10 * torch.tensor([[1.0, 0.0, r], [r, r, 1.0]]))
    assert not list(head.parameters())
    assert set(head.state_dict()) == {"text", "scale"}


def test_prompt_classifier_scores_in_float32_under_bf16_autocast():
    torch.manual_seed(0)
    text, image = torch.randn(30, 16), torch.randn(8, 16)
    head = PromptClassifier(text, logit_scale=100.0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = head(image.to(torch.bfloat16))
    assert logits.dtype == torch.float32
    expected = 100 * torch.nn.functional.normalize(image.to(torch.bfloat16).float(), dim=1) @ \
        torch.nn.functional.normalize(text, dim=1).T
    torch.testing.assert_close(logits, expected)
