"""How synthetic people look: clothes (per-vertex colours by body part), skin, hair, light."""

from __future__ import annotations

from dataclasses import dataclass, field
import math

import numpy as np

from romp_ros.core.body.smpl import BodyModel
from romp_ros.core.render import LightSpec
from romp_ros.synthetic import backgrounds

_PART_OF_JOINT = {
    0: 'pelvis', 1: 'thigh', 2: 'thigh', 3: 'torso', 4: 'shin', 5: 'shin', 6: 'torso',
    7: 'shoe', 8: 'shoe', 9: 'torso', 10: 'shoe', 11: 'shoe', 12: 'neck', 13: 'torso',
    14: 'torso', 15: 'head', 16: 'upper_arm', 17: 'upper_arm', 18: 'forearm', 19: 'forearm',
    20: 'hand', 21: 'hand', 22: 'hand', 23: 'hand',
}
_SKIN_TONES = np.array([[0.98, 0.84, 0.72], [0.92, 0.74, 0.6], [0.8, 0.6, 0.45],
                        [0.62, 0.44, 0.31], [0.45, 0.3, 0.2], [0.3, 0.2, 0.14]])
_HAIR_COLOURS = np.array([[0.08, 0.06, 0.05], [0.3, 0.18, 0.1], [0.6, 0.45, 0.25],
                          [0.75, 0.7, 0.65], [0.45, 0.15, 0.08]])


@dataclass(frozen=True)
class BodyParts:
    """Per-vertex body-part masks of a body model, for clothing colours.

    Attributes:
        parts: name -> (V,) bool mask ('hair' is the top and back of the head).
        height: (V,) rest-pose vertex height, metres (stripes follow it).
    """

    parts: dict[str, np.ndarray] = field(default_factory=dict)
    height: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @classmethod
    def of(cls, body: BodyModel) -> 'BodyParts':
        """Segment the template of ``body`` by dominant skinning joint."""
        weights = body.lbs_weights.cpu().numpy()  # (V, 24)
        template = body.v_template.cpu().numpy()  # (V, 3)
        joints = body.j_regressor.cpu().numpy() @ template  # (24, 3)
        dominant = weights.argmax(axis=1)
        parts = {}
        for name in set(_PART_OF_JOINT.values()):
            joint_ids = [j for j, p in _PART_OF_JOINT.items() if p == name]
            parts[name] = np.isin(dominant, joint_ids)
        head = joints[15]
        hair = parts['head'] & ((template[:, 1] > head[1] + 0.03)
                                | ((template[:, 2] < head[2] - 0.02)
                                   & (template[:, 1] > head[1] - 0.06)))
        parts['hair'] = hair
        parts['head'] = parts['head'] & ~hair
        return cls(parts, template[:, 1].copy())


def sample_clothes(rng: np.random.Generator, parts: BodyParts,
                   pattern_prob: float) -> np.ndarray:
    """(V, 3) per-vertex colours in [0, 1] of one person's skin, hair and clothes.

    Shirt (maybe striped), trousers and shoes; sleeves and trouser legs long or short.
    """
    skin = np.clip(_SKIN_TONES[int(rng.integers(len(_SKIN_TONES)))]
                   + rng.normal(0.0, 0.03, 3), 0.0, 1.0)
    hair = np.clip(_HAIR_COLOURS[int(rng.integers(len(_HAIR_COLOURS)))]
                   + rng.normal(0.0, 0.03, 3), 0.0, 1.0)
    shirt = backgrounds.random_colour(rng)
    trousers = backgrounds.random_colour(rng, saturation=(0.0, 0.6), value=(0.1, 0.8))
    shoes = backgrounds.random_colour(rng, saturation=(0.0, 0.4), value=(0.05, 0.6))
    long_sleeves = rng.random() < 0.5
    long_trousers = rng.random() < 0.75
    striped = rng.random() < pattern_prob
    stripe_colour = backgrounds.random_colour(rng)
    stripe_period = rng.uniform(0.04, 0.15)
    num = parts.height.shape[0]
    colours = np.tile(skin, (num, 1))
    p = parts.parts
    upper = p['torso'] | p['upper_arm'] | (p['forearm'] if long_sleeves else False)
    lower = p['pelvis'] | p['thigh'] | (p['shin'] if long_trousers else False)
    shirt_colours = np.tile(shirt, (num, 1))
    if striped:
        stripes = (np.sin(2 * math.pi * parts.height / stripe_period) > 0.0)
        shirt_colours[stripes] = stripe_colour
    colours[upper] = shirt_colours[upper]
    colours[lower] = trousers
    colours[p['shoe']] = shoes
    colours[p['hair']] = hair
    return colours


def sample_light(rng: np.random.Generator) -> LightSpec:
    """A directional light from above and mostly in front, with random strengths."""
    direction = (float(rng.normal(0.0, 0.6)), -float(rng.uniform(0.3, 1.2)),
                 -float(rng.uniform(0.1, 1.0)))
    return LightSpec(direction=direction, ambient=float(rng.uniform(0.25, 0.5)),
                     diffuse=float(rng.uniform(0.45, 0.8)),
                     specular=float(rng.uniform(0.0, 0.2)),
                     shininess=float(rng.uniform(8.0, 40.0)))


# ------------------------------------------------------------------------------- the people
