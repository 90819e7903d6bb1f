import open_clip
import torch
import torch.nn.functional as F

from core.model.handid import HandIDModel, is_text_encoder_key


def _text_state(model: HandIDModel) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items() if is_text_encoder_key(k)}


def test_forward_outputs_and_feature_dim(model, make_model):
    out = model(torch.randn(4, 3, 64, 64))
    assert model.feature_dim == 64
    assert out["feat"].shape == out["feat_bn"].shape == (4, 64)
    assert out["logits"].shape == out["text_logits"].shape == (4, 3)
    assert make_model(prompts=False)(torch.randn(2, 3, 64, 64))["text_logits"] is None


def test_text_logits_use_the_prompts_encoded_at_construction(model):
    clip = model.clip
    tokens = open_clip.get_tokenizer("HandID-Tiny")(["a photo of the dorsal right hand of person 0000002"])
    with torch.no_grad():
        text = F.normalize(clip.encode_text(tokens), dim=-1)
    torch.testing.assert_close(model.text_classifier.text[2], text[0])
    torch.testing.assert_close(model.text_classifier.scale, clip.logit_scale.exp().detach())


def test_text_encoder_frozen_through_training(model):
    before = _text_state(model)
    visual_before = model.clip.visual.conv1.weight.detach().clone()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(3):
        out = model(torch.randn(4, 3, 64, 64))
        loss = F.cross_entropy(out["logits"], torch.tensor([0, 1, 2, 0])) + out["text_logits"].sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for name, param in model.clip.named_parameters():
        if not name.startswith("visual."):
            assert not param.requires_grad and param.grad is None, name
    after = _text_state(model)
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)
    assert not torch.equal(model.clip.visual.conv1.weight, visual_before)
    assert model.clip.visual.training and model.neck.training
    assert not any(m.training for n, m in model.clip.named_children() if n != "visual")
    assert not model.clip.transformer.resblocks[0].training


def test_trainable_groups_cover_visual_and_neck(model):
    groups = model.trainable_groups()
    assert {id(p) for p in groups["backbone"]} == {id(p) for p in model.clip.visual.parameters()}
    assert {id(p) for p in groups["heads"]} == {id(model.neck.bn.weight), id(model.neck.classifier.weight)}
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert trainable == {id(p) for g in groups.values() for p in g}


def test_embed_is_normalised_pre_or_post_bn(model):
    model.eval()
    images = torch.randn(3, 3, 64, 64)
    with torch.inference_mode():
        out = model(images)
        pre, post = model.embed(images, "pre_bn"), model.embed(images, "post_bn")
    torch.testing.assert_close(pre, F.normalize(out["feat"], dim=-1))
    torch.testing.assert_close(post, F.normalize(out["feat_bn"], dim=-1))
    torch.testing.assert_close(post.norm(dim=1), torch.ones(3))
