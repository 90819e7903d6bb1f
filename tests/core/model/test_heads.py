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
