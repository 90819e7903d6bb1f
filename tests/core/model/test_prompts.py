import pytest

from core.errors import ConfigError
from core.model.prompts import aspect_name, identity_prompts


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
