"""OpenCV drawing helpers of the 2D views (text labels); OpenCV is imported on first use."""

from __future__ import annotations

import numpy as np


def cv2_module():
    """The cv2 module, or ImportError naming the package to install."""
    try:
        import cv2
    except ImportError as err:  # OpenCV is the `io` extra, not a core dependency
        raise ImportError('drawing overlays and plots needs OpenCV: pip install '
                          'opencv-python-headless (or romp-ros[io])') from err
    return cv2


def put_label(canvas: np.ndarray, text: str, anchor: tuple[float, float],
              color: tuple[int, int, int], scale: float = 0.5) -> None:
    """Draw ``text`` on a filled box of ``color`` centred above ``anchor`` (u, v), in place.

    The text is black or white, whichever reads better on the box.
    """
    cv2 = cv2_module()
    thickness = max(1, int(round(scale * 2)))
    (width, height), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    u = int(round(anchor[0] - width / 2))
    v = int(round(anchor[1]))
    cv2.rectangle(canvas, (u - 3, v - height - base - 3), (u + width + 3, v), color, -1)
    ink = (0, 0, 0) if sum(color) > 380 else (255, 255, 255)
    cv2.putText(canvas, text, (u, v - base - 1), cv2.FONT_HERSHEY_SIMPLEX, scale, ink,
                thickness, cv2.LINE_AA)
