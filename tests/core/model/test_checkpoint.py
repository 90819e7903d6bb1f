import json

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from core.errors import ModelError
from core.model.checkpoint import (
    init_from, load_checkpoint_model, load_metadata, load_model_state, load_tensors, load_training_state, save_model,
    save_tensors,
)
from core.model.handid import is_text_encoder_key
from core.runs import CheckpointMeta

META = CheckpointMeta(backbone="HandID-Tiny", image_size=(64, 64), class_names=["a", "b", "c"])


def test_model_round_trip_without_text_encoder(model, make_model, tmp_path):
    model.eval()
    path = tmp_path / "best.safetensors"
    save_model(model, path, META)
    state = load_model_state(path)
    assert state and not any(is_text_encoder_key(k) for k in state)
    assert "text_classifier.text" in state and "neck.bn.running_var" in state
    assert load_metadata(path) == META

    fresh = make_model()
    fresh.load_state_dict(state)  # strict: only the frozen text encoder is missing
    fresh.eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        a, b = model(images), fresh(images)
    for key in ("feat", "feat_bn", "logits", "text_logits"):
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_missing_and_foreign_files_are_model_errors(tmp_path):
    with pytest.raises(ModelError, match="checkpoint not found: .*nope.safetensors"):
        load_model_state(tmp_path / "nope.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="junk.safetensors: not a readable safetensors"):
        load_metadata(junk)


def test_init_from_copies_encoder_and_fitting_heads_only(make_model, tmp_path):
    source = make_model(num_classes=3)
    path = tmp_path / "stage1.safetensors"
    save_model(source, path, META)
    target = make_model(num_classes=5)
    text_before = {k: v.clone() for k, v in target.state_dict().items() if is_text_encoder_key(k)}
    prompts_before = target.text_classifier.text.clone()
    classifier_before = target.neck.classifier.weight.detach().clone()

    loaded, skipped = init_from(target, load_model_state(path))

    assert "clip.visual.conv1.weight" in loaded and "neck.bn.weight" in loaded
    assert "neck.classifier.weight" in skipped and "text_classifier.text" in skipped
    torch.testing.assert_close(target.clip.visual.conv1.weight, source.clip.visual.conv1.weight)
    assert torch.equal(target.neck.classifier.weight, classifier_before)
    assert torch.equal(target.text_classifier.text, prompts_before)
    after = target.state_dict()
    assert all(torch.equal(after[k], v) for k, v in text_before.items())


def test_init_from_another_backbone_is_refused(make_model):
    with pytest.raises(ModelError, match="none of the checkpoint's image-encoder weights fit"):
        init_from(make_model(), {"clip.visual.other.weight": torch.zeros(2)})


def test_nested_structure_round_trip(tmp_path):
    obj = {"state": {0: {"step": torch.tensor(3.0)}, 1: {}}, "groups": [{"betas": (0.9, 0.99), "lr": 1e-3,
           "params": [0, 1], "name": None}], "__odd": torch.ones(2, dtype=torch.bfloat16), "empty": torch.zeros(0)}
    save_tensors(obj, tmp_path / "s.safetensors")
    back = load_tensors(tmp_path / "s.safetensors")
    assert back["groups"] == [{"betas": (0.9, 0.99), "lr": 1e-3, "params": [0, 1], "name": None}]
    assert list(back["state"]) == [0, 1] and back["state"][1] == {}
    assert torch.equal(back["state"][0]["step"], torch.tensor(3.0))
    assert back["__odd"].dtype == torch.bfloat16 and back["empty"].shape == (0,)


def test_adam_state_resume_matches_uninterrupted_run(tmp_path):
    torch.manual_seed(0)
    data = [(torch.randn(8, 4), torch.randint(0, 3, (8,))) for _ in range(4)]

    def make():
        torch.manual_seed(1)
        net = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3))
        return net, torch.optim.Adam(net.parameters(), lr=1e-2, betas=(0.8, 0.95))

    def step(net, opt, batch):
        opt.zero_grad()
        F.cross_entropy(net(batch[0]), batch[1]).backward()
        opt.step()

    net, opt = make()
    for batch in data:
        step(net, opt, batch)

    first, first_opt = make()
    for batch in data[:2]:
        step(first, first_opt, batch)
    save_model(first, tmp_path / "last.safetensors", META, state={"epoch": 2, "optimizer": first_opt.state_dict()})

    resumed, resumed_opt = make()
    resumed.load_state_dict(load_model_state(tmp_path / "last.safetensors"))  # the state is not part of the weights
    state = load_training_state(tmp_path / "last.safetensors")
    assert state["epoch"] == 2
    resumed_opt.load_state_dict(state["optimizer"])
    assert resumed_opt.param_groups[0]["betas"] == (0.8, 0.95)
    for batch in data[2:]:
        step(resumed, resumed_opt, batch)
    for a, b in zip(net.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_odd_metadata_is_one_line_error_naming_the_file(tmp_path):
    path = tmp_path / "odd.safetensors"
    for meta, message in (({"feature": "__class__"}, "feature '__class__' is not one of pre_bn, post_bn"),
                          ({"image_size": ["a", "b"]}, r"image_size must be \[height, width\] in pixels"),
                          ({"class_names": "abc"}, "class_names must be a list of text")):
        save_file({"w": torch.zeros(1)}, str(path), metadata={"handid": json.dumps({**META.to_json(), **meta})})
        with pytest.raises(ModelError, match=f"odd.safetensors: .*{message}"):
            load_checkpoint_model(path)


def test_a_checkpoint_rebuilds_its_model_with_its_preprocessing(model, tmp_path):
    path = tmp_path / "best.safetensors"
    meta = CheckpointMeta(backbone="HandID-Tiny", image_size=(64, 64), class_names=["a", "b", "c"],
                          mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), interpolation="bilinear")
    save_model(model, path, meta)
    rebuilt, read = load_checkpoint_model(path)
    assert read == meta
    assert (rebuilt.preprocess.mean, rebuilt.preprocess.std, rebuilt.preprocess.interpolation) == (
        (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "bilinear")
