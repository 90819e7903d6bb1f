import json

import huggingface_hub.constants
import open_clip
import pytest
import torch
from open_clip.transformer import QuickGELU
from safetensors.torch import save_file

from core.errors import ModelError
from core.model.backbone import ALLOW_DOWNLOAD_ENV, create_clip, resize_pool_embedding


def _has_quick_gelu(model: torch.nn.Module) -> bool:
    return any(isinstance(m, QuickGELU) for m in model.modules())


def _save_state(model: torch.nn.Module, path) -> str:
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return str(path)


@pytest.fixture(scope="module")
def tiny_resnet_name(tmp_path_factory) -> str:
    """A registered ModifiedResNet CLIP small enough for CPU tests (grid 2x2 at 64 px)."""
    path = tmp_path_factory.mktemp("configs") / "Test-Tiny-RN.json"
    path.write_text(json.dumps({
        "embed_dim": 32,
        "vision_cfg": {"image_size": 64, "layers": [1, 1, 1, 1], "width": 8, "head_width": 16, "patch_size": None},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
    }))
    open_clip.add_model_config(path)
    return "Test-Tiny-RN"


def test_unknown_backbone_names_close_and_common_names():
    with pytest.raises(ModelError, match="unknown backbone 'ViT-B16'.*ViT-B-16") as err:
        create_clip("ViT-B16")
    assert "HandID-Tiny" in str(err.value) and "\n" not in str(err.value)


def test_unknown_tag_lists_valid_tags():
    with pytest.raises(ModelError, match="unknown pretrained tag 'laion' for RN50; valid tags: openai, yfcc15m, cc12m"):
        create_clip("RN50", "laion")


def test_missing_weight_file_is_named():
    with pytest.raises(ModelError, match="weights file not found: /nowhere/w.safetensors"):
        create_clip("HandID-Tiny", "/nowhere/w.safetensors")


def test_tag_not_in_cache_fails_offline_without_network(tmp_path, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv(ALLOW_DOWNLOAD_ENV, raising=False)
    with pytest.raises(ModelError, match="the openai weights of ViT-B-16 are not available offline.*model.pretrained="):
        create_clip("ViT-B-16", "openai")


def test_random_init_tiny_vit_at_non_square_size():
    model, tokenizer = create_clip("HandID-Tiny", "", (256, 128))
    assert model.visual.positional_embedding.shape == (16 * 8 + 1, 64)
    assert model.encode_image(torch.zeros(2, 3, 256, 128)).shape == (2, 64)
    assert tokenizer(["a photo of a hand"]).shape == (1, 77)
    assert not _has_quick_gelu(model)


def test_vit_weights_from_224_load_into_256x128(tmp_path):
    source, _ = create_clip("HandID-Tiny", "", (224, 224))
    path = _save_state(source, tmp_path / "tiny.safetensors")
    model, _ = create_clip("HandID-Tiny", path, (256, 128))
    pos = model.visual.positional_embedding
    assert pos.shape == (16 * 8 + 1, 64)
    torch.testing.assert_close(pos[0], source.visual.positional_embedding[0])  # class token kept
    torch.testing.assert_close(model.visual.conv1.weight, source.visual.conv1.weight)
    torch.testing.assert_close(model.token_embedding.weight, source.token_embedding.weight)
    model.encode_image(torch.zeros(1, 3, 256, 128)).sum().backward()


def test_openai_file_name_forces_quick_gelu(tmp_path):
    source, _ = create_clip("HandID-Tiny")
    openai = _save_state(source, tmp_path / "tiny-openai.safetensors")
    other = _save_state(source, tmp_path / "tiny-laion.safetensors")
    assert _has_quick_gelu(create_clip("HandID-Tiny", openai, (64, 64))[0])
    assert not _has_quick_gelu(create_clip("HandID-Tiny", other, (64, 64))[0])


def test_weights_of_another_backbone_are_refused(tmp_path, tiny_resnet_name):
    source, _ = create_clip(tiny_resnet_name, "", (64, 64))
    path = _save_state(source, tmp_path / "rn.safetensors")
    with pytest.raises(ModelError, match="rn.safetensors: weights do not fit backbone HandID-Tiny"):
        create_clip("HandID-Tiny", path, (64, 64))


def test_resnet_weights_resized_for_another_size(tmp_path, tiny_resnet_name):
    source, _ = create_clip(tiny_resnet_name, "", (64, 64))  # 2x2 attention-pool grid
    path = _save_state(source, tmp_path / "rn.safetensors")
    model, _ = create_clip(tiny_resnet_name, path, (128, 64))  # 4x2 grid
    expected = resize_pool_embedding(source.visual.attnpool.positional_embedding.detach(), (4, 2))
    torch.testing.assert_close(model.visual.attnpool.positional_embedding.detach(), expected)
    assert model.visual.image_size == (128, 64)
    assert model.encode_image(torch.zeros(2, 3, 128, 64)).shape == (2, 32)


def test_pool_embedding_resize_keeps_token_and_values():
    embedding = torch.randn(1 + 3 * 3, 5)
    torch.testing.assert_close(resize_pool_embedding(embedding, (3, 3)), embedding)
    resized = resize_pool_embedding(embedding, (4, 2))
    assert resized.shape == (1 + 4 * 2, 5)
    torch.testing.assert_close(resized[0], embedding[0])
    constant = torch.cat([torch.zeros(1, 2), torch.full((9, 2), 0.7)])
    torch.testing.assert_close(resize_pool_embedding(constant, (6, 4))[1:], torch.full((24, 2), 0.7))
    with pytest.raises(ModelError, match="not a square grid"):
        resize_pool_embedding(torch.randn(1 + 6, 5), (2, 2))


def test_resized_pool_loads_square_state_through_hook(tiny_resnet_name):
    target, _ = create_clip(tiny_resnet_name, "", (64, 32))  # 2x1 grid
    source, _ = create_clip(tiny_resnet_name, "", (64, 64))  # 2x2 grid
    target.visual.load_state_dict(source.visual.state_dict())
    expected = resize_pool_embedding(source.visual.attnpool.positional_embedding.detach(), (2, 1))
    torch.testing.assert_close(target.visual.attnpool.positional_embedding.detach(), expected)


@pytest.mark.parametrize("size", [(256, 256), (256, 128)])
def test_rn50_random_init_forward_backward(size):
    model, _ = create_clip("RN50", "", size)
    pool = model.visual.attnpool.positional_embedding
    assert pool.shape == ((size[0] // 32) * (size[1] // 32) + 1, 2048)
    features = model.encode_image(torch.randn(2, 3, *size))
    assert features.shape == (2, 1024)
    features.square().sum().backward()
    assert pool.grad is not None and pool.grad.abs().sum() > 0
    assert not _has_quick_gelu(model)


def test_architecture_without_weights_needs_no_weight_files():
    """Evaluating an `openai` checkpoint builds the QuickGELU architecture with no weights cached."""
    clip, _ = create_clip("HandID-Tiny", "", (64, 64), load_weights=False)
    assert not any(isinstance(m, QuickGELU) for m in clip.modules())
    with pytest.raises(ModelError, match="not available offline"):
        create_clip("RN50", "openai", (224, 224))
    rn50, _ = create_clip("RN50", "openai", (64, 64), load_weights=False)
    assert any(isinstance(m, QuickGELU) for m in rn50.modules())
