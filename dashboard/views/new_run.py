"""New run page: every knob of a run, pre-filled from a preset in configs/, submitted through jobs.

The dataset root is checked on the spot (the protocol's split sizes, or the reader's one-line
error), weights are checked for offline availability, and the whole config (every sweep value
too) is validated with core.validation as the form changes: Start training and Start sweep stay
disabled while any error is on the page. Number fields take any value, so a wrong one is named
by its check rather than silently replaced. Synthetic data is generated only at a synthetic
preset's own root. One run, a sweep over a grid, or a Stage 1 -> Stage 2 chain; training always
happens in a background process, never here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import open_clip
import pandas as pd
import streamlit as st

from core.config import Size, flatten, key_specs, load_config, to_dict
from core.data.layouts import SYNTHETIC, protocol_names, read_table
from core.data.protocols import build_protocol
from core.errors import ConfigError, DataError, HandIDError, ModelError
from core.losses import registry as losses
from core.model import backbone as backbones
from core.runs import RunDir
from dashboard.common import (
    CONFIGS,
    checkpoints_root,
    file_version,
    labels_of,
    page_link,
    plain,
    presets,
    run_config,
    show_error,
    training_runs,
)
from dashboard.views import PageSpec
from dashboard.views.studies import study_from_grid
from jobs import api as jobs
from jobs.sweeps import parse_grid


PAGE = PageSpec("New run", "new_run", ":material/add_circle:", order=0)

DEFAULT_PRESET = "demo.yaml"
STAGE2_PRESET = "stage2_ce_triplet.yaml"
STARTED = "new_run_started"  # run ids of the last submission, shown until the next one
WEIGHTS = ("Random init (from scratch)", "open_clip tag", "Local file", "Continue from a finished run")
NOT_ADVANCED = ("data.synth_",)  # only meaningful for synthetic data, shown in the data section then
SHARED_WITH_STAGE2 = ("data.", "model.backbone", "model.pretrained")  # what Stage 2 takes from the form


@dataclass
class Form:
    """The preset's resolved values and what the widgets say now, by dotted key."""

    preset: str
    defaults: dict[str, Any]
    values: dict[str, Any] = field(default_factory=dict)
    specs: dict[str, Any] = field(default_factory=key_specs)  # every key's type and checks (registries included)
    problems: list[str] = field(default_factory=list)  # errors shown on the page: nothing starts while any

    def fail(self, problem: Exception | str) -> None:
        """Show a problem (once) and keep the Start buttons disabled."""
        text = str(problem)
        if text in self.problems:
            return
        self.problems.append(text)
        show_error(problem) if isinstance(problem, Exception) else st.error(plain(text))

    def widget_key(self, key: str) -> str:
        return f"new_run:{self.preset}:{key}"  # a new preset gets fresh widgets holding its values

    def knob(self, key: str, label: str, where: Any = st, default: Any = None, **kwargs: Any) -> Any:
        """The widget that fits the key's type, starting at the preset's value (or `default`)."""
        spec, value = self.specs[key], self.defaults[key] if default is None else default
        tp, wkey = spec.type, self.widget_key(key)
        if get_origin(tp) is Literal or spec.choices is not None:
            options = list(get_args(tp)) if spec.choices is None else spec.choices()
            chosen = where.selectbox(label, options, index=options.index(value), key=wkey, **kwargs)
        elif tp is bool:
            chosen = where.checkbox(label, value=bool(value), key=wkey, **kwargs)
        elif tp is int:
            chosen = int(where.number_input(label, value=int(value), step=1, key=wkey, **kwargs))
        elif tp is float:
            kwargs.setdefault("format", "%g")
            chosen = float(where.number_input(label, value=float(value), key=wkey, **kwargs))
        else:
            chosen = where.text_input(label, value=str(value), key=wkey, **kwargs)
        self.values[key] = chosen
        return chosen

    def set(self, key: str, value: Any) -> None:
        self.values[key] = value

    def overrides(self) -> dict[str, Any]:
        """The form's values that differ from the preset."""
        return {k: v for k, v in self.values.items() if v != self.defaults.get(k)}


@st.cache_data(max_entries=16, show_spinner="Reading the dataset…")
def dataset_table(dataset: str, root: str, version: tuple[int, int]) -> pd.DataFrame:
    """The reader's table (cached per root version; errors are not cached)."""
    return read_table(dataset, root)


@st.cache_data(max_entries=64, show_spinner=False)
def split_counts(dataset: str, root: str, protocol: str, version: tuple[int, int]) -> dict[str, dict[str, int]]:
    """Images and identities of train, val, query and gallery (first evaluation run)."""
    return build_protocol(dataset_table(dataset, root, version), protocol, runs=1).describe()


def weights_problem(backbone: str, pretrained: str) -> str | None:
    """Why these weights cannot be loaded offline (one line), or None when they can."""
    try:
        backbones.check_weights(backbone, pretrained)
    except ModelError as exc:
        return str(exc)
    return None


def data_section(form: Form) -> None:
    """Dataset, root and protocol, with the protocol's split sizes or the reader's error."""
    st.subheader("Data")
    left, middle, right = st.columns([1, 3, 1])
    dataset = form.knob("data.dataset", "Dataset", left)
    root = middle.text_input("Root folder (or manifest CSV)", value=default_root(form, dataset),
                             key=form.widget_key(f"data.root:{dataset}"))
    form.set("data.root", root)
    path = Path(root).expanduser()
    pending_synth = dataset == SYNTHETIC and not path.exists() and root in synthetic_roots(form)
    table, problem = None, None
    if not pending_synth:
        try:
            table = dataset_table(dataset, root, file_version(path))
        except Exception as exc:  # the reader's one-line DataError, or anything unexpected
            problem = exc
    kind = dataset
    if dataset == SYNTHETIC:
        a, b = st.columns(2)
        kind = form.knob("data.synth_layout", "Synthetic layout", a)
        form.knob("data.synth_identities", "Synthetic identities", b)
    names = protocol_names(table) if table is not None else protocol_names(kind)
    wanted = form.defaults["data.protocol"]
    protocol = right.selectbox("Protocol", names, index=names.index(wanted) if wanted in names else 0,
                               key=form.widget_key(f"data.protocol:{dataset}"))
    form.set("data.protocol", protocol)
    if pending_synth:
        st.info(f"{plain(root)} does not exist yet: synthetic hands in the {kind} layout are generated there when the run starts.")
    elif dataset == SYNTHETIC and not path.exists():
        form.fail(DataError(f"dataset root not found: {root} (synthetic hands are generated only at a synthetic "
                            f"preset's data.root: {', '.join(synthetic_roots(form))})"))
    elif problem is not None:
        form.fail(problem)
    else:
        try:
            counts = split_counts(dataset, root, protocol, file_version(path))
            st.dataframe(pd.DataFrame(counts).T.rename_axis("split"))
        except Exception as exc:
            form.fail(exc)


def synthetic_roots(form: Form) -> list[str]:
    """Where synthetic data may be generated: the data.root of the synthetic presets (this one included)."""
    roots = [form.defaults["data.root"]] if form.defaults["data.dataset"] == SYNTHETIC else []
    for name in presets():
        try:
            data = load_config(CONFIGS / name).data
        except HandIDError:
            continue
        if data.dataset == SYNTHETIC:
            roots.append(data.root)
    return list(dict.fromkeys(roots))


def default_root(form: Form, dataset: str) -> str:
    """The preset's root for its own dataset, a synthetic preset's root for synthetic, else empty (to be given)."""
    if dataset == form.defaults["data.dataset"]:
        return form.defaults["data.root"]
    return synthetic_roots(form)[0] if dataset == SYNTHETIC and synthetic_roots(form) else ""


def finished_runs() -> dict[str, str]:
    """Succeeded training runs: {folder path: label}."""
    done = [info for info in training_runs() if info.state == "succeeded"]
    names = labels_of(done)
    return {info.path: names[info.run_id] for info in done}


def model_section(form: Form) -> None:
    """Backbone and where its weights come from: nothing, a tag, a file, or a finished run."""
    st.subheader("Model")
    pretrained, init_from = form.defaults["model.pretrained"], form.defaults["model.init_from"]
    start = 3 if init_from else (0 if not pretrained else (2 if Path(pretrained).suffix else 1))
    mode = st.radio("Weights", WEIGHTS, index=start, horizontal=True, key=form.widget_key("weights"))
    form.set("model.pretrained", "")
    form.set("model.init_from", "")
    if mode == WEIGHTS[3]:
        runs = finished_runs()
        if not runs:
            st.warning("No finished run to continue from yet.")
            return
        chosen = st.selectbox("Continue from (its checkpoint selected on validation)", list(runs),
                              format_func=runs.get, key=form.widget_key("model.init_from"))
        config = run_config(RunDir.at(chosen))
        form.set("model.init_from", chosen)
        if config is not None:
            form.set("model.backbone", config.model.backbone)
            st.caption(plain(f"Backbone {config.model.backbone}, trained on {config.data.dataset}/{config.data.protocol}."))
        return
    names = sorted(set(open_clip.list_models()) | {form.defaults["model.backbone"]})
    left, right = st.columns(2)
    backbone = left.selectbox("Backbone", names, index=names.index(form.defaults["model.backbone"]),
                              key=form.widget_key("model.backbone"))
    form.set("model.backbone", backbone)
    if mode == WEIGHTS[1]:
        tags = open_clip.list_pretrained_tags_by_model(backbone)
        if not tags:
            right.warning(f"open_clip has no pretrained tags for {backbone}.")
            return
        tag = right.selectbox("Tag", tags, index=tags.index(pretrained) if pretrained in tags else 0,
                              key=form.widget_key(f"model.pretrained:{backbone}"))
        form.set("model.pretrained", tag)
    elif mode == WEIGHTS[2]:
        form.set("model.pretrained", right.text_input("Weights file", value=pretrained, key=form.widget_key("model.pretrained")))
    chosen = form.values["model.pretrained"]
    if mode == WEIGHTS[2] and not chosen:
        st.info("Give the path of an open_clip weights file (.safetensors, .bin, .pt, .pth).")
    elif mode == WEIGHTS[2] and not Path(chosen).expanduser().is_file():
        form.fail(f"weights file not found: {chosen}")
    elif chosen:
        problem = weights_problem(backbone, chosen)
        if problem:
            form.fail(problem)
        else:
            st.caption("Weights available offline.")


def losses_section(form: Form) -> None:
    """One column per registered loss: on/off, weight and its own parameters (labelled by their knobs)."""
    st.subheader("Losses")
    entries = losses.entries()
    for column, (name, entry) in zip(st.columns(len(entries)), entries.items()):
        weight_key = f"loss.{name}.weight"
        preset_weight = form.defaults[weight_key]
        on = column.checkbox(entry.label, value=preset_weight > 0, key=form.widget_key(f"{weight_key}:on"))
        weight = form.knob(weight_key, "weight", column, default=preset_weight or 1.0, disabled=not on)
        form.set(weight_key, weight if on else 0.0)
        for key in (k for k in form.specs if k.startswith(f"loss.{name}.") and k != weight_key):
            form.knob(key, form.specs[key].label or key.rsplit(".", 1)[1], column, disabled=not on)


def training_section(form: Form) -> None:
    """Sampler, optimizer, learning rates, schedule, epochs, batch and image size, evaluation."""
    st.subheader("Training")
    a, b, c, d = st.columns(4)
    kind = form.knob("sampler.kind", "Sampler", a)
    form.knob("sampler.p", "P (identities per batch)", b, disabled=kind != "pk")
    form.knob("sampler.k", "K (images per identity)", c, disabled=kind != "pk")
    form.knob("train.batch_size", "Batch size", d, disabled=kind == "pk")
    a, b, c, d = st.columns(4)
    form.knob("optim.name", "Optimizer", a)
    form.knob("optim.lr", "Backbone learning rate", b, format="%.2e", step=1e-6)
    form.knob("optim.head_lr", "Head learning rate", c, format="%.2e", step=1e-5)
    form.knob("optim.weight_decay", "Weight decay", d, format="%.2e", step=1e-5)
    a, b, c, d = st.columns(4)
    form.knob("optim.schedule", "Schedule", a)
    form.knob("optim.warmup_epochs", "Warm-up epochs", b)
    form.knob("train.epochs", "Epochs", c)
    form.knob("eval.every", "Evaluate every (epochs; 0 = start and end only)", d)
    a, b, c, d = st.columns(4)
    height, width = form.defaults["data.image_size"]
    h = a.number_input("Image height", value=int(height), step=16, key=form.widget_key("data.image_size:h"))
    w = b.number_input("Image width", value=int(width), step=16, key=form.widget_key("data.image_size:w"))
    form.set("data.image_size", [int(h), int(w)])
    form.knob("eval.runs", "Evaluation runs (query/gallery draws)", c)
    form.knob("train.seed", "Seed", d)


def advanced_section(form: Form) -> None:
    """Every other scalar key (augmentation, schedule details, device, evaluation options), preset values."""
    rest = [k for k in form.specs if k not in form.values and k != "name" and not k.startswith(NOT_ADVANCED)
            and form.specs[k].type is not Size]
    with st.expander("More settings"):
        for start in range(0, len(rest), 4):
            for column, key in zip(st.columns(4), rest[start:start + 4]):
                form.knob(key, key, column)


def chain_section(form: Form) -> str | None:
    """The Stage 2 preset when the run is queued as Stage 1 of a chain, else None."""
    if not st.checkbox("Queue as Stage 1 → Stage 2 chain", key=form.widget_key("chain")):
        return None
    names = presets()
    stage2 = st.selectbox("Stage 2 preset", names, index=names.index(STAGE2_PRESET) if STAGE2_PRESET in names else 0,
                          key=form.widget_key("chain:preset"))
    st.caption("Stage 2 starts from Stage 1's best checkpoint, with the same data, backbone and weights settings.")
    return stage2


def stage2_overrides(form: Form) -> dict[str, Any]:
    return {k: v for k, v in form.values.items() if k.startswith(SHARED_WITH_STAGE2)}


def checked(preset: Path, overrides: dict[str, Any]) -> None:
    """The config loaded and checked as a submission checks it (core.validation); HandIDError when not."""
    from core.validation import check_config

    check_config(load_config(preset, overrides))


def check_form(form: Form, stage2: str | None) -> None:
    """The whole config (and Stage 2's) checked now: its first problem goes on the page."""
    try:
        checked(CONFIGS / form.preset, form.overrides())
        if stage2 is not None:
            load_config(CONFIGS / stage2, stage2_overrides(form))
    except HandIDError as exc:
        form.fail(exc)


def sweep_grid(form: Form, grid_text: str) -> dict[str, list[Any]] | None:
    """The grid, every value checked against the form's config; None (the problem shown) when one fails."""
    try:
        grid = parse_grid([line.strip() for line in grid_text.splitlines() if line.strip()])
        if not grid:
            raise ConfigError("sweep: give one line KEY=V1,V2,... per swept key")
        for key, values in grid.items():
            for value in values:
                checked(CONFIGS / form.preset, {**form.overrides(), key: value})
    except HandIDError as exc:
        show_error(exc)
        return None
    return grid


def submit(form: Form, name: str, stage2: str | None) -> list[str]:
    """Queue one run, or a Stage 1 -> Stage 2 chain (jobs.api checks them again)."""
    config, overrides = CONFIGS / form.preset, form.overrides()
    if stage2 is None:
        return [jobs.submit(config, overrides, name=name, root=checkpoints_root())]
    stages = [(config, overrides), (CONFIGS / stage2, stage2_overrides(form))]
    return jobs.submit_chain(stages, name=name, root=checkpoints_root())


def started() -> None:
    """Links to the runs queued by the last submission."""
    ids = st.session_state.get(STARTED)
    if not ids:
        return
    st.success(f"Queued {len(ids)} run{'s' if len(ids) > 1 else ''}: {', '.join(ids)}")
    for run_id in ids:
        page_link("run", f"Open {run_id}", {"run": run_id}, icon=":material/monitoring:")


def actions(form: Form, stage2: str | None) -> None:
    """Name, Start training, and the sweep grid with Start sweep; both disabled while a problem is shown."""
    name = st.text_input("Run name (optional)", value=form.defaults["name"], key=form.widget_key("name"))
    grid_text = st.text_area("Sweep grid: one `key=v1,v2,...` per line (e.g. `optim.lr=1e-5,5e-6`)",
                             key=form.widget_key("grid"), height=100)
    if not form.problems:
        check_form(form, stage2)
    grid = sweep_grid(form, grid_text) if grid_text.strip() and not form.problems else None
    left, right = st.columns([1, 5])
    start = left.button("Start training", type="primary", key="new_run_start", disabled=bool(form.problems))
    sweep = right.button("Start sweep", key="new_run_sweep", disabled=grid is None)
    if form.problems:
        st.caption("Fix the errors shown above to start.")
    try:
        if start:
            st.session_state[STARTED] = submit(form, name, stage2)
        if sweep:
            st.session_state[STARTED] = jobs.sweep(CONFIGS / form.preset, grid, overrides=form.overrides(), name=name,
                                                   root=checkpoints_root())
    except Exception as exc:  # queue errors (a folder that cannot be written)
        show_error(exc)
    study_from_grid(CONFIGS / form.preset, form.overrides(), name, grid_text)  # the grid's values as a study's arms


def render() -> None:
    st.title("New run")
    names = presets()
    if not names:
        st.error(plain(f"no presets (*.yaml) in {CONFIGS}"))
        return
    preset = st.selectbox("Preset", names, index=names.index(DEFAULT_PRESET) if DEFAULT_PRESET in names else 0,
                          key="new_run_preset")
    try:
        form = Form(preset, flatten(to_dict(load_config(CONFIGS / preset))))
    except Exception as exc:
        show_error(exc)
        return
    data_section(form)
    model_section(form)
    losses_section(form)
    training_section(form)
    advanced_section(form)
    stage2 = chain_section(form)
    actions(form, stage2)
    started()
