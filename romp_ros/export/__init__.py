"""Motion export: ``romp-ros infer`` results -> glTF 2.0 (.glb), BVH, OBJ / PLY, JSON.

Builds on ``core`` only. Entry point: :func:`export_motion` with :class:`ExportOptions`;
formats, axes and units are documented in docs/export.md.
"""

from romp_ros.export.errors import MotionExportError
from romp_ros.export.export_motion import FORMATS, ExportOptions, ExportSummary, export_motion

__all__ = ['ExportOptions', 'ExportSummary', 'FORMATS', 'MotionExportError', 'export_motion']
