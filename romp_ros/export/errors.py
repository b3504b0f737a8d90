"""The error of motion export: bad input files or options, with what to do about them."""

from __future__ import annotations


class MotionExportError(ValueError):
    """A results file or an export option cannot be used; the message names the fix."""
