"""Write a :class:`~romp_ros.evaluation.summary.Report`: report.json, report.md, frames.jsonl.

* ``report.json``: the summary (schema in docs/evaluation.md), plus the plots written.
* ``frames.jsonl``: one object per frame of every sequence, scored or skipped with its reason
  (every ground-truth frame, plus prediction frames no ground truth took and unreadable
  messages), with each person's match and errors.
* ``report.md``: the same for people: headline numbers, accounting, tables by distance and
  sequence, the plots.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
import tempfile
from typing import Any

from romp_ros.evaluation.summary import Report

LOG = logging.getLogger(__name__)
REPORT_JSON = 'report.json'
REPORT_MD = 'report.md'
FRAMES_JSONL = 'frames.jsonl'


def write_report(report: Report, out_dir: str | os.PathLike, plots: bool = True) -> Path:
    """Write every file of the report into ``out_dir`` (created); returns report.json's path."""
    from romp_ros.evaluation.plots import PlottingUnavailableError, write_plots

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = dict(report.summary)
    if plots:
        try:
            written = write_plots(report, out)
            summary['plots'] = [p.name for p in written]
        except PlottingUnavailableError as err:
            LOG.warning('plots skipped: %s', err)
            summary['plots'] = {'skipped': str(err)}
    else:
        summary['plots'] = {'skipped': 'plots were not requested'}
    _atomic_write(out / FRAMES_JSONL, ''.join(
        json.dumps(_clean(row), separators=(',', ':')) + '\n'
        for result in report.results for row in result.rows))
    _atomic_write(out / REPORT_JSON, json.dumps(_clean(summary), indent=1) + '\n')
    _atomic_write(out / REPORT_MD, markdown(summary))
    LOG.info('report: %s (%d frames, %d scored)', out / REPORT_JSON,
             summary['frames']['total'], summary['frames']['scored'])
    return out / REPORT_JSON


def markdown(summary: dict[str, Any]) -> str:
    """report.md of a summary."""
    lines = ['# Evaluation report', '',
             f"Protocol **{summary['protocol']}**: {summary['protocol_description']}. "
             f"Joint set `{summary['joint_set']}` ({summary['joint_set_description']}).", '',
             f"Pairing: {summary['pairing']}. Matching: {summary['matching']}.", '',
             '## Headline', '', '| metric | value |', '|---|---|']
    for key in ('mpjpe_mm', 'pa_mpjpe_mm', 'pve_mm', 'root_error_mm', 'depth_abs_error_mm',
                'depth_bias_mm', 'pck3d_150_matched', 'pck3d_150_all', 'auc_matched',
                'auc_all', 'pck2d', 'keypoint_error_px', 'nmje_mm', 'nmve_mm'):
        if key in summary:
            lines.append(f'| {key} | {_fmt(summary[key])} |')
    det = summary['detection']
    lines.append(f"| detection precision / recall / F1 | {_fmt(det['precision'])} / "
                 f"{_fmt(det['recall'])} / {_fmt(det['f1'])} |")
    tracking = summary.get('tracking', {})
    if tracking.get('available'):
        lines.append(f"| tracking HOTA / MOTA / IDF1 / ID switches | {_fmt(tracking['hota'])} / "
                     f"{_fmt(tracking['mota'])} / {_fmt(tracking['idf1'])} / "
                     f"{tracking['id_switches']} |")
    else:
        lines.append(f"| tracking | not computed: {tracking.get('reason', '')} |")
    frames, people = summary['frames'], summary['people']
    lines += ['', '## Accounting', '',
              f"{frames['total']} frames: {frames['scored']} scored, "
              f"{frames['total'] - frames['scored']} skipped.", '',
              '| skipped because | frames |', '|---|---|']
    lines += [f'| {k} | {v} |' for k, v in frames['skipped'].items()] or ['| (none) | 0 |']
    lines += ['', f"People: {people['ground_truth']} ground truth, {people['matched']} matched, "
              f"{people['missed']} missed, {people['false_positives']} false positives.", '',
              '## By distance', '',
              '| distance (m) | ground truth | recall | missed | false pos. | MPJPE (mm) | '
              'root error (mm) | depth abs / bias (mm) |', '|---|---|---|---|---|---|---|---|']
    for row in summary['by_distance']:
        lo, hi = row['range_m']
        span = f'{lo:g}-{hi:g}' if hi is not None else f'>= {lo:g}'
        lines.append(f"| {span} | {row['ground_truth']} | {_fmt(row['recall'])} | "
                     f"{row['missed']} | {row['false_positives']} | {_fmt(row['mpjpe_mm'])} | "
                     f"{_fmt(row['root_error_mm'])} | {_fmt(row['depth_abs_error_mm'])} / "
                     f"{_fmt(row['depth_bias_mm'])} |")
    if len(summary['per_sequence']) > 1:
        lines += ['', '## Sequences', '', '| sequence | frames scored / total | F1 | MPJPE (mm) |',
                  '|---|---|---|---|']
        for seq in summary['per_sequence']:
            lines.append(f"| {seq['name']} | {seq['frames']['scored']} / "
                         f"{seq['frames']['total']} | {_fmt(seq['detection']['f1'])} | "
                         f"{_fmt(seq['mpjpe_mm'])} |")
    if summary.get('notes'):
        lines += ['', '## Notes', ''] + [f'- {n}' for n in summary['notes']]
    plots = summary.get('plots')
    if isinstance(plots, list) and plots:
        lines += ['', '## Plots', ''] + [f'![{Path(p).stem}]({p})' for p in plots]
    elif isinstance(plots, dict):
        lines += ['', f"Plots skipped: {plots.get('skipped')}"]
    return '\n'.join(lines) + '\n'


def _fmt(value: Any) -> str:
    if value is None:
        return 'n/a'
    if isinstance(value, float):
        return f'{value:.3f}' if abs(value) < 10 else f'{value:.1f}'
    return str(value)


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python numbers, tuples -> lists."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, 'item') and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix='.tmp')
    try:
        with os.fdopen(fd, 'w', encoding='utf-8') as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
