"""The bad-input table: every input the reliability issue (12) tried, each answered in one line.

Each row is one input a user can give. `clear` rows must raise a HandIDError whose message is
one line naming the value or the file; `handled` rows must do the right thing. A traceback (any
other exception) or a silently wrong result fails the row. The dashboard's rows (New run,
damaged folders on the pages, containment of images and user text) are in
tests/dashboard/test_bad_inputs.py.

Tally (one row = one parametrized case of this module and of tests/dashboard/test_bad_inputs.py,
the helper's own unit test left out): tried 101, clear 87 (a one-line error naming the value or
file; the dashboard: that message with Start disabled or no image shown), handled 14 (16-bit and
six other image modes decoded, `jobs list | head -1` quiet, damaged run folders listed and flagged
on Runs, Compare, Cross evaluation and Run, markup in aspects, identities and run names shown as
text), traceback 0, silent 0. tests/jobs/test_damaged.py adds the CLI's view of nine damaged folders.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from core.config import load_config
from core.data.cache import decode_image, load_images
from core.data.layouts import read_table
from core.data.protocols import build_protocol
from core.errors import HandIDError
from core.model.backbone import create_clip
from core.model.checkpoint import load_metadata, save_model
from core.runs import CheckpointMeta
from jobs import api
from jobs.queue import Queue

REPO = Path(__file__).resolve().parents[1]
DEMO = str(REPO / "configs" / "demo.yaml")
TINY = "HandID-Tiny"


def one_line_error(call: Callable[[], object], *named: str) -> str:
    """The HandIDError `call` raises: one line, naming every string in `named`."""
    with pytest.raises(HandIDError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message, message
    for name in named:
        assert name in message, (name, message)
    return message


# config values: refused at load, before any work

CONFIG_ROWS = [
    ("optim.lr", "nan"), ("optim.lr", "inf"), ("optim.lr", "1e30"), ("optim.lr", "-1"),
    ("optim.head_lr", "nan"), ("loss.triplet.margin", "nan"), ("loss.triplet.margin", "-inf"),
    ("data.image_size", "100000"), ("data.image_size", "[a, b]"), ("train.threads", "100000"),
    ("eval.runs", "100000"), ("train.epochs", "0"), ("train.batch_size", "-3"), ("loss.ce.weight", "nan"),
]


@pytest.mark.parametrize(("key", "value"), CONFIG_ROWS)
def test_config_value_is_refused_naming_the_key(key, value):
    one_line_error(lambda: load_config(DEMO, [f"{key}={value}"]), key)


@pytest.mark.parametrize(("key", "value"), [("optim.lr", "nan"), ("loss.triplet.margin", "nan"),
                                            ("data.image_size", "100000")])
def test_submit_refuses_it_and_queues_nothing(tmp_path, key, value):
    one_line_error(lambda: api.submit(DEMO, [f"{key}={value}"], root=tmp_path, start_scheduler=False), key)
    assert Queue(tmp_path).all() == [] and not [p for p in tmp_path.iterdir() if p.is_dir()]


def test_every_sweep_value_is_checked_before_anything_is_queued(tmp_path):
    one_line_error(lambda: api.sweep(DEMO, {"model.backbone": ["HandID-Tiny", "ViT-X-99"]}, root=tmp_path,
                                     start_scheduler=False), "ViT-X-99")
    one_line_error(lambda: api.sweep(DEMO, {"optim.lr": [1e-4, float("nan")]}, root=tmp_path,
                                     start_scheduler=False), "optim.lr")
    assert Queue(tmp_path).all() == []


# weights and checkpoints

@pytest.fixture
def text_file(tmp_path) -> Path:
    path = tmp_path / "notes.pt"
    path.write_text("these are not weights\n")
    return path


@pytest.fixture
def pickle_file(tmp_path) -> Path:
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "obj": pd.Timestamp(0)}, path)
    return path


def test_pretrained_pointing_at_a_non_weights_file(text_file):
    one_line_error(lambda: create_clip(TINY, str(text_file), (32, 32)), str(text_file))


def test_pretrained_pointing_at_a_pickle_never_shows_torchs_hint(pickle_file):
    message = one_line_error(lambda: create_clip(TINY, str(pickle_file), (32, 32)), str(pickle_file))
    assert "weights_only" not in message


def test_pretrained_that_is_a_missing_file(tmp_path):
    one_line_error(lambda: create_clip(TINY, str(tmp_path / "gone.safetensors"), (32, 32)), "gone.safetensors")


def _checkpoint_with(tmp_path: Path, **meta) -> Path:
    path = tmp_path / "odd.safetensors"
    data = {"backbone": TINY, "image_size": [32, 32], "class_names": ["a", "b"], **meta}
    save_file({"w": torch.zeros(1)}, str(path), metadata={"handid": json.dumps(data)})
    return path


@pytest.mark.parametrize("meta", [{"feature": "__class__"}, {"image_size": ["a", "b"]}, {"image_size": [32]},
                                  {"image_size": [10**6, 10**6]}, {"mean": [0, 0]}, {"class_names": "ab"}])
def test_odd_checkpoint_metadata(tmp_path, meta):
    path = _checkpoint_with(tmp_path, **meta)
    one_line_error(lambda: load_metadata(path), str(path), next(iter(meta)))


def test_a_checkpoint_that_is_not_safetensors(tmp_path):
    path = tmp_path / "last.safetensors"
    path.write_bytes(pickle.dumps({"a": 1}))
    one_line_error(lambda: load_metadata(path), str(path))


def test_disk_full_while_saving_names_the_file_and_leaves_no_temporary(tiny_clip, tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("core.model.checkpoint.save_file", full)
    model, meta = tiny_clip((32, 32))
    path = tmp_path / "last.safetensors"
    one_line_error(lambda: save_model(model, path, meta), str(path), "No space left")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def tiny_clip():
    def make(size: tuple[int, int]):
        clip, tokenizer = create_clip(TINY, "", size)
        from core.model.handid import HandIDModel

        return HandIDModel(clip, tokenizer, 2, None), CheckpointMeta(TINY, size, ["a", "b"])
    return make


# data

def _png(path: Path, value=(200, 150, 120), size=(8, 8)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, value).save(path)
    return path


def _manifest(tmp_path: Path, rows: list[tuple[str, str]]) -> Path:
    for name, _ in rows:
        if not (tmp_path / name).exists():
            _png(tmp_path / name, (hash(name) % 255, 100, 100))
    csv = tmp_path / "manifest.csv"
    csv.write_text("path,identity\n" + "".join(f"{p},{i}\n" for p, i in rows))
    return csv


def test_duplicate_manifest_rows_are_refused(tmp_path):
    csv = _manifest(tmp_path, [("a1.png", "a"), ("a2.png", "a"), ("b1.png", "b"), ("a1.png", "a"), ("b2.png", "b")])
    one_line_error(lambda: read_table("csv", csv), str(csv), "a1.png", "twice")


def test_one_image_under_two_identities_is_refused(tmp_path):
    csv = _manifest(tmp_path, [("a1.png", "a"), ("a2.png", "a"), ("b1.png", "b"), ("a1.png", "b")])
    one_line_error(lambda: read_table("csv", csv), str(csv), "a1.png", "'a'", "'b'")


def test_the_same_file_by_two_spellings_is_a_duplicate(tmp_path):
    csv = _manifest(tmp_path, [("a1.png", "a"), ("a2.png", "a"), ("b1.png", "b"), ("./a1.png", "a")])
    one_line_error(lambda: read_table("csv", csv), "a1.png")


def test_one_image_per_identity_leaves_no_query_and_is_refused(tmp_path):
    for i in range(8):
        _png(tmp_path / "data" / f"id{i}" / "1.png", (30 * i, 100, 100))
    table = read_table("folder", tmp_path / "data")
    one_line_error(lambda: build_protocol(table, "default", runs=2), "no query")


@pytest.mark.parametrize(("dataset", "make"), [
    ("folder", lambda p: p / "nope"),
    ("csv", lambda p: _png(p / "x.png")),
    ("csv", lambda p: (p / "manifest.csv").write_text("file,person\nx.png,a\n") and p / "manifest.csv"),
    ("csv", lambda p: (p / "manifest.csv").write_text("path,identity\nmissing.png,a\n") and p / "manifest.csv"),
    ("11k", lambda p: p),
    ("hd", lambda p: p),
])
def test_unreadable_datasets_are_named(tmp_path, dataset, make):
    root = make(tmp_path)
    one_line_error(lambda: read_table(dataset, root), str(tmp_path))


def test_sixteen_bit_png_decodes_to_its_real_grey(tmp_path):
    path = tmp_path / "deep.png"
    Image.fromarray(np.full((4, 4), 32768, dtype=np.uint16)).save(path)
    assert Image.open(path).mode.startswith("I")
    assert decode_image(path, (4, 4)).mean() == pytest.approx(128, abs=1)


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "1", "CMYK"])
def test_other_png_modes_decode_as_rgb(tmp_path, mode):
    path = tmp_path / f"x.{'jpg' if mode == 'CMYK' else 'png'}"
    Image.new("RGB", (4, 4), (128, 128, 128)).convert(mode).save(path)
    out = decode_image(path, (4, 4))
    assert out.shape == (4, 4, 3) and out.dtype == np.uint8


def test_a_corrupt_image_is_named(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG not really")
    one_line_error(lambda: decode_image(path, (4, 4)), str(path))


def test_an_unwritable_cache_dir_is_named(tmp_path):
    image = _png(tmp_path / "x.png")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    one_line_error(lambda: load_images([str(image)], (4, 4), blocker / "cache", workers=1), "data.cache_dir",
                   str(blocker / "cache"))


def test_disk_full_while_writing_the_cache_is_named(tmp_path, monkeypatch):
    image = _png(tmp_path / "x.png")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("numpy.lib.format.open_memmap", full)
    one_line_error(lambda: load_images([str(image)], (4, 4), tmp_path / "cache", workers=1), "data.cache_dir",
                   "No space left")
    assert list((tmp_path / "cache").iterdir()) == []


# jobs: run ids, closed pipes

BAD_IDS = ["../other/20260101-000000-00000000", "..", "a/b", "/etc", ""]


@pytest.mark.parametrize("run_id", BAD_IDS)
@pytest.mark.parametrize("call", [
    lambda i, r: api.get_run(i, r), lambda i, r: api.cancel(i, r), lambda i, r: api.resume(i, r),
    lambda i, r: api.cancel_many([i], r), lambda i, r: api.evaluate(i, "11k", str(r), "dorsal_r", root=r),
    lambda i, r: api.submit(DEMO, after=i, root=r, start_scheduler=False),
], ids=["show", "cancel", "resume", "cancel_many", "evaluate", "submit_after"])
def test_run_ids_that_could_leave_the_root_are_refused(tmp_path, run_id, call):
    one_line_error(lambda: call(run_id, tmp_path), "not a run id")
    assert not (tmp_path.parent / "other").exists() and not (tmp_path.parent / "x").exists()


def _jobs(*args: str, root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HANDID_CHECKPOINTS": str(root)}
    return subprocess.run([sys.executable, "-m", "jobs", *args], capture_output=True, text=True, env=env,
                          timeout=120, cwd=REPO)


def test_jobs_logs_of_a_bad_id_is_one_line(tmp_path):
    done = _jobs("logs", "../other/ID", root=tmp_path)
    assert done.returncode == 2 and done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr


def test_jobs_list_into_a_closed_pipe_is_quiet(tmp_path):
    for i in range(300):  # more than a pipe buffer of rows, so the writer meets the closed pipe
        folder = tmp_path / f"20260101-000000-{i:08x}"
        folder.mkdir(parents=True)
        (folder / "status.json").write_text(json.dumps({"state": "succeeded", "name": "x" * 200}))
    env = {**os.environ, "PYTHONPATH": str(REPO), "HANDID_CHECKPOINTS": str(tmp_path)}
    done = subprocess.run(f"{sys.executable} -m jobs list | head -1", shell=True, capture_output=True, text=True,
                          env=env, timeout=120, cwd=REPO)
    assert done.stdout.split()[:3] == ["id", "name", "state"] and done.stderr == "", done.stderr


def test_a_loss_part_that_goes_nan_stops_the_run_naming_the_step_and_part():
    from core.training.trainer import Meter

    meter = Meter()
    for step, triplet in ((1, 0.5), (2, 0.4), (3, float("nan")), (4, float("inf"))):
        ce = torch.tensor(1.0)
        meter.add(ce + triplet, {"ce": ce, "triplet": torch.tensor(triplet)}, 4, step)
    one_line_error(meter.flush, "triplet", "step 3")


def test_a_mistyped_evaluation_root_is_refused_before_anything_is_written(tmp_path):
    from core.validation import check_config

    missing = tmp_path / "nonexistent"
    cfg = load_config(DEMO, {"eval.dataset": "synthetic", "eval.root": str(missing), "model.backbone": TINY})
    one_line_error(lambda: check_config(cfg), str(missing), "eval.root")
    run = tmp_path / "runs" / "20260101-000000-00000000"
    run.mkdir(parents=True)
    (run / "status.json").write_text('{"state": "succeeded"}')
    (run / "best.safetensors").write_bytes(b"")
    one_line_error(lambda: api.evaluate(run.name, "synthetic", str(missing), "dorsal_r", root=tmp_path / "runs",
                                        start_scheduler=False), str(missing))
    assert not missing.exists()


def test_disk_full_while_writing_a_record_names_the_file(tmp_path, monkeypatch):
    from core.runs import RunDir

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    run = RunDir.at(tmp_path).create()
    monkeypatch.setattr("pathlib.Path.write_text", full)
    with pytest.raises(OSError) as caught:
        run.update_status(state="running")
    assert str(run.status_path) in str(caught.value) and "No space left" in str(caught.value)
    assert not list(tmp_path.glob(".*.tmp"))
