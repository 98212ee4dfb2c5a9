"""Image files -> uint8 pixel arrays of a fixed raw shape, shared by uploads and predictions.

Decoding is the one place an image enters the house, so an uploaded training image and an image
sent for prediction become the same raw tensor, and then go through the same `Preprocessing`.
"""

from __future__ import annotations

import io
import math
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F", "La"})
DEFAULT_MAX_PIXELS = 4096 * 4096


class ImageDecodeError(ValueError):
    """A file that is not an image PIL can decode fully, with the reason."""


def open_image(source: bytes | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open and fully decode `source`; refuse non-images, truncated files and pixel bombs."""
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(stream)
            width, height = image.size
            if width * height > max_pixels:
                raise ImageDecodeError(
                    f"{width}x{height} pixels is more than the {max_pixels} allowed"
                )
            image.load()
    except ImageDecodeError:
        raise
    except UnidentifiedImageError:
        raise ImageDecodeError("not an image PIL can read (PNG, JPEG, ...)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ImageDecodeError(f"the image does not decode: {error}") from None
    except Image.DecompressionBombWarning as error:
        raise ImageDecodeError(str(error)) from None
    return image


def is_grey(image: Image.Image) -> bool:
    return image.mode in GREY_MODES


def to_raw_pixels(image: Image.Image, raw_shape: tuple[int, ...]) -> torch.Tensor:
    """A decoded image as uint8 of `raw_shape`: (H, W) or (1, H, W) grey, (3, H, W) RGB.

    The mode is converted by channel count and the size resized (bilinear) if it differs."""
    channels = 1 if len(raw_shape) == 2 else raw_shape[0]
    if channels not in (1, 3):
        raise ImageDecodeError(f"models on {channels}-channel inputs take no image files")
    height, width = raw_shape[-2:]
    converted = image.convert("L" if channels == 1 else "RGB")
    if converted.size != (width, height):
        converted = converted.resize((width, height), Image.Resampling.BILINEAR)
    pixels = np.array(converted, dtype=np.uint8)  # a writable copy torch can own
    pixels = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(pixels)).reshape(raw_shape)


def decode_image(
    source: bytes | Path, *, raw_shape: tuple[int, ...], max_pixels: int = DEFAULT_MAX_PIXELS
) -> torch.Tensor:
    """Decode `source` into uint8 pixels of `raw_shape` (see `to_raw_pixels`)."""
    return to_raw_pixels(open_image(source, max_pixels=max_pixels), raw_shape)


def pixels_to_raw(pixels: torch.Tensor, *, scale: float) -> torch.Tensor:
    """8-bit pixels in the raw units of a dataset whose values times `scale` are in [0, 1].

    For 8-bit datasets (scale 1/255) the pixels are the raw values, bit for bit; for others
    (digits: 0-16, scale 1/16) they are rescaled so preprocessing sees the same range."""
    if math.isclose(scale * 255, 1.0, rel_tol=1e-9):
        return pixels
    return pixels.to(torch.float32) / 255 / scale
