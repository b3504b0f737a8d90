"""`romp-ros prepare-models`: convert the licence-gated SMPL/SMIL downloads once."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

LOG = logging.getLogger(__name__)


def run(args: argparse.Namespace) -> int:
    """Run the sub-command; returns the exit status."""
    from romp_ros.core.body.prepare import prepare_models
    report = prepare_models(smpl=args.smpl, models_dir=args.models_dir, smil=args.smil,
                            extra=args.extra)
    LOG.info('%s', report)
    return 0


def add_parser(sub) -> None:
    """Register the sub-command on the ``romp-ros`` sub-parsers."""
    p = sub.add_parser(
        'prepare-models', help='convert the licence-gated SMPL/SMIL downloads once',
        description='Convert the official SMPL (and optionally SMIL and the extra joint '
                    'regressors) into the safe .npz format the estimator loads. Pickles are '
                    'read with a restricted unpickler that allows only array classes.')
    p.add_argument('--smpl', type=Path, required=True,
                   help='SMPL_NEUTRAL.pkl (SMPL v1.1.0) or the official SMPL zip')
    p.add_argument('--smil', type=Path, default=None,
                   help='smil_web.pkl, the SMIL infant model (BEV only)')
    p.add_argument('--extra', type=Path, default=None,
                   help='folder with J_regressor_extra.npy, J_regressor_h36m.npy, '
                        'smpl_kid_template.npy (71 joints and BEV children)')
    p.add_argument('--models-dir', type=Path, required=True, help='output folder')
    p.set_defaults(func=run)
