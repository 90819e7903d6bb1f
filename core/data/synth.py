"""Procedurally drawn synthetic hands, written in a real layout by that layout's own writer.

Each person has a stable hand (palm and finger proportions, thumb angle, nail shape, moles,
veins, knuckle wrinkles, palm creases) and a skin tone shared with other people, so colour
alone cannot identify anyone; each photo varies the pose (finger spread, rotation, scale,
position) and the capture (lighting, background, noise, JPEG quality). A layout module
(core.data.layouts) plans the photos and their file names as `Shot`s; this module draws and
saves them. The demo and the tests read the folders with the same readers as the real datasets.
Sizes are (height, width), as everywhere in the project.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from core.data.pool import parallel_map
from core.errors import ConfigError, DataError

ASPECTS = ("dorsal right", "dorsal left", "palmar right", "palmar left")
DEFAULT_SIZE = (300, 400)  # (height, width)
SUPERSAMPLE = 2
# A handful of tones, two per 11k skinColor class, each shared by many people.
SKIN_TONES = (
    ("very fair", (238, 205, 186)), ("very fair", (229, 192, 167)),
    ("fair", (221, 177, 148)), ("fair", (207, 160, 128)),
    ("medium", (189, 140, 104)), ("medium", (166, 118, 84)),
    ("dark", (126, 87, 61)), ("dark", (96, 66, 46)),
)
TONE_WEIGHTS = np.array([1, 1, 2, 2, 2, 2, 1, 1], dtype=float)
POLISH_COLOURS = ((176, 28, 46), (214, 92, 140), (96, 30, 80), (40, 34, 44))
ACCESSORY_COLOURS = ((212, 175, 80), (196, 198, 204), (60, 44, 34))
VEIN_TINT = np.array([70, 90, 150], dtype=float)
PALM_TINT = (232, 178, 160)  # palms are lighter and pinker than the back of the hand
MOLE_COLOUR = np.array([70, 42, 28], dtype=float)
# Neutral finger geometry (index, middle, ring, little), in palm widths and degrees.
FINGER_X = np.array([-0.36, -0.12, 0.12, 0.35])
FINGER_Y = np.array([0.0, 0.03, 0.01, -0.09])
FINGER_LEN = np.array([0.84, 0.94, 0.88, 0.70])
FINGER_W = np.array([0.215, 0.225, 0.205, 0.175])
CLOSED_ANGLE = np.array([-1.5, 0.0, 1.5, 4.0])
OPEN_ANGLE = np.array([-12.0, -3.0, 7.0, 18.0])


@dataclass(frozen=True)
class HandShape:
    """One hand of one person, drawn as a right hand seen from the back, in palm widths (y up).

    Marks are hand-relative: palm marks in palm coordinates, finger marks as
    (finger, position along the finger, position across it), so they move with the pose.
    """

    palm_h: float
    wrist_w: float
    finger_base: np.ndarray  # (4, 2)
    finger_len: np.ndarray  # (4,)
    finger_w: np.ndarray  # (4,)
    segments: np.ndarray  # (4, 3) fractions of the finger length
    bends: np.ndarray  # (4, 3) degrees added at each joint
    thumb_base: np.ndarray  # (2,)
    thumb_angle: float
    thumb_len: np.ndarray  # (3,)
    thumb_w: float
    nail_w: float
    nail_l: float
    nail_round: float
    palm_moles: np.ndarray  # (k, 3): x, y, radius (dorsal side)
    finger_moles: np.ndarray  # (k, 4): finger (0-4, 4 = thumb), along, across, radius
    palmar_moles: np.ndarray  # (k, 3)
    veins: tuple[np.ndarray, ...]  # polylines in palm coordinates
    wrinkles: np.ndarray  # (4,) knuckle wrinkle line counts
    creases: tuple[np.ndarray, ...]  # heart, head, life lines (control points)


@dataclass(frozen=True)
class Person:
    """Everything stable about one synthetic person."""

    tone: int
    polish: int  # index into POLISH_COLOURS, -1 for none
    age: int
    gender: str
    right: HandShape
    left: HandShape


def _marks(rng: np.random.Generator, palm_h: float, count: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` moles, each on the palm or on a finger, at fixed hand-relative spots."""
    on_finger = rng.random(count) < 0.3
    palm = np.column_stack([rng.uniform(-0.38, 0.38, count), rng.uniform(0.12, 0.9, count) * palm_h,
                            rng.uniform(0.03, 0.055, count)])[~on_finger]
    fingers = np.column_stack([rng.integers(0, 5, count), rng.uniform(0.1, 0.75, count),
                               rng.uniform(-0.3, 0.3, count), rng.uniform(0.025, 0.04, count)])[on_finger]
    return palm, fingers


def _hand_shape(rng: np.random.Generator) -> HandShape:
    """Draw one person's right hand."""
    palm_h = rng.uniform(0.88, 1.26)
    finger_scale = rng.uniform(0.76, 1.18)
    width_scale = rng.uniform(0.75, 1.25)
    base = np.column_stack([FINGER_X + rng.normal(0, 0.02, 4), palm_h + FINGER_Y + rng.normal(0, 0.05, 4)])
    segments = np.array([0.45, 0.30, 0.25]) + rng.normal(0, 0.015, (4, 3))
    palm_moles, finger_moles = _marks(rng, palm_h, int(rng.integers(3, 8)))
    palmar_moles, _ = _marks(rng, palm_h, int(rng.integers(0, 2)))
    veins = tuple(
        np.array([[x0, -0.25], [x0 + rng.uniform(-0.12, 0.12), 0.35 * palm_h], [x1, 0.78 * palm_h]])
        for x0, x1 in zip(rng.uniform(-0.25, 0.25, 3), rng.choice([-0.24, 0.0, 0.24], 3, replace=False) + rng.normal(0, 0.03, 3))
    )
    creases = tuple(
        (np.array(points) + rng.normal(0, 0.035, (3, 2))) * [1, palm_h]
        for points in ([[0.5, 0.74], [0.12, 0.8], [-0.22, 0.93]],  # heart line
                       [[-0.46, 0.72], [-0.08, 0.62], [0.36, 0.5]],  # head line
                       [[-0.45, 0.7], [-0.22, 0.42], [-0.28, 0.04]])  # life line
    )
    return HandShape(
        palm_h=palm_h,
        wrist_w=rng.uniform(0.6, 0.86),
        finger_base=base,
        finger_len=FINGER_LEN * finger_scale * (1 + rng.normal(0, 0.07, 4)),
        finger_w=FINGER_W * width_scale * (1 + rng.normal(0, 0.06, 4)),
        segments=segments / segments.sum(axis=1, keepdims=True),
        bends=rng.normal(0, 4.0, (4, 3)),
        thumb_base=np.array([-0.2 + rng.normal(0, 0.03), 0.1 * palm_h]),
        thumb_angle=rng.uniform(22, 56),
        thumb_len=np.array([0.5, 0.34, 0.3]) * rng.uniform(0.82, 1.18),
        thumb_w=rng.uniform(0.24, 0.34),
        nail_w=rng.uniform(0.55, 0.75),
        nail_l=rng.uniform(0.5, 0.7),
        nail_round=rng.uniform(0.2, 0.9),
        palm_moles=palm_moles,
        finger_moles=finger_moles,
        palmar_moles=palmar_moles,
        veins=veins,
        wrinkles=rng.integers(2, 5, 4),
        creases=creases,
    )


def _left_hand(right: HandShape, rng: np.random.Generator) -> HandShape:
    """The left hand: the right one's geometry with small asymmetries, and its own marks."""
    own = _hand_shape(rng)
    return replace(
        right,
        palm_h=right.palm_h * (1 + rng.normal(0, 0.015)),
        finger_len=right.finger_len * (1 + rng.normal(0, 0.02, 4)),
        finger_w=right.finger_w * (1 + rng.normal(0, 0.02, 4)),
        thumb_angle=right.thumb_angle + rng.normal(0, 2.0),
        palm_moles=own.palm_moles,
        finger_moles=own.finger_moles,
        palmar_moles=own.palmar_moles,
        veins=own.veins,
    )


def make_person(seed: int, index: int) -> Person:
    """The person with this index in the dataset drawn from `seed` (deterministic)."""
    rng = np.random.default_rng([seed, index, 0])
    right = _hand_shape(rng)
    return Person(
        tone=int(rng.choice(len(SKIN_TONES), p=TONE_WEIGHTS / TONE_WEIGHTS.sum())),
        polish=int(rng.integers(len(POLISH_COLOURS))) if rng.random() < 0.15 else -1,
        age=int(rng.integers(18, 76)),
        gender=str(rng.choice(["male", "female"])),
        right=right,
        left=_left_hand(right, rng),
    )


def _rot(degrees: float) -> np.ndarray:
    """Unit vector at `degrees` from +y towards +x."""
    rad = np.radians(degrees)
    return np.array([np.sin(rad), np.cos(rad)])


def _chain(base: np.ndarray, angle: float, lengths: np.ndarray, bends: np.ndarray) -> np.ndarray:
    """Joint positions of a finger: base, then the end of each segment."""
    points = [base]
    for length, bend in zip(lengths, bends):
        angle += bend
        points.append(points[-1] + length * _rot(angle))
    return np.array(points)


def _capsule(joints: np.ndarray, widths: np.ndarray, steps: int = 4) -> np.ndarray:
    """Outline of a tapered tube through `joints` with a round tip: left side, tip, right side."""
    t = np.linspace(0, len(joints) - 1, (len(joints) - 1) * steps + 1)
    centre = np.column_stack([np.interp(t, np.arange(len(joints)), joints[:, k]) for k in range(2)])
    half = np.interp(t, np.arange(len(joints)), widths) / 2
    tangent = np.gradient(centre, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    normal = np.column_stack([-tangent[:, 1], tangent[:, 0]])
    left, right = centre + normal * half[:, None], centre - normal * half[:, None]
    arc = np.linspace(0, np.pi, 9)[1:-1]
    tip = centre[-1] + half[-1] * (np.cos(arc)[:, None] * normal[-1] + np.sin(arc)[:, None] * tangent[-1])
    return np.concatenate([left, tip, right[::-1]])


def _smooth(points: np.ndarray, rounds: int = 2, closed: bool = True) -> np.ndarray:
    """Chaikin corner cutting: a polygon or polyline with rounded corners."""
    for _ in range(rounds):
        nxt = np.roll(points, -1, axis=0) if closed else points[1:]
        cur = points if closed else points[:-1]
        cut = np.stack([0.75 * cur + 0.25 * nxt, 0.25 * cur + 0.75 * nxt], axis=1).reshape(-1, 2)
        points = cut if closed else np.concatenate([points[:1], cut, points[-1:]])
    return points


def _bezier(control: np.ndarray, n: int = 12) -> np.ndarray:
    """Quadratic Bezier curve through three control points."""
    t = np.linspace(0, 1, n)[:, None]
    return (1 - t) ** 2 * control[0] + 2 * (1 - t) * t * control[1] + t**2 * control[2]


def _mix(colour, target, amount: float) -> tuple[int, int, int]:
    """`colour` moved towards `target` by `amount` (0..1), as an RGB tuple."""
    out = np.asarray(colour, float) * (1 - amount) + np.asarray(target, float) * amount
    return tuple(int(v) for v in np.clip(out, 0, 255))


@dataclass(frozen=True)
class Pose:
    """What one photo changes: finger spread and curl, placement, and the capture."""

    spread: float
    curl: np.ndarray
    thumb: float
    rotation: float
    scale: float
    offset: np.ndarray
    light: np.ndarray
    brightness: float
    balance: np.ndarray
    background: float
    noise: float


def _pose(rng: np.random.Generator) -> Pose:
    return Pose(
        spread=float(rng.uniform(0.25, 0.75)),
        curl=rng.normal(0, 1.0, (4, 3)),
        thumb=float(rng.normal(0, 4)),
        rotation=float(rng.uniform(-8, 8)),
        scale=float(rng.uniform(0.95, 1.05)),
        offset=rng.uniform(-1, 1, 2),
        light=rng.normal(0, 0.12, 2),
        brightness=float(rng.uniform(0.92, 1.08)),
        balance=1 + rng.normal(0, 0.015, 3),
        background=float(rng.uniform(0.9, 1.0)),
        noise=float(rng.uniform(1.0, 4.0)),
    )


def _finger_joints(hand: HandShape, pose: Pose) -> list[np.ndarray]:
    """Joint positions of the four fingers then the thumb (hand coordinates)."""
    angles = CLOSED_ANGLE + pose.spread * OPEN_ANGLE
    fingers = [
        _chain(hand.finger_base[i] - [0, 0.06], angles[i], hand.finger_len[i] * hand.segments[i], hand.bends[i] + pose.curl[i])
        for i in range(4)
    ]
    thumb_angle = -(hand.thumb_angle + 16 * pose.spread + pose.thumb)
    thumb = _chain(hand.thumb_base, thumb_angle, hand.thumb_len, np.array([0.0, 9.0, 11.0]))
    return fingers + [thumb]


def _palm_outline(hand: HandShape) -> np.ndarray:
    """Palm, wrist and forearm as one closed polygon (thumb side at -x)."""
    h, w = hand.palm_h, hand.wrist_w / 2
    top = [(x, y + 0.02) for x, y in hand.finger_base]
    points = [(-w - 0.04, -2.5), (-w, -0.05), (-w - 0.03, 0.3 * h), (-0.48, 0.6 * h), (-0.49, 0.85 * h), (-0.45, 0.97 * h),
              *top, (0.46, h - 0.15), (0.5, 0.55 * h), (0.46, 0.25 * h), (w, -0.05), (w + 0.04, -2.5)]
    return _smooth(np.array(points, float))


def _thumb_web(hand: HandShape, thumb: np.ndarray) -> np.ndarray:
    """The skin between thumb and index finger: from the thumb's first joint to the palm's side."""
    side = np.array([-0.47, 0.68 * hand.palm_h])
    knuckle = thumb[1] + 0.35 * (thumb[2] - thumb[1])
    sag = (knuckle + side) / 2 + np.array([0.06, -0.04])
    return np.array([thumb[0], knuckle, sag, side, [-0.3, 0.3 * hand.palm_h]])


class _Canvas:
    """Supersampled drawing surfaces with the hand-to-pixel transform of one photo."""

    def __init__(self, size: tuple[int, int], unit: float, rotation: float, centre: np.ndarray, anchor: np.ndarray,
                 mirror: bool):
        """Hand point `anchor` lands on pixel `centre`; one palm width is `unit` pixels."""
        self.size = (size[0] * SUPERSAMPLE, size[1] * SUPERSAMPLE)
        self.unit = unit * SUPERSAMPLE
        self.mirror = -1.0 if mirror else 1.0
        c, s = np.cos(np.radians(rotation)), np.sin(np.radians(rotation))
        self.matrix = self.unit * np.array([[c, -s], [-s, -c]])
        self.centre = centre * SUPERSAMPLE - self.matrix @ (anchor * [self.mirror, 1.0])
        self.mask = Image.new("L", self.size, 0)
        self.image = Image.new("RGB", self.size, (0, 0, 0))
        self.draw_mask = ImageDraw.Draw(self.mask)
        self.draw = ImageDraw.Draw(self.image)

    def px(self, points) -> list[tuple[float, float]]:
        """Pixel coordinates of hand points."""
        points = np.asarray(points, float).reshape(-1, 2) * [self.mirror, 1.0]
        return [tuple(p) for p in points @ self.matrix.T + self.centre]

    def width(self, units: float) -> int:
        return max(1, int(round(units * self.unit)))

    def shape(self, points, fill, outline=None) -> None:
        """A skin-covered polygon: into the mask and the colour layer."""
        xy = self.px(points)
        self.draw_mask.polygon(xy, fill=255)
        self.draw.polygon(xy, fill=fill)
        if outline is not None:
            self.draw.line(xy, fill=outline, width=self.width(0.008), joint="curve")

    def line(self, points, fill, units: float) -> None:
        self.draw.line(self.px(points), fill=fill, width=self.width(units), joint="curve")

    def dot(self, centre, radius: float, fill) -> None:
        (x, y), r = self.px(centre)[0], radius * self.unit
        self.draw.ellipse([x - r, y - r, x + r, y + r], fill=fill)


def _along(joints: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
    """Point at fraction `t` of a joint chain's length, and the unit direction there."""
    lengths = np.linalg.norm(np.diff(joints, axis=0), axis=1)
    target = t * lengths.sum()
    k = int(min(np.searchsorted(np.cumsum(lengths), target), len(lengths) - 1))
    start = target - lengths[:k].sum()
    direction = (joints[k + 1] - joints[k]) / lengths[k]
    return joints[k] + direction * start, direction


def _across(joints: np.ndarray, t: float, half: float, bow: float = 0.0) -> np.ndarray:
    """A short line across a finger at fraction `t`, `half` wide each side, bowed along it."""
    point, direction = _along(joints, t)
    normal = np.array([-direction[1], direction[0]])
    s = np.linspace(-1, 1, 5)[:, None]
    return point + normal * half * s + direction * bow * (1 - s**2)


def _draw_nail(canvas: _Canvas, joints: np.ndarray, width: float, hand: HandShape, colour) -> None:
    """Nail on the last segment: a rounded plate from the cuticle to just short of the tip."""
    tip, direction = joints[-1], (joints[-1] - joints[-2]) / np.linalg.norm(joints[-1] - joints[-2])
    normal = np.array([-direction[1], direction[0]])
    length = hand.nail_l * np.linalg.norm(joints[-1] - joints[-2])
    half = hand.nail_w * width / 2
    base = tip - direction * (length - 0.35 * half)
    corners = np.array([base - normal * half, tip - normal * half, tip + normal * half, base + normal * half])
    corners[[1, 2]] += direction * half * hand.nail_round * 0.6
    corners[[0, 3]] -= direction * half * 0.25
    canvas.shape(_smooth(corners, rounds=3), colour, outline=_mix(colour, (60, 30, 30), 0.25))


def _draw_hand(canvas: _Canvas, hand: HandShape, pose: Pose, skin, dorsal: bool, polish: int, accessory: int) -> None:
    """Draw one hand: thumb, fingers, palm and forearm over their bases, then the visible side's marks."""
    dark = _mix(skin, (40, 20, 10), 0.2)
    edge = _mix(skin, (40, 20, 10), 0.35)
    crease = _mix(skin, (50, 25, 15), 0.4 if dorsal else 0.45)
    joints = _finger_joints(hand, pose)
    widths = [np.array([1.0, 0.95, 0.88, 0.8]) * w for w in hand.finger_w]
    thumb_w = np.array([1.25, 0.95, 0.85, 0.72]) * hand.thumb_w

    canvas.shape(_capsule(joints[4], thumb_w), dark, outline=edge)
    canvas.shape(_capsule(joints[4], thumb_w * 0.7), skin)
    for i in range(4):
        canvas.shape(_capsule(joints[i], widths[i]), dark, outline=edge)
        canvas.shape(_capsule(joints[i], widths[i] * 0.72), skin)
    canvas.shape(_thumb_web(hand, joints[4]), skin)
    canvas.shape(_palm_outline(hand), skin)
    if dorsal:
        vein = _mix(skin, VEIN_TINT, 0.22)
        for points in hand.veins:
            canvas.line(_bezier(points), vein, 0.06)
    else:
        for points in hand.creases:
            canvas.line(_bezier(points, 16), crease, 0.024)
        for y in (-0.04, -0.1):
            canvas.line(_bezier(np.array([[-hand.wrist_w / 2, y], [0, y - 0.03], [hand.wrist_w / 2, y]])), crease, 0.01)
    moles = hand.palm_moles if dorsal else hand.palmar_moles
    for x, y, r in moles:
        canvas.dot((x, y), r, _mix(skin, MOLE_COLOUR, 0.75))

    fingers = joints[:4] + [joints[4]]
    finger_w = list(hand.finger_w) + [hand.thumb_w * 0.85]
    for i, chain in enumerate(fingers):
        lengths = np.linalg.norm(np.diff(chain, axis=0), axis=1)
        at = np.cumsum(lengths)[:-1] / lengths.sum()
        if i == 4:
            at = at[1:]
        if dorsal:
            lines = [hand.wrinkles[i % 4], 2]
            for t, count in zip(at, lines):
                for k in range(count):
                    shift = (k - (count - 1) / 2) * 0.022 / lengths.sum()
                    canvas.line(_across(chain, t + shift, finger_w[i] * 0.22, bow=0.012), crease, 0.007)
            nail = POLISH_COLOURS[polish] if polish >= 0 else _mix(skin, (255, 205, 205), 0.55)
            _draw_nail(canvas, chain, finger_w[i] * (0.9 if i < 4 else 0.8), hand, nail)
        else:
            for t in at:
                for shift in (-0.012, 0.012):
                    canvas.line(_across(chain, t + shift / lengths.sum(), finger_w[i] * 0.3), crease, 0.008)
    for finger, along, across, r in hand.finger_moles if dorsal else ():
        point, direction = _along(fingers[int(finger)], along)
        canvas.dot(point + np.array([-direction[1], direction[0]]) * across * finger_w[int(finger)], r,
                   _mix(skin, MOLE_COLOUR, 0.75))
    if accessory:
        _draw_accessory(canvas, hand, joints, widths, accessory)


def _draw_accessory(canvas: _Canvas, hand: HandShape, joints, widths, accessory: int) -> None:
    """A ring on the ring finger (1) or a bracelet at the wrist (2)."""
    metal = ACCESSORY_COLOURS[accessory % len(ACCESSORY_COLOURS)]
    if accessory == 1:
        band = _across(joints[2], 0.2, widths[2][0] * 0.56, bow=0.015)
        canvas.line(band, metal, 0.045)
        canvas.line(band, _mix(metal, (255, 255, 255), 0.4), 0.012)
    else:
        w = hand.wrist_w / 2 + 0.06
        band = np.array([[-w, -0.22], [w, -0.22], [w, -0.1], [-w, -0.1]])
        canvas.shape(band, metal, outline=_mix(metal, (0, 0, 0), 0.4))


def render_hand(person: Person, aspect: str, rng: np.random.Generator, size: tuple[int, int] = DEFAULT_SIZE,
                accessory: int = 0) -> Image.Image:
    """One RGB photo of `size` (height, width) of `person`'s hand seen as `aspect` (one of ASPECTS).

    `accessory` 0 = none, 1 = ring, 2 = bracelet. All randomness comes from `rng`.
    """
    if aspect not in ASPECTS:
        raise ConfigError(f"unknown aspect {aspect!r}; valid: {', '.join(ASPECTS)}")
    side, hand_name = aspect.split()
    hand = person.right if hand_name == "right" else person.left
    dorsal = side == "dorsal"
    pose = _pose(rng)
    h, w = size
    unit = 0.36 * min(h, 0.9 * w) * pose.scale
    slack = np.array([w * 0.07, h * 0.04])
    centre = np.array([w / 2, h / 2]) + pose.offset * slack
    middle = np.array([0.0, (hand.palm_h + 0.9) / 2])  # halfway from the wrist to the fingertips
    canvas = _Canvas((w, h), unit, pose.rotation, centre, middle, mirror=(hand_name == "left") != (not dorsal))
    skin = _mix(SKIN_TONES[person.tone][1], PALM_TINT, 0.0 if dorsal else 0.6)
    _draw_hand(canvas, hand, pose, skin, dorsal, person.polish, accessory)
    return _photograph(canvas, pose, size, rng)


def _soften(image: np.ndarray) -> np.ndarray:
    """A slight [1, 2, 1] / 4 blur along rows and columns (no lens is perfectly sharp)."""
    rows = np.pad(image, ((1, 1), (0, 0), (0, 0)), mode="edge")
    image = 0.5 * image + 0.25 * (rows[:-2] + rows[2:])
    cols = np.pad(image, ((0, 0), (1, 1), (0, 0)), mode="edge")
    return 0.5 * image + 0.25 * (cols[:, :-2] + cols[:, 2:])


def _photograph(canvas: _Canvas, pose: Pose, size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    """Composite the drawn hand on a light background with rim shading, shadow, light and noise."""
    h, w = size
    mask = canvas.mask.reduce(SUPERSAMPLE)
    colour = _soften(np.asarray(canvas.image.reduce(SUPERSAMPLE), np.float32))
    shift = max(1, round(canvas.unit / SUPERSAMPLE * 0.05))
    blurred = np.asarray(mask.filter(ImageFilter.GaussianBlur(shift)), np.float32) / 255
    shadow = np.zeros_like(blurred)
    shadow[shift:, shift:] = blurred[:-shift, :-shift]
    alpha = np.asarray(mask, np.float32) / 255
    x = np.arange(w, dtype=np.float32) / w - 0.5
    y = (np.arange(h, dtype=np.float32) / h - 0.5)[:, None]
    (lx, ly), brightness = pose.light.tolist(), pose.brightness
    light = (1 + lx * x + ly * y) * (1 - 0.12 * (x**2 + y**2)) * brightness
    shade = 0.7 + 0.3 * np.sqrt(np.clip(2 * blurred - 1, 0, 1))
    background = 245 * pose.background * (1 - 0.22 * shadow) * (1 - alpha) * light
    out = colour * (alpha * shade * light)[..., None] + background[..., None]
    out *= pose.balance.astype(np.float32)
    out += rng.standard_normal((h, w, 1), dtype=np.float32) * pose.noise
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))


def tone_name(person: Person) -> str:
    """The 11k-style skin colour class of the person's tone."""
    return SKIN_TONES[person.tone][0]


class Shot(NamedTuple):
    """One photo to render: who (seed, person index), which photo of them, the aspect and
    accessory (0 none, 1 ring, 2 bracelet), the (height, width) size and where to save it."""

    seed: int
    person: int
    number: int
    aspect: str
    accessory: int
    size: tuple[int, int]
    path: Path


def _render(shot: Shot) -> None:
    """Render and save one photo (a process-pool task)."""
    person = make_person(shot.seed, shot.person)
    rng = np.random.default_rng([shot.seed, shot.person, shot.number, 1])
    image = render_hand(person, shot.aspect, rng, shot.size, shot.accessory)
    image.save(shot.path, quality=int(rng.integers(72, 96)))


def render_all(shots: list[Shot], workers: int | None) -> None:
    """Render every shot, in `workers` forked processes (None: all cores) when there are enough."""
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(shots) < 16:
        for shot in shots:
            _render(shot)
        return
    list(parallel_map(_render, shots, workers=workers, chunksize=8))


def write_dataset(layout: str, out: str | Path, identities: int, seed: int, size: tuple[int, int] = DEFAULT_SIZE,
                  images_per_aspect: int = 4, workers: int | None = 1) -> Path:
    """Generate a synthetic dataset in a registered layout into the new folder `out`.

    The layout's writer decides what the folder holds (see its module): 11k has all four
    aspects of `identities` people, `images_per_aspect` plain photos each plus a few with
    accessories; HD has dorsal photos of `identities` protocol subjects plus distractor subjects.
    `size` is (height, width); `workers` processes render in parallel (None = all cores).
    """
    from core.data.layouts import get, synthetic_layouts

    if layout not in synthetic_layouts():
        raise ConfigError(f"unknown synthetic layout {layout!r}; valid: {', '.join(synthetic_layouts())}")
    if identities < 2 or images_per_aspect < 2:
        raise ConfigError(f"need at least 2 identities and 2 images per aspect, got {identities} and {images_per_aspect}")
    if min(size) < 32:
        raise ConfigError(f"image size {size[0]}x{size[1]} is too small (at least 32x32)")
    out = Path(out).expanduser()
    if out.exists() and any(out.iterdir()):
        raise DataError(f"output folder is not empty: {out}")
    get(layout).write_synthetic(out, identities, seed, tuple(size), images_per_aspect, workers)
    return out


def parse_size(text: str) -> tuple[int, int]:
    """`HEIGHTxWIDTH` -> (height, width)."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 300x400 (height x width), got {text!r}") from None
    return h, w


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from core.data.layouts import synthetic_layouts

    parser.add_argument("--layout", choices=synthetic_layouts(), required=True, help="on-disk layout to imitate")
    parser.add_argument("--out", type=Path, required=True, help="new (or empty) output folder")
    parser.add_argument("--identities", type=int, default=20,
                        help="people (HD: the protocol's subjects; distractor subjects are added)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=parse_size, default=DEFAULT_SIZE, help="image size HEIGHTxWIDTH (default 300x400)")
    parser.add_argument("--images-per-aspect", type=int, default=4, help="photos per person and aspect")
    parser.add_argument("--workers", type=int, default=None, help="rendering processes (default: all cores)")


def run(args: argparse.Namespace) -> int:
    out = write_dataset(args.layout, args.out, args.identities, args.seed, args.size, args.images_per_aspect, args.workers)
    print(f"wrote {args.layout} synthetic dataset to {out}")
    return 0
