"""Evaluation protocols: which joints are scored, what the root is, which numbers lead.

Joints are chosen **by name** from the 71 body-model joints
(:mod:`romp_ros.core.body.joint_names`), so predictions and ground truth may carry any joint
list that contains them, in any order. The joint sets:

===============  ===========================================================  ================
joint set        joints (body-model names)                                    root
===============  ===========================================================  ================
``smpl24``       the 24 SMPL joints ``pelvis`` ... ``r_hand``                 ``pelvis``
``h36m_lsp14``   ``h36m_r_ankle`` ... ``h36m_head_top``: the first 14 of the  mid-point of
                 17 Human3.6M-regressor joints, in LSP order; what SPIN /     ``h36m_r_hip``
                 VIBE / ROMP score on 3DPW (``J_regressor_h36m`` then         and
                 ``H36M_TO_J14``)                                             ``h36m_l_hip``
``mupots14``     the 14 of MuPoTS-3D's 17 test joints (MPI-INF-3DHP order)    ``mpii_pelvis``
                 that map to body-model joints (:data:`romp_ros.data.
                 joint_sets.MPI_INF_3DHP_17`): ``lsp_neck``, shoulders,
                 elbows, wrists, ``lsp_*_hip``, knees, ankles, ``mpii_pelvis``
===============  ===========================================================  ================

Protocols (``--protocol``) pick a joint set and the headline numbers; every report carries all
metrics:

* ``smpl24`` (default) and ``3dpw_24``: MPJPE, PA-MPJPE, PVE over the 24 SMPL joints.
* ``3dpw_14``: the same over ``h36m_lsp14``, root-relative at the hip mid-point (VIBE's
  3DPW protocol; PVE stays root-relative at that root).
* ``mupots``: PCK3D at 150 mm and its AUC over 0-150 mm, matched people and all people, on
  ``mupots14``.
* ``agora``: MPJPE and PVE over ``smpl24`` and both divided by the detection F1 (AGORA's
  NMJE and NMVE).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping, Sequence

import numpy as np

from romp_ros.core.body.joint_names import H36M_JOINT_NAMES, SMPL_JOINT_NAMES
from romp_ros.data.joint_sets import MPI_INF_3DHP_17
from romp_ros.evaluation.errors import EvaluationInputError


@dataclass(frozen=True)
class EvalJointSet:
    """The joints one protocol scores.

    Attributes:
        name: identifier written into reports (``joint_set``).
        joints: body-model joint names, in the order of per-joint results.
        root: joints whose mean is the root (root-relative errors, root position error).
        description: one line for reports and docs.
    """

    name: str
    joints: tuple[str, ...]
    root: tuple[str, ...]
    description: str

    def __post_init__(self) -> None:
        if len(set(self.joints)) != len(self.joints):
            raise ValueError(f'{self.name}: duplicate joints')
        missing = [r for r in self.root if r not in self.joints]
        if not self.root or missing:
            raise ValueError(f'{self.name}: root joints {missing or "(none)"} not in the set')

    @property
    def root_index(self) -> tuple[int, ...]:
        """Positions of the root joints within :attr:`joints`."""
        return tuple(self.joints.index(r) for r in self.root)

    def indices(self, names: Sequence[str], what: str) -> np.ndarray:
        """(K,) rows of the set's joints in an array ordered by ``names``.

        Raises:
            EvaluationInputError: a joint of the set is not among ``names`` (``what`` says
                whose names they are: 'the ground truth', 'the predictions').
        """
        lookup = {n: i for i, n in enumerate(names)}
        missing = [j for j in self.joints if j not in lookup]
        if missing:
            more = '...' if len(missing) > 6 else ''
            raise EvaluationInputError(
                f'joint set {self.name} needs joints {missing[:6]}{more}'
                f' that {what} does not have ({len(names)} joints: {list(names)[:4]}...); '
                f'choose a protocol whose joints it carries (--protocol smpl24 needs the 24 SMPL '
                'joints)')
        return np.array([lookup[j] for j in self.joints], dtype=np.int64)


SMPL24 = EvalJointSet('smpl24', SMPL_JOINT_NAMES, ('pelvis',),
                      'the 24 SMPL joints, root-relative at the pelvis')
H36M_LSP14 = EvalJointSet(
    'h36m_lsp14', H36M_JOINT_NAMES[:14], ('h36m_r_hip', 'h36m_l_hip'),
    'the 14 LSP-order joints of the Human3.6M regressor, root-relative at the hip mid-point '
    '(SPIN/VIBE 3DPW protocol)')
MUPOTS14 = EvalJointSet(
    'mupots14', tuple(t for t in MPI_INF_3DHP_17.targets if t is not None), ('mpii_pelvis',),
    "the 14 of MuPoTS-3D's 17 joints that map to body-model joints, root-relative at the "
    'pelvis')

JOINT_SETS: Mapping[str, EvalJointSet] = MappingProxyType(
    {s.name: s for s in (SMPL24, H36M_LSP14, MUPOTS14)})


@dataclass(frozen=True)
class Protocol:
    """A named way of scoring.

    Attributes:
        name: the ``--protocol`` value.
        joint_set: the joints scored.
        headline: report keys shown first in report.md.
        description: one line for reports and docs.
    """

    name: str
    joint_set: EvalJointSet
    headline: tuple[str, ...]
    description: str


_ERRORS = ('mpjpe_mm', 'pa_mpjpe_mm', 'pve_mm')
PROTOCOLS: Mapping[str, Protocol] = MappingProxyType({p.name: p for p in (
    Protocol('smpl24', SMPL24, _ERRORS, 'MPJPE / PA-MPJPE / PVE over the 24 SMPL joints'),
    Protocol('3dpw_24', SMPL24, _ERRORS,
             '3DPW with the 24 SMPL joints (the same numbers as smpl24)'),
    Protocol('3dpw_14', H36M_LSP14, _ERRORS,
             '3DPW with the 14 LSP-order Human3.6M-regressor joints (SPIN/VIBE)'),
    Protocol('mupots', MUPOTS14,
             ('pck3d_150_matched', 'pck3d_150_all', 'auc_matched', 'auc_all'),
             'MuPoTS-3D style PCK3D at 150 mm and AUC over 0-150 mm, matched and all people'),
    Protocol('agora', SMPL24, ('nmje_mm', 'nmve_mm', 'mpjpe_mm', 'pve_mm'),
             'AGORA style: MPJPE and PVE over the 24 SMPL joints, divided by the F1 score'),
)})


def protocol_by_name(name: str) -> Protocol:
    """A protocol by name (ValueError listing the known ones)."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ValueError(f'unknown protocol {name!r}; choose one of {sorted(PROTOCOLS)}') from None
