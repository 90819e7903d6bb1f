"""Each concept in one place: a loss, a dataset layout and a page are one new module each, found by
their registries; nothing outside a loss's or a layout's own module names it."""

from __future__ import annotations

import ast
import json
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

import core.data.layouts as layouts_package
import core.losses as losses_package
from core.data import __main__ as data_cli
from core.data import layouts
from core.losses import registry
from core.runs import RunDir
from core.train import main as train_main

REPO = Path(__file__).resolve().parents[2]
LOSS_MODULE = '''
    """A throwaway loss: the mean feature norm to a power."""
    from dataclasses import dataclass

    from core.config import knob
    from core.losses.base import Loss
    from core.losses.registry import register


    @dataclass
    class FeatureNormConfig:
        weight: float = knob(0.0, check="non_negative")
        power: float = knob(2.0, check="positive", label="norm power")


    @register("feature_norm", "Feature norm", FeatureNormConfig)
    class FeatureNorm(Loss):
        reads = "feat"

        def forward(self, outputs, labels):
            return outputs[self.reads].norm(dim=1).pow(self.cfg.power).mean()
'''
LAYOUT_MODULE = '''
    """A throwaway layout: ROOT/<identity>_<n>.png, every image in one folder."""
    from pathlib import Path

    import pandas as pd

    from core.data.layouts import Layout, register
    from core.data.protocols import default_protocol
    from core.data.table import finish_table, is_image


    def read_flat(root: Path) -> pd.DataFrame:
        rows = [{"path": str(p.resolve()), "identity": p.stem.split("_")[0], "subject": p.stem.split("_")[0],
                 "aspect": ""} for p in sorted(root.iterdir()) if is_image(p)]
        return finish_table(pd.DataFrame(rows), root)


    register(Layout(name="flat", label="Flat folder", read=read_flat, protocols={"default": default_protocol}))
'''


def plug_in(package, tmp_path: Path, name: str, source: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A module file `name.py` found by `package`'s registry scan (as a file dropped into the package is)."""
    folder = tmp_path / f"plugins-{package.__name__}"
    folder.mkdir()
    (folder / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.setattr(package, "__path__", [*package.__path__, str(folder)])
    monkeypatch.delitem(sys.modules, f"{package.__name__}.{name}", raising=False)


@pytest.fixture
def loss_plugged_in(tmp_path, monkeypatch):
    plug_in(losses_package, tmp_path, "feature_norm", LOSS_MODULE, monkeypatch)
    monkeypatch.setattr(registry, "_SCANNED", False)
    yield "feature_norm"
    registry._ENTRIES.pop("feature_norm", None)
    sys.modules.pop("core.losses.feature_norm", None)


@pytest.fixture
def layout_plugged_in(tmp_path, monkeypatch):
    plug_in(layouts_package, tmp_path, "flat", LAYOUT_MODULE, monkeypatch)
    monkeypatch.setattr(layouts, "_SCANNED", False)
    yield "flat"
    layouts._LAYOUTS.pop("flat", None)
    sys.modules.pop("core.data.layouts.flat", None)


def _new_run_page():
    from dashboard.app import main

    main("new_run")


def _run_page():
    from dashboard.app import main

    main("run")


def test_a_new_loss_is_one_new_file(loss_plugged_in, tiny_overrides, tmp_path, monkeypatch):
    run_dir = tmp_path / "checkpoints" / "with-norm"
    sets = {**tiny_overrides, "loss.feature_norm.weight": 0.5, "loss.feature_norm.power": 1.0}
    args = [a for k, v in sets.items() for a in ("--set", f"{k}={v}")]
    assert train_main(["--config", str(REPO / "configs" / "demo.yaml"), *args, "--run-dir", str(run_dir)]) == 0
    trains = [m for m in RunDir(run_dir).read_metrics() if m["kind"] == "train"]
    assert trains and all(m["feature_norm"] > 0 and m["feature_norm_weighted"] == 0.5 * m["feature_norm"]
                          for m in trains)

    monkeypatch.setenv("HANDID_CHECKPOINTS", str(run_dir.parent))
    monkeypatch.setattr("jobs.api.ensure_scheduler", lambda root=None: True)
    form = AppTest.from_function(_new_run_page, default_timeout=60).run()
    assert not form.exception
    assert form.checkbox(key="new_run:demo.yaml:loss.feature_norm.weight:on").label == "Feature norm"
    assert any(n.label == "norm power" for n in form.number_input)
    page = AppTest.from_function(_run_page, default_timeout=60)
    page.query_params["run"] = "with-norm"
    page.run()
    assert not page.exception
    losses = next(json.loads(c.proto.spec) for c in page.get("plotly_chart")
                  if json.loads(c.proto.spec)["layout"]["title"]["text"] == "Losses")
    assert "Feature norm × 0.5" in {trace["name"] for trace in losses["data"]}  # its label, with its weight


def test_a_new_layout_is_one_new_file(layout_plugged_in, tmp_path, capsys):
    root = tmp_path / "flat-data"
    root.mkdir()
    for person in "abcd":
        for n in range(3):
            Image.new("RGB", (8, 8), (40 * n, 60, 90)).save(root / f"{person}_{n}.png")
    assert "flat" in layouts.dataset_names()
    assert data_cli.main(["describe", "--dataset", "flat", "--root", str(root), "--json"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts["train"] == {"images": 4, "identities": 2} and counts["query"]["identities"] == 2


def _string_constants(path: Path) -> list[str]:
    """The string literals of a module, its docstrings left out (documentation may name anything)."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def _code_outside(*own: str) -> list[Path]:
    return [p for folder in ("core", "jobs", "dashboard") for p in (REPO / folder).rglob("*.py")
            if not any(str(p).startswith(str(REPO / o)) for o in own)]


def test_no_module_outside_the_loss_package_names_a_loss():
    names = set(registry.entries())
    offenders = {str(p.relative_to(REPO)): sorted(names & set(_string_constants(p)))
                 for p in _code_outside("core/losses")}
    assert {p: found for p, found in offenders.items() if found} == {}


def test_no_module_outside_a_layout_names_its_files_or_folders():
    fragments = ("HandInfo", "Original Images", "Original_Images", "1-501", "502-712", "manifest.csv")
    offenders = {}
    for path in _code_outside("core/data/layouts"):
        found = [s for s in _string_constants(path) if any(f in s for f in fragments) or s == "Hands"]
        if found:
            offenders[str(path.relative_to(REPO))] = found
    assert offenders == {}
