"""`python -m core.identify enrol (--model encoder.onnx | --run-dir R [--checkpoint C]) --images DIR|CSV
--out gallery.npz` and `python -m core.identify search --gallery gallery.npz IMAGE... [--top 5]
[--far 1e-3 | --threshold T] [--json]`.

Enrol embeds known hands into a gallery; search embeds probe images and returns the gallery's
most similar identities (each identity scored by its best image, cosine similarity), with
`accepted` = top score >= the threshold. The encoder is an ONNX model from core.export
(onnxruntime) or a run's torch checkpoint (its feature and eval.flip); images are resized as
the training cache resizes them (core.data.cache.decode_image). --images is a folder of
`<identity>/*.jpg|png` or a CSV manifest `path,identity` (paths relative to the CSV's folder).

The threshold comes from `--threshold`, or from the verification thresholds recorded in the
gallery at enrol time (core.verification: the checkpoint's FAR 1e-2 / 1e-3 operating points on
its own protocol, from the run or from the ONNX metadata). gallery.npz holds plain arrays only
(no pickles): features, identities, paths, and two JSON strings: `thresholds` (core.verification's
list) and `encoder` (what embedded the gallery, so search embeds probes the same way).

`search --json` prints `{"results": [{"image": PATH, "matches": [{"identity": ID, "score": S},
...], "accepted": BOOL}]}`.
"""

from __future__ import annotations

import argparse
import json
import os
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from core.cli import run_cli
from core.data.cache import decode_into
from core.data.layouts import read_table
from core.data.layouts.csv_manifest import MANIFEST_NAME
from core.device import resolve_device
from core.errors import DataError, HandIDError, ModelError
from core.evaluate import checkpoint_thresholds, run_config
from core.export import read_metadata
from core.evaluation import Extraction, extract_features
from core.model.checkpoint import load_checkpoint_model
from core.runs import RunDir
from core.verification import threshold_at

BATCH = 64
DEFAULT_FAR = 1e-3


@dataclass
class Encoder:
    """Embeds uint8 NHWC images of `size` (h, w) into L2-normalised features; `source` says how to
    rebuild it (JSON), `thresholds` gives its verification thresholds (core.verification)."""

    size: tuple[int, int]
    embed: Callable[[np.ndarray], np.ndarray]
    source: dict
    thresholds: Callable[[], list[dict]]
    interpolation: str = "bicubic"  # the resize filter the model's images were decoded with


def onnx_encoder(path: str | Path) -> Encoder:
    """An exported encoder (core.export) run by onnxruntime on the CPU."""
    path = Path(path).resolve()
    meta = read_metadata(path)
    missing = [k for k in ("image_height", "image_width") if k not in meta]
    if missing:
        raise ModelError(f"{path}: ONNX metadata lacks {', '.join(missing)}; export it with python -m core.export")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def embed(images: np.ndarray) -> np.ndarray:
        return np.concatenate([session.run(None, {name: images[i:i + BATCH]})[0] for i in range(0, len(images), BATCH)])
    return Encoder((int(meta["image_height"]), int(meta["image_width"])), embed, {"model": str(path)},
                   lambda: list(meta.get("thresholds", [])), str(meta.get("interpolation", "bicubic")))


def run_encoder(run_dir: str | Path, checkpoint: str = "best", device: str = "auto") -> Encoder:
    """A run's checkpoint in torch, with the run's retrieval feature and flip setting."""
    run = RunDir.at(Path(run_dir).resolve())
    cfg = run_config(run)
    model, meta = load_checkpoint_model(run.checkpoint(checkpoint))
    torch_device = resolve_device(device)
    model.to(torch_device)
    how = Extraction(meta.feature, BATCH, cfg.eval.flip, cfg.train.amp)

    def embed(images: np.ndarray) -> np.ndarray:
        return extract_features(model, torch.from_numpy(images).to(torch_device), how).cpu().numpy()
    return Encoder(meta.image_size, embed, {"run_dir": str(run.path), "checkpoint": checkpoint},
                   lambda: checkpoint_thresholds(run.path, checkpoint, device=device), model.preprocess.interpolation)


def encoder_from(source: dict, device: str = "auto") -> Encoder:
    """The encoder a gallery's `encoder` record (or --model / --run-dir) names."""
    if source.get("model"):
        return onnx_encoder(source["model"])
    return run_encoder(source["run_dir"], source.get("checkpoint", "best"), device)


def embed_files(encoder: Encoder, paths: Sequence[str]) -> np.ndarray:
    """Features of the image files, decoded and resized as the training cache does."""
    images = np.empty((len(paths), *encoder.size, 3), dtype=np.uint8)
    decode_into([str(p) for p in paths], encoder.size, images, os.cpu_count() or 1, encoder.interpolation)
    return encoder.embed(images).astype(np.float32)


def image_list(spec: str | Path) -> tuple[list[str], list[str]]:
    """(paths, identities) of a folder `<identity>/*.jpg|png` or of a CSV manifest `path,identity`."""
    spec = Path(spec)
    kind = "folder" if spec.is_dir() and not (spec / MANIFEST_NAME).is_file() else "csv"
    table = read_table(kind, spec)
    return table["path"].tolist(), table["identity"].tolist()


@dataclass
class Gallery:
    """Enrolled hands: one L2-normalised feature per image, its identity and path."""

    features: np.ndarray
    identities: np.ndarray
    paths: np.ndarray
    thresholds: list[dict]
    encoder: dict

    def save(self, path: str | Path) -> None:
        """gallery.npz (plain arrays, unicode strings), written atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with tmp.open("wb") as fh:
            np.savez(fh, features=self.features.astype(np.float32), identities=self.identities.astype(str),
                     paths=self.paths.astype(str), thresholds=json.dumps(self.thresholds), encoder=json.dumps(self.encoder))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | Path) -> "Gallery":
        """Read a gallery.npz (no pickles); a missing, unreadable or incomplete file raises DataError."""
        keys = ("features", "identities", "paths", "thresholds", "encoder")
        try:
            with np.load(path, allow_pickle=False) as data:
                missing = [k for k in keys if k not in data.files]
                if missing:
                    raise DataError(f"{path}: not a gallery written by core.identify enrol "
                                    f"(lacks {', '.join(missing)})")
                arrays = {k: data[k] for k in keys}
        except FileNotFoundError:
            raise DataError(f"gallery not found: {path}") from None
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise DataError(f"{path}: unreadable gallery file ({exc})") from None
        try:
            thresholds, encoder = json.loads(str(arrays["thresholds"])), json.loads(str(arrays["encoder"]))
        except json.JSONDecodeError:
            raise DataError(f"{path}: the gallery's thresholds or encoder record is not valid JSON") from None
        return cls(arrays["features"], arrays["identities"], arrays["paths"], thresholds, encoder)


def enrol(encoder: Encoder, images: str | Path) -> Gallery:
    """Embed every image of a folder or CSV manifest into a gallery, with the encoder's thresholds."""
    paths, identities = image_list(images)
    return enrol_images(encoder, paths, identities, encoder.thresholds())


def enrol_images(encoder: Encoder, paths: Sequence[str], identities: Sequence[str], thresholds: list[dict]) -> Gallery:
    """Embed image files of known identities into a gallery with the given verification thresholds."""
    return Gallery(embed_files(encoder, paths), np.array(identities), np.array(paths), thresholds, encoder.source)


def rank_identities(gallery: Gallery, features: np.ndarray, top: int) -> list[list[dict]]:
    """Per probe, the `top` identities by their best gallery image's cosine similarity, best first
    (ties keep the identities' order of first appearance in the gallery)."""
    names, first, codes = np.unique(gallery.identities, return_index=True, return_inverse=True)
    scores = features @ gallery.features.T  # [probes, gallery images], both L2-normalised
    best = np.full((len(names), len(features)), -np.inf, dtype=scores.dtype)
    np.maximum.at(best, codes.reshape(-1), scores.T)
    by_appearance = np.argsort(first, kind="stable")
    names, best = names[by_appearance], best[by_appearance].T
    order = np.argsort(-best, axis=1, kind="stable")[:, :top]
    return [[{"identity": str(names[i]), "score": float(row[i])} for i in idx] for row, idx in zip(best, order)]


def resolve_threshold(gallery: Gallery, path: str | Path, threshold: float | None, far: float | None) -> float:
    """--threshold as given, else the gallery's recorded threshold at --far (default 1e-3)."""
    if threshold is not None:
        return float(threshold)
    far = DEFAULT_FAR if far is None else far
    found = threshold_at(gallery.thresholds, far)
    if found is None:
        recorded = ", ".join(f"{t['far_target']:g}" for t in gallery.thresholds) or "none"
        raise HandIDError(f"{path}: no verification threshold for FAR {far:g} (recorded: {recorded}); give "
                          "--threshold T, or enrol with --run-dir or a model exported with its thresholds")
    return found


def search(gallery: Gallery, encoder: Encoder, images: Sequence[str], top: int, threshold: float) -> dict:
    """The search result for each probe image: `{"results": [{"image", "matches", "accepted"}]}`."""
    return search_features(gallery, embed_files(encoder, images), images, top, threshold)


def search_features(gallery: Gallery, features: np.ndarray, images: Sequence[str], top: int, threshold: float) -> dict:
    """`search` for probes already embedded (`features`: one row per image)."""
    if features.shape[1] != gallery.features.shape[1]:
        raise ModelError(f"the encoder gives {features.shape[1]}-d features but the gallery holds "
                         f"{gallery.features.shape[1]}-d ones: enrol and search with the same model")
    matches = rank_identities(gallery, features, top)
    return {"results": [{"image": str(image), "matches": m, "accepted": bool(m and m[0]["score"] >= threshold)}
                        for image, m in zip(images, matches)]}


def best_images(gallery: Gallery, feature: np.ndarray, identities: Sequence[str]) -> list[str]:
    """For one probe's feature, the path of each identity's most similar gallery image (its score's image)."""
    scores = gallery.features @ feature
    out = []
    for identity in identities:
        mine = np.flatnonzero(gallery.identities == identity)
        out.append(str(gallery.paths[mine[np.argmax(scores[mine])]]))
    return out


def format_search(result: dict, threshold: float) -> str:
    lines = []
    for r in result["results"]:
        lines.append(f"{r['image']}: {'accepted' if r['accepted'] else 'rejected'} (threshold {threshold:.4f})")
        lines += [f"  {i}. {m['identity']}  {m['score']:.4f}" for i, m in enumerate(r["matches"], 1)]
    return "\n".join(lines)


def _add_encoder_arguments(parser: argparse.ArgumentParser, required: bool) -> None:
    source = parser.add_mutually_exclusive_group(required=required)
    source.add_argument("--model", help="an ONNX encoder written by python -m core.export")
    source.add_argument("--run-dir", help="a run folder: its torch checkpoint embeds the images")
    parser.add_argument("--checkpoint", default="best", help="with --run-dir: best, last or a .safetensors path")
    parser.add_argument("--device", default="auto", help="with --run-dir: auto, cpu, cuda or cuda:N")


def _source(args: argparse.Namespace) -> dict | None:
    if args.model:
        return {"model": args.model}
    if args.run_dir:
        return {"run_dir": args.run_dir, "checkpoint": args.checkpoint}
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core.identify", description="Enrol hands and identify probes.")
    commands = parser.add_subparsers(dest="command", required=True)
    enrol_cmd = commands.add_parser("enrol", help="embed known hands into a gallery file")
    _add_encoder_arguments(enrol_cmd, required=True)
    enrol_cmd.add_argument("--images", required=True, help="folder of <identity>/*.jpg|png, or a CSV path,identity")
    enrol_cmd.add_argument("--out", required=True, help="the gallery .npz to write")
    search_cmd = commands.add_parser("search", help="identify probe images against a gallery")
    search_cmd.add_argument("--gallery", required=True, help="a gallery .npz written by enrol")
    search_cmd.add_argument("images", nargs="+", metavar="IMAGE", help="probe images")
    search_cmd.add_argument("--top", type=int, default=5, help="identities listed per probe (default 5)")
    rule = search_cmd.add_mutually_exclusive_group()
    rule.add_argument("--far", type=float,
                      help=f"accept at the gallery's threshold for this FAR (default {DEFAULT_FAR:g})")
    rule.add_argument("--threshold", type=float, help="accept when the top score is at least this cosine similarity")
    search_cmd.add_argument("--json", action="store_true", help="print the result as JSON")
    _add_encoder_arguments(search_cmd, required=False)  # default: the encoder that enrolled the gallery
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "enrol":
        gallery = enrol(encoder_from(_source(args), args.device), args.images)
        gallery.save(args.out)
        far = ", ".join(f"FAR {t['far_target']:g}: {t['threshold']:.4f}" for t in gallery.thresholds) or "none"
        print(f"enrolled {len(gallery.paths)} images of {len(set(gallery.identities))} identities into {args.out}; "
              f"thresholds {far}")
        return 0
    if args.top < 1:
        raise HandIDError(f"--top {args.top} is not valid; it must be at least 1")
    gallery = Gallery.load(args.gallery)
    threshold = resolve_threshold(gallery, args.gallery, args.threshold, args.far)
    encoder = encoder_from(_source(args) or gallery.encoder, args.device)
    result = search(gallery, encoder, args.images, args.top, threshold)
    print(json.dumps(result, indent=1) if args.json else format_search(result, threshold))
    return 0


if __name__ == "__main__":
    run_cli(main)
