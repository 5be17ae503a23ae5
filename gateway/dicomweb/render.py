"""Rendered images and thumbnails of stored frames: ``image/jpeg`` or ``image/png`` (Pillow).

One frame is decoded (``Backend.frames.decoded``: the imaging source's decoders, any stored
transfer syntax pydicom can decode), then, for monochrome data, the Modality LUT (Rescale Slope
and Intercept, PS3.3 C.11.1) and a VOI window (PS3.3 C.11.2.1.2: linear, linear-exact or sigmoid)
map it to 8 bits: the ``window`` parameter's, else the instance's first Window Center/Width, else
its minimum and maximum; MONOCHROME1 is inverted. Colour data are scaled to 8 bits.

Query parameters (PS3.18 §8.3.5.1): ``window={center},{width},{function}``,
``viewport={vw},{vh}[,{sx},{sy},{sw},{sh}]`` (the source region, then scaled to fit the viewport
keeping its aspect ratio), ``quality`` (1-100, JPEG). Thumbnails (PS3.18 §10.4.1.1.5 "Thumbnail
Resources") are renderings fitted into :data:`THUMBNAIL` pixels unless a viewport is given.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from gateway.dicomweb.http import DicomWebError
from gateway.dicomweb.media import MediaRange

THUMBNAIL = (128, 128)
DEFAULT_QUALITY = 90
FUNCTIONS = ("linear", "linear-exact", "sigmoid")


@dataclass(frozen=True, slots=True, kw_only=True)
class Rendering:
    """The rendering parameters of one request."""

    media: str = "image/jpeg"
    window: tuple[float, float, str] | None = None
    viewport: tuple[int, ...] | None = None
    quality: int = DEFAULT_QUALITY


def _numbers(name: str, text: str, count: Sequence[int]) -> list[float]:
    parts = text.split(",")
    if len(parts) not in count:
        raise DicomWebError(400, f"{name} takes {' or '.join(map(str, count))} values")
    try:
        return [float(p) for p in parts]
    except ValueError:
        raise DicomWebError(400, f"{name}: {text!r} holds something other than numbers") from None


def parameters(
    params: Mapping[str, Sequence[str]], ranges: Sequence[MediaRange], *, thumbnail: bool
) -> Rendering:
    """Read the rendering parameters and choose the image type. Raises DicomWebError (400, 406)."""
    media = next((m for r in ranges for m in ("image/jpeg", "image/png") if r.matches(m)), None)
    if media is None:
        raise DicomWebError(406, "rendered images are offered as image/jpeg or image/png")
    window = None
    if "window" in params:
        parts = params["window"][-1].split(",")
        values = _numbers("window", ",".join(parts[:2]), (2,))
        function = parts[2].strip().lower() if len(parts) > 2 else "linear"
        if function not in FUNCTIONS or len(parts) > 3 or values[1] <= 0:
            raise DicomWebError(
                400, "window is {center},{width}[,linear|linear-exact|sigmoid], width > 0"
            )
        window = (values[0], values[1], function)
    viewport = None
    if "viewport" in params:
        numbers = _numbers("viewport", params["viewport"][-1], (2, 6))
        if any(n < 0 for n in numbers) or numbers[0] < 1 or numbers[1] < 1:
            raise DicomWebError(400, "viewport sizes must be positive")
        viewport = tuple(int(n) for n in numbers)
    quality = DEFAULT_QUALITY
    if "quality" in params:
        value = _numbers("quality", params["quality"][-1], (1,))[0]
        if not 1 <= value <= 100:
            raise DicomWebError(400, "quality is between 1 and 100")
        quality = int(value)
    if thumbnail and viewport is None:
        viewport = THUMBNAIL
    return Rendering(media=media, window=window, viewport=viewport, quality=quality)


def _voi(
    pixels: np.ndarray[Any, Any], center: float, width: float, function: str
) -> np.ndarray[Any, Any]:
    """PS3.3 C.11.2.1.2.1 (linear), C.11.2.1.3.2 (linear-exact), C.11.2.1.3.1 (sigmoid)."""
    if function == "linear-exact":
        out = (pixels - center) / width + 0.5
    elif function == "sigmoid":
        out = 1.0 / (1.0 + np.exp(-4.0 * (pixels - center) / width))
    else:
        out = (pixels - (center - 0.5)) / (width - 1 if width > 1 else 1) + 0.5
    return np.clip(out * 255.0, 0, 255)


def to_image(array: np.ndarray[Any, Any], header: Any, rendering: Rendering) -> Image.Image:
    """An 8-bit Pillow image of a decoded frame."""
    photometric = str(header.get("PhotometricInterpretation", "MONOCHROME2"))
    if array.ndim == 3:  # colour, already RGB from the decoder
        top = float(2 ** int(header.get("BitsStored", 8) or 8) - 1)
        rgb = np.clip(array.astype(np.float64) * (255.0 / top), 0, 255).astype(np.uint8)
        return Image.fromarray(rgb, "RGB")
    pixels = array.astype(np.float64)
    slope = float(header.get("RescaleSlope", 1) or 1)
    pixels = pixels * slope + float(header.get("RescaleIntercept", 0) or 0)
    if rendering.window is not None:
        center, width, function = rendering.window
    else:
        center, width, function = _default_window(header, pixels)
    gray = _voi(pixels, center, width, function)
    if photometric == "MONOCHROME1":
        gray = 255.0 - gray
    return Image.fromarray(gray.astype(np.uint8), "L")


def _default_window(header: Any, pixels: np.ndarray[Any, Any]) -> tuple[float, float, str]:
    centers, widths = header.get("WindowCenter"), header.get("WindowWidth")
    if centers is not None and widths is not None:
        center = float(centers[0] if _multi(centers) else centers)
        width = float(widths[0] if _multi(widths) else widths)
        if width > 0:
            function = str(header.get("VOILUTFunction", "LINEAR") or "LINEAR").lower()
            return (
                center,
                width,
                function.replace("_", "-") if function != "linear_exact" else "linear-exact",
            )
    low, high = float(pixels.min()), float(pixels.max())
    return (low + high) / 2.0, max(high - low, 1.0), "linear-exact"


def _multi(value: Any) -> bool:
    return isinstance(value, list | tuple) or type(value).__name__ == "MultiValue"


def fit(image: Image.Image, viewport: tuple[int, ...] | None) -> Image.Image:
    """Crop to the source region (sx, sy, sw, sh) and scale into (vw, vh), aspect kept."""
    if viewport is None:
        return image
    if len(viewport) == 6:
        sx, sy, sw, sh = viewport[2:]
        if sw and sh:
            image = image.crop((sx, sy, sx + sw, sy + sh))
    vw, vh = viewport[:2]
    scale = min(vw / image.width, vh / image.height)
    size = (max(1, math.floor(image.width * scale)), max(1, math.floor(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def encode(image: Image.Image, rendering: Rendering) -> bytes:
    out = io.BytesIO()
    if rendering.media == "image/png":
        image.save(out, format="PNG")
    else:
        image.save(out, format="JPEG", quality=rendering.quality)
    return out.getvalue()
