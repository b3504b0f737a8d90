"""The report's plots (matplotlib, Agg backend; files only, no display needed).

=============================  ==========================================================
file                           shows
=============================  ==========================================================
eval_per_joint.png             MPJPE of each joint of the joint set (matched people)
eval_error_vs_distance.png     MPJPE, signed depth error and recall against distance
eval_error_over_time.png       per-frame mean MPJPE and root error over time
eval_missed_false.png          missed and false people per frame over time
eval_track_timeline.png        per ground-truth id: when it was matched, to which predicted
                               id (colour, and a label where it changes), when it was missed
eval_birds_eye.png             top view (x right, z forward): true trajectories (lines)
                               against the matched predictions (dots), false positives (x)
=============================  ==========================================================

Time plots show up to :data:`MAX_SEQUENCE_PANELS` sequences (the first ones), one panel each.
Without matplotlib, :func:`write_plots` raises :class:`PlottingUnavailableError` and the
report says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from romp_ros.evaluation.summary import Report

MAX_SEQUENCE_PANELS = 4
_DPI = 110


class PlottingUnavailableError(RuntimeError):
    """matplotlib is missing; the message says how to get it."""


def write_plots(report: Report, out_dir: Path) -> list[Path]:
    """Write every plot of the module docstring into ``out_dir``; returns their paths."""
    plt = _pyplot()
    out_dir = Path(out_dir)
    writers = (('eval_per_joint.png', _per_joint),
               ('eval_error_vs_distance.png', _error_vs_distance),
               ('eval_error_over_time.png', _error_over_time),
               ('eval_missed_false.png', _missed_false),
               ('eval_track_timeline.png', _track_timeline),
               ('eval_birds_eye.png', _birds_eye))
    written = []
    for name, draw in writers:
        fig = draw(plt, report)
        path = out_dir / name
        fig.savefig(path, dpi=_DPI)
        plt.close(fig)
        written.append(path)
    return written


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as err:
        raise PlottingUnavailableError(
            'matplotlib is not installed (pip install matplotlib); report.json, report.md and '
            'frames.jsonl are complete without the plots') from err
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


# -- helpers --------------------------------------------------------------------------------


def _empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha='center', va='center', transform=ax.transAxes, color='0.4')


def _sequences(report: Report) -> list[int]:
    return list(range(min(len(report.results), MAX_SEQUENCE_PANELS)))


def _seq_title(report: Report, index: int) -> str:
    name = report.results[index].name
    return Path(name).name if name else f'sequence {index}'


def _t0(report: Report, index: int) -> int:
    stamps = [r['stamp_ns'] for r in report.results[index].rows if r['stamp_ns'] is not None]
    return min(stamps) if stamps else 0


def _panels(plt: Any, count: int, height: float = 2.6, width: float = 9.0) -> tuple[Any, list]:
    fig, axes = plt.subplots(max(count, 1), 1, figsize=(width, 0.8 + height * max(count, 1)),
                             squeeze=False, constrained_layout=True)
    return fig, [a[0] for a in axes]


# tab10 without its grey (index 7): grey marks misses and false positives
_PALETTE = (0, 1, 2, 3, 4, 5, 6, 8, 9)


def _id_color(plt: Any, ident: int) -> Any:
    return plt.get_cmap('tab10')(_PALETTE[int(ident) % len(_PALETTE)])


# -- plots ----------------------------------------------------------------------------------


def _per_joint(plt: Any, report: Report) -> Any:
    per_joint = report.summary['per_joint_mpjpe_mm']
    names = list(per_joint)
    values = np.array([np.nan if per_joint[n] is None else per_joint[n] for n in names])
    fig, ax = plt.subplots(figsize=(7.0, 0.8 + 0.22 * len(names)), constrained_layout=True)
    if np.isfinite(values).any():
        ax.barh(np.arange(len(names)), np.nan_to_num(values), color='tab:blue')
        ax.set_yticks(np.arange(len(names)), names, fontsize=8)
        ax.invert_yaxis()
    else:
        _empty(ax, 'no matched person')
    ax.set_xlabel('MPJPE, root-relative (mm)')
    ax.set_title(f"Per-joint error ({report.summary['joint_set']}, "
                 f"{report.summary['people']['matched']} matched people)")
    ax.grid(axis='x', alpha=0.3)
    return fig


def _error_vs_distance(plt: Any, report: Report) -> Any:
    people = report.people
    fig, axes = plt.subplots(1, 3, figsize=(13.0, 3.8), constrained_layout=True)
    rows = report.summary['by_distance']
    edges = [r['range_m'][0] for r in rows] + [np.inf]
    labels = [f'{lo:g}+' if hi is None else f'{lo:g}-{hi:g}'
              for lo, hi in (r['range_m'] for r in rows)]
    matched = people.get('matched', np.zeros(0, bool))
    dist = people.get('distance_m', np.zeros(0))
    for ax, key, ylabel in ((axes[0], 'mpjpe', 'MPJPE (mm)'),
                            (axes[1], 'depth_error', 'depth error, predicted - true (mm)')):
        if not matched.any():
            _empty(ax, 'no matched person')
        else:
            ax.scatter(dist[matched], people[key][matched], s=4, alpha=0.25, color='tab:blue',
                       label='people')
            # per bin: mean and standard deviation, drawn at the bin's mean distance
            stats = []
            for lo, hi in zip(edges[:-1], edges[1:], strict=True):
                sel = matched & (dist >= lo) & (dist < hi) & np.isfinite(people[key])
                if sel.any():
                    stats.append((dist[sel].mean(), people[key][sel].mean(),
                                  people[key][sel].std()))
            x, mean, std = (np.array(v) for v in zip(*stats, strict=True))
            ax.errorbar(x, mean, yerr=std, fmt='o-', color='tab:red', capsize=3,
                        label='bin mean +- std')
            ax.legend(fontsize=8)
        ax.set_xlabel('distance of the true pelvis (m)')
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[1].axhline(0.0, color='0.3', lw=0.8)
    recall = [np.nan if r['recall'] is None else r['recall'] for r in rows]
    x = np.arange(len(rows))
    axes[2].bar(x, recall, color='tab:green')
    for xi, row in zip(x, rows, strict=True):
        if row['ground_truth']:
            axes[2].text(xi, 0.02, f"{row['ground_truth']}\n-{row['missed']}", ha='center',
                         va='bottom', fontsize=7, color='white' if row['recall'] else 'k')
    axes[2].set_xticks(x, labels, fontsize=8, rotation=30)
    axes[2].set_ylim(0, 1.05)
    axes[2].set_xlabel('distance of the true pelvis (m)')
    axes[2].set_ylabel('recall (labels: people, -missed)')
    axes[2].grid(axis='y', alpha=0.3)
    fig.suptitle('Error and detection against distance')
    return fig


def _per_frame(report: Report, index: int, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(stamps, mean of ``key`` over the matched people of each frame) of one sequence."""
    people = report.people
    if not len(people.get('matched', ())):
        return np.zeros(0), np.zeros(0)
    mine = (people['sequence'] == index) & people['matched']
    stamps = people['stamp_ns'][mine]
    values = people[key][mine]
    frames, inverse = np.unique(stamps, return_inverse=True)
    sums = np.bincount(inverse, weights=np.nan_to_num(values), minlength=len(frames))
    counts = np.bincount(inverse, weights=np.isfinite(values), minlength=len(frames))
    return frames, np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _error_over_time(plt: Any, report: Report) -> Any:
    seqs = _sequences(report)
    fig, axes = _panels(plt, len(seqs))
    for ax, index in zip(axes, seqs, strict=False):
        t0 = _t0(report, index)
        for key, label, color in (('mpjpe', 'MPJPE', 'tab:blue'),
                                  ('root_error', 'root error', 'tab:orange')):
            stamps, values = _per_frame(report, index, key)
            if len(stamps):
                ax.plot((stamps - t0) / 1e9, values, '.-', ms=3, lw=0.8, color=color,
                        label=label)
        if ax.lines:
            ax.legend(fontsize=8)
        else:
            _empty(ax, 'no matched person')
        ax.set_ylabel('mm (frame mean)')
        ax.set_title(_seq_title(report, index), fontsize=9)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel('time since the first frame (s)')
    return fig


def _missed_false(plt: Any, report: Report) -> Any:
    seqs = _sequences(report)
    fig, axes = _panels(plt, len(seqs))
    for ax, index in zip(axes, seqs, strict=False):
        t0 = _t0(report, index)
        rows = [r for r in report.results[index].rows
                if r['stamp_ns'] is not None and r.get('ground_truth') is not None]
        t = np.array([(r['stamp_ns'] - t0) / 1e9 for r in rows])
        missed = np.array([r.get('missed') or 0 for r in rows])
        false = np.array([r.get('false_positives') or 0 for r in rows])
        dropped = np.array([r['status'] == 'skipped' for r in rows], dtype=bool)
        if len(t):
            ax.step(t, missed, where='mid', color='tab:red', label='missed')
            ax.step(t, -false, where='mid', color='tab:purple', label='false positives (down)')
            if dropped.any():
                ax.plot(t[dropped], missed[dropped], 'v', color='k', ms=4,
                        label='frame without prediction')
            ax.legend(fontsize=8, loc='upper left', bbox_to_anchor=(1.0, 1.0))
            ax.set_ylim(top=max(1, missed.max()) * 1.12)
        else:
            _empty(ax, 'no ground-truth frame')
        ax.axhline(0, color='0.3', lw=0.6)
        ax.set_ylabel('people per frame')
        ax.set_title(_seq_title(report, index), fontsize=9)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel('time since the first frame (s)')
    return fig


def _track_timeline(plt: Any, report: Report) -> Any:
    seqs = _sequences(report)
    fig, axes = _panels(plt, len(seqs))
    people = report.people
    for ax, index in zip(axes, seqs, strict=False):
        t0 = _t0(report, index)
        mine = people['sequence'] == index if len(people.get('matched', ())) else \
            np.zeros(0, bool)
        ids = np.unique(people['gt_id'][mine]) if mine.any() else np.zeros(0, np.int64)
        for row, ident in enumerate(ids):
            sel = mine & (people['gt_id'] == ident)
            t = (people['stamp_ns'][sel] - t0) / 1e9
            hit = people['matched'][sel]
            colors = [_id_color(plt, p) for p in people['pred_id'][sel][hit]]
            ax.scatter(t[hit], np.full(hit.sum(), row), c=colors, s=10, marker='s')
            ax.scatter(t[~hit], np.full((~hit).sum(), row), color='0.55', s=14,
                       marker='|', linewidths=0.8)
            # label each run of one predicted id with that id (a new label = an id change)
            pred_ids = people['pred_id'][sel][hit]
            if not pred_ids.size:
                continue  # never matched: only the grey marks
            starts = np.flatnonzero(np.r_[True, pred_ids[1:] != pred_ids[:-1]])
            for k in starts:
                ax.text(t[hit][k], row + 0.22, str(pred_ids[k]), fontsize=6,
                        color=_id_color(plt, pred_ids[k]))
        if len(ids):
            ax.set_yticks(np.arange(len(ids)), [f'id {i}' for i in ids], fontsize=7)
            ax.set_ylim(-0.8, len(ids) - 0.2)
        else:
            _empty(ax, 'no ground-truth person')
        ax.set_title(f'{_seq_title(report, index)}: colour and label = the predicted id it '
                     'was matched to, grey | = missed', fontsize=9)
        ax.grid(axis='x', alpha=0.3)
    axes[-1].set_xlabel('time since the first frame (s)')
    return fig


def _birds_eye(plt: Any, report: Report) -> Any:
    seqs = _sequences(report)
    cols = min(len(seqs), 2) or 1
    rows_n = (len(seqs) + cols - 1) // cols or 1
    fig, axes = plt.subplots(rows_n, cols, figsize=(5.5 * cols, 5.0 * rows_n), squeeze=False,
                             constrained_layout=True)
    people, fps = report.people, report.false_positives
    for k in range(rows_n * cols):
        ax = axes[k // cols][k % cols]
        if k >= len(seqs):
            ax.axis('off')
            continue
        index = seqs[k]
        mine = people['sequence'] == index if len(people.get('matched', ())) else \
            np.zeros(0, bool)
        for ident in (np.unique(people['gt_id'][mine]) if mine.any() else ()):
            sel = mine & (people['gt_id'] == ident)
            order = np.argsort(people['stamp_ns'][sel], kind='stable')
            gt = people['gt_root'][sel][order]
            color = _id_color(plt, ident)
            ax.plot(gt[:, 0], gt[:, 2], '-', color=color, lw=1.2)
            hit = people['matched'][sel][order]
            pred = people['pred_root'][sel][order][hit]
            ax.plot(pred[:, 0], pred[:, 2], '.', color=color, ms=3, alpha=0.6)
        if len(fps.get('stamp_ns', ())):
            fp = fps['root'][fps['sequence'] == index]
            ax.plot(fp[:, 0], fp[:, 2], 'x', color='0.5', ms=4, label='false positive')
        ax.plot([0], [0], 'k^', ms=8, label='camera')
        ax.plot([], [], '-', color='0.2', label='true (per id)')
        ax.plot([], [], '.', color='0.2', label='predicted (matched)')
        ax.legend(fontsize=7, loc='upper left')
        ax.set_xlabel('x, right (m)')
        ax.set_ylabel('z, forward (m)')
        ax.set_aspect('equal', adjustable='datalim')
        ax.set_title(_seq_title(report, index), fontsize=9)
        ax.grid(alpha=0.3)
    fig.suptitle("Bird's-eye view: ground truth against prediction")
    return fig
