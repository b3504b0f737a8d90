"""The evaluation's user-facing error."""

from __future__ import annotations


class EvaluationInputError(ValueError):
    """A bag, topic, dataset, file or flag that cannot be evaluated.

    The message names the problem and the fix in one line (the CLI prints it without a
    traceback).
    """
