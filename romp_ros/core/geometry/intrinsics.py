"""Camera intrinsics: validation, the reference's field-of-view default, CLI parsing.

Pixel convention: u to the right, v down, in pixels of the ORIGINAL image, with the image
spanning [0, w] x [0, h] (pixel centres at i + 0.5). This is the convention of the
reference's projections ((p + 1) * L / 2 - pad). A ROS CameraInfo K uses pixel centres at
integer coordinates; the half-pixel difference is below the networks' accuracy and ignored.
"""

from __future__ import annotations

import logging
import math

from romp_ros.core.geometry.camera_model import CameraModel, CameraModelError
from romp_ros.core.results import CameraIntrinsics

_LOG = logging.getLogger(__name__)

DEFAULT_FOV_DEG = 60.0
# A principal point this many image sizes outside the image is almost surely a unit or
# convention error (e.g. K of another resolution), though off-axis crops can be legitimate.
_FAR_OUTSIDE_FRACTION = 0.5


class IntrinsicsError(ValueError):
    """Unusable camera intrinsics; the message names the offending value."""


def validate_intrinsics(fx: float, fy: float, cx: float, cy: float,
                        image_size: tuple[int, int] | None = None,
                        source: str = 'camera', distortion_model: str = 'none',
                        d: tuple[float, ...] = ()) -> CameraIntrinsics:
    """Check a camera (K, and optionally its lens) and return it as :class:`CameraIntrinsics`.

    Errors (raised): a focal length that is zero, negative, NaN or infinite; a principal
    point that is NaN or infinite; an image size that is not positive; an unknown distortion
    model or coefficients that do not fit it (the model's name is normalised: 'fisheye' ->
    'equidistant', '' -> 'none'; plumb_bob's 4-value D gets its k3 = 0).

    Warning only (logged, the intrinsics are returned): a principal point more than half the
    image size outside the image. Off-centre principal points are legitimate for crops and
    shifted lenses, so this does not stop the estimator, but it usually means the K belongs to
    another resolution than the images; translations solved with it will be off.

    Args:
        fx, fy: focal lengths, pixels.
        cx, cy: principal point, pixels.
        image_size: (height, width) of the images the K applies to, or None to skip the
            principal point check.
        source: recorded in the result ('camera' or 'fov').
        distortion_model, d: the lens, as in ``sensor_msgs/CameraInfo``.

    Returns:
        :class:`CameraIntrinsics` with float fields.

    Raises:
        IntrinsicsError: see above.
    """
    values = {}
    for name, value in (('fx', fx), ('fy', fy), ('cx', cx), ('cy', cy)):
        try:
            values[name] = float(value)
        except (TypeError, ValueError) as err:
            raise IntrinsicsError(f'{name}={value!r} is not a number') from err
    for name in ('fx', 'fy'):
        focal = values[name]
        if not math.isfinite(focal) or focal <= 0.0:
            raise IntrinsicsError(
                f'focal length {name}={focal} must be a finite positive number of pixels')
    for name in ('cx', 'cy'):
        if not math.isfinite(values[name]):
            raise IntrinsicsError(f'principal point {name}={values[name]} must be finite')
    if image_size is not None:
        height, width = image_size
        if height <= 0 or width <= 0:
            raise IntrinsicsError(f'image size (h, w)={tuple(image_size)} must be positive')
        margin_x, margin_y = _FAR_OUTSIDE_FRACTION * width, _FAR_OUTSIDE_FRACTION * height
        cx_val, cy_val = values['cx'], values['cy']
        if not (-margin_x <= cx_val <= width + margin_x
                and -margin_y <= cy_val <= height + margin_y):
            _LOG.warning(
                'principal point (cx, cy)=(%.1f, %.1f) lies far outside the %dx%d image; '
                'is the camera matrix for another resolution?', cx_val, cy_val, width, height)
    model, coefficients = _checked_lens(distortion_model, d)
    return CameraIntrinsics(fx=values['fx'], fy=values['fy'], cx=values['cx'],
                            cy=values['cy'], source=source, distortion_model=model,
                            d=coefficients)


def _checked_lens(distortion_model: str, d) -> tuple[str, tuple[float, ...]]:
    """The normalised (model, coefficients) of a lens; 'none' for a pinhole with D = 0."""
    try:
        coefficients = tuple(float(v) for v in d)
    except (TypeError, ValueError) as err:
        raise IntrinsicsError(f'distortion coefficients {d!r} are not numbers') from err
    if distortion_model in ('', 'none', 'plumb_bob', 'rational_polynomial') \
            and not any(coefficients):
        return 'none', ()
    try:
        lens = CameraModel(1, 1, (1.0, 1.0, 0.0, 0.0), distortion_model, coefficients)
    except CameraModelError as err:
        raise IntrinsicsError(str(err)) from err
    return lens.distortion_model, lens.d


def intrinsics_from_camera(camera: CameraModel, source: str = 'camera') -> CameraIntrinsics:
    """The :class:`CameraIntrinsics` (K and lens) of a :class:`CameraModel`."""
    fx, fy, cx, cy = camera.k
    return validate_intrinsics(fx, fy, cx, cy, source=source,
                               distortion_model=camera.distortion_model, d=camera.d)


def focal_from_fov(side_px: float, fov_deg: float = DEFAULT_FOV_DEG) -> float:
    """Focal length (pixels) of a pinhole whose field of view ``fov_deg`` spans ``side_px``."""
    if not 0.0 < fov_deg < 180.0:
        raise IntrinsicsError(f'field of view {fov_deg} deg must be in (0, 180)')
    return (side_px / 2.0) / math.tan(math.radians(fov_deg) / 2.0)


def default_intrinsics(image_h: int, image_w: int,
                       fov_deg: float = DEFAULT_FOV_DEG) -> CameraIntrinsics:
    """The camera the reference assumes when none is known.

    The reference solves translations for a pinhole with a ``fov_deg`` field of view across
    the padded square network input, principal point at the square's centre (443.4 px over
    512 px for 60 degrees). Mapped back to the original image of side L = max(h, w): the same
    field of view across L pixels, and the square's centre minus the padding offsets:

        f = (L / 2) / tan(fov / 2),  cx = L / 2 - (L - w) // 2,  cy = L / 2 - (L - h) // 2

    which is the image centre, up to half a pixel when the padding is odd.

    Args:
        image_h, image_w: original image size, pixels.
        fov_deg: field of view across the longer side.

    Returns:
        :class:`CameraIntrinsics` with ``source='fov'``.
    """
    if image_h <= 0 or image_w <= 0:
        raise IntrinsicsError(f'image size (h, w)=({image_h}, {image_w}) must be positive')
    side = max(image_h, image_w)
    focal = focal_from_fov(side, fov_deg)
    left, top = (side - image_w) // 2, (side - image_h) // 2
    return CameraIntrinsics(fx=focal, fy=focal, cx=side / 2.0 - left, cy=side / 2.0 - top,
                            source='fov')


def parse_intrinsics_arg(text: str) -> CameraIntrinsics:
    """Parse a command-line ``'fx,fy,cx,cy'`` (pixels) into validated intrinsics.

    Raises:
        IntrinsicsError: wrong number of fields, non-numbers or invalid values.
    """
    fields = [part.strip() for part in str(text).split(',')]
    if len(fields) != 4 or any(not part for part in fields):
        raise IntrinsicsError(
            f"intrinsics {text!r} must be four comma-separated numbers 'fx,fy,cx,cy' (pixels)")
    return validate_intrinsics(*fields)
