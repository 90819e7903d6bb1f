import pytest

from core.errors import ConfigError
import torch

from core.model.prompts import PromptLearner, aspect_name, check_learned_template, identity_prompts


def test_aspect_names():
    assert [aspect_name(a) for a in ("dorsal_r", "dorsal_l", "palmar_r", "palmar_l", "dorsal", "")] == [
        "dorsal right", "dorsal left", "palmar right", "palmar left", "dorsal", ""]


def test_prompts_per_class_and_shared_aspect():
    assert identity_prompts(["0000123", "0000456"], ["dorsal_r", "palmar_l"]) == [
        "a photo of the dorsal right hand of person 0000123",
        "a photo of the palmar left hand of person 0000456",
    ]
    assert identity_prompts(["7"], "dorsal") == ["a photo of the dorsal hand of person 7"]


def test_empty_aspect_collapses_cleanly():
    assert identity_prompts(["7"], "") == ["a photo of the hand of person 7"]
    assert identity_prompts(["7"], [""], template="{aspect} hand of {identity}") == ["hand of 7"]


def test_bad_template_and_lengths_are_config_errors():
    with pytest.raises(ConfigError, match=r"model.prompt='person \{name\}' is not valid"):
        identity_prompts(["7"], "", template="person {name}")
    with pytest.raises(ConfigError, match="2 classes but 1 aspects"):
        identity_prompts(["7", "8"], ["dorsal"])


def test_learned_template_writes_out_its_tokens_and_refuses_bad_ones():
    assert check_learned_template("a photo of a {tokens} hand.", 4) == "a photo of a X X X X hand."
    for bad in ("a photo of a hand.", "{tokens} and {tokens}", "a {tokens} hand of {identity}"):
        with pytest.raises(ConfigError, match="prompts.template"):
            check_learned_template(bad, 2)


def test_prompt_learner_with_word_embeddings_equals_encode_text(model):
    clip, tokenizer = model.clip, model.tokenizer
    learner = PromptLearner(clip, tokenizer, num_classes=2, tokens=2, template="a photo of a {tokens} hand.")
    words = [tokenizer(["left dog"])[0, 1:3], tokenizer(["red cat"])[0, 1:3]]
    with torch.no_grad():
        learner.ctx.copy_(torch.stack([clip.token_embedding(w) for w in words]))
        learned = learner(torch.tensor([1, 0, 1]))
        plain = clip.encode_text(tokenizer(["a photo of a red cat hand.", "a photo of a left dog hand.",
                                            "a photo of a red cat hand."]))
    torch.testing.assert_close(learned, plain)
    assert [name for name, _ in learner.named_parameters()] == ["ctx"]


def test_prompt_learner_gradient_reaches_only_the_identity_tokens(model):
    learner = PromptLearner(model.clip, model.tokenizer, num_classes=3, tokens=4, template="a photo of a {tokens} hand.")
    learner(torch.tensor([2, 2])).sum().backward()
    grad = learner.ctx.grad
    assert grad[2].abs().sum() > 0 and grad[:2].abs().sum() == 0
    assert all(p.grad is None for p in model.clip.parameters())
