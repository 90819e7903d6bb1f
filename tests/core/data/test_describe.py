"""`python -m core.data describe`: the protocol counts as JSON or a table; bad input is one line."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.data import describe
from core.errors import DataError

REPO = Path(__file__).resolve().parents[3]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    describe.add_arguments(parser)
    return parser.parse_args(argv)


def test_json_is_exactly_the_describe_dict(elevenk_root: Path, capsys: pytest.CaptureFixture) -> None:
    # 5 identities with 3 images per subset: 3 train (1 image each to val) / 2 test;
    # gallery = 2 test identities x 4 subsets; queries = 2 x (3 - 1).
    code = describe.run(parse(["--dataset", "11k", "--root", str(elevenk_root), "--protocol", "palmar_l",
                               "--run", "2", "--seed", "5", "--json"]))
    assert code == 0
    assert json.loads(capsys.readouterr().out) == {
        "train": {"images": 6, "identities": 3}, "val": {"images": 3, "identities": 3},
        "query": {"images": 4, "identities": 2}, "gallery": {"images": 8, "identities": 8}}


def test_table_output_defaults_to_first_protocol(hd_root: Path, capsys: pytest.CaptureFixture) -> None:
    assert describe.run(parse(["--dataset", "synthetic", "--root", str(hd_root)])) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "protocol hd" in lines[0]
    # 1-501: 5 ids x 2 images -> 3 train / 2 test; 502-712: 2 ids x 3 images, all in the gallery.
    assert [line.split() for line in lines[2:]] == [
        ["train", "3", "3"], ["val", "3", "3"], ["query", "2", "2"], ["gallery", "8", "4"]]


def test_run_out_of_range_is_a_data_error(hd_root: Path) -> None:
    with pytest.raises(DataError, match="run 3 out of range"):
        describe.run(parse(["--dataset", "hd", "--root", str(hd_root), "--run", "3", "--runs", "3"]))


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core.data", "describe", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=60)


def test_cli_bad_inputs_fail_with_one_line_naming_the_file(elevenk_root: Path, tmp_path: Path) -> None:
    (elevenk_root / "Hands" / "Hand_0000007.jpg").unlink()
    missing_image = cli("--dataset", "11k", "--root", str(elevenk_root), "--protocol", "dorsal_r", "--json")
    missing_root = cli("--dataset", "folder", "--root", str(tmp_path / "absent"), "--protocol", "default")
    for result, name in ((missing_image, "Hand_0000007.jpg"), (missing_root, "absent")):
        assert result.returncode != 0 and result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1 and name in result.stderr


def test_cli_unknown_protocol_lists_valid_names(hd_root: Path) -> None:
    result = cli("--dataset", "hd", "--root", str(hd_root), "--protocol", "dorsal_r")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [f"error: unknown protocol 'dorsal_r' for {hd_root / 'Original Images'}; valid: hd, default"]
