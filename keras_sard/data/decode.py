"""Reading image and annotation files into NumPy, with errors that name the file
(`keras_sard.data.errors.MissingDataError` for a file that is not there,
`keras_sard.data.errors.BadDataError` for one that cannot be read).

Images become ``uint8`` (H, W, 3): grey is repeated to three channels, an alpha
channel is dropped, and deeper images (16-bit, 32-bit, float) are stretched per
image between their 1st and 99th percentiles (see :func:`to_uint8`). Label
images keep their raw values; :func:`lookup_labels` and :func:`colors_to_labels`
turn raw values or colours into class ids, refusing values they do not know.
"""

from __future__ import annotations

import contextlib
from typing import Tuple

import numpy as np
from PIL import Image

from keras_sard.data.errors import BadDataError, MissingDataError

DEFAULT_PERCENTILES = (1.0, 99.0)
"""Per-image percentiles mapped to 0 and 255 when an image is deeper than 8 bits."""


def _open(path) -> Image.Image:
    try:
        image = Image.open(path)
        image.load()
    except FileNotFoundError:
        raise MissingDataError(path, "file not found.") from None
    except Exception as error:  # PIL raises several types for broken files.
        raise BadDataError(
            path, f"cannot be decoded as an image ({type(error).__name__}: {error}); "
            "the file may be corrupt or truncated.") from error
    return image


def _frames(image: Image.Image, path) -> np.ndarray:
    """All frames (TIFF pages) of ``image`` as an array; one frame gives (H, W[, C])."""
    count = getattr(image, "n_frames", 1)
    if count == 1:
        return np.asarray(image)
    pages = []
    for index in range(count):
        image.seek(index)
        page = np.asarray(image)
        if page.ndim != 2 or (pages and page.shape != pages[0].shape):
            raise BadDataError(
                path, f"has {count} pages that are not same-size single-channel "
                f"planes (page {index} is {page.shape}); cannot read it as one image.")
        pages.append(page)
    return np.stack(pages, axis=-1)


def read_array(path) -> np.ndarray:
    """Decode ``path`` (PNG, JPEG, TIFF incl. 16-bit and multi-page, BMP) as stored.

    Palette ('P') images give their palette indices, multi-page TIFFs give
    pages as channels. Raises `MissingDataError` (a ``FileNotFoundError``) or
    `BadDataError` (a ``ValueError``) naming the file.

    Example:

    >>> import tempfile, os, numpy as np
    >>> from PIL import Image
    >>> path = os.path.join(tempfile.mkdtemp(), "m.png")
    >>> Image.fromarray(np.full((2, 3), 7, np.uint8)).save(path)
    >>> read_array(path).shape, int(read_array(path)[0, 0])
    ((2, 3), 7)
    """
    image = _open(path)
    array = _frames(image, path)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("="))
    return array


def to_uint8(array: np.ndarray, percentiles: Tuple[float, float] = DEFAULT_PERCENTILES
             ) -> np.ndarray:
    """Return ``array`` as ``uint8``; deeper data is stretched per image.

    ``uint8`` and ``bool`` pass through (bool as 0/255). Any other dtype is
    mapped linearly so that the ``percentiles`` (default 1st and 99th, over all
    channels) go to 0 and 255, then clipped: this is what makes dim 16-bit
    fluorescence (DAPI, ssDNA) visible without one hot pixel compressing the
    rest. A constant image becomes zeros.

    Example:

    >>> import numpy as np
    >>> x = np.linspace(0, 4000, 101).astype(np.uint16)[None, :]
    >>> y = to_uint8(x)
    >>> y.dtype, int(y.min()), int(y.max())
    (dtype('uint8'), 0, 255)
    """
    if array.dtype == np.uint8:
        return array
    if array.dtype == bool:
        return array.astype(np.uint8) * 255
    data = array.astype(np.float64)
    low, high = np.percentile(data, percentiles)
    if not np.isfinite(low) or not np.isfinite(high) or high <= low:
        return np.zeros(array.shape, np.uint8)
    scaled = (data - low) * (255.0 / (high - low))
    return np.clip(np.round(scaled), 0, 255).astype(np.uint8)


def read_image(path, percentiles: Tuple[float, float] = DEFAULT_PERCENTILES) -> np.ndarray:
    """Decode an image file to ``uint8`` (H, W, 3) (see the module docstring).

    Example:

    >>> import tempfile, os, numpy as np
    >>> from PIL import Image
    >>> path = os.path.join(tempfile.mkdtemp(), "grey.png")
    >>> Image.fromarray(np.zeros((4, 5), np.uint8)).save(path)
    >>> read_image(path).shape
    (4, 5, 3)
    """
    image = _open(path)
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif image.mode in ("LA", "PA"):
        image = image.convert("L")
    elif image.mode in ("CMYK", "YCbCr", "LAB", "HSV", "RGBX", "1"):
        image = image.convert("RGB")
    array = _frames(image, path)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("="))
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3:
        raise BadDataError(path, f"image of shape {array.shape}; expected (H, W[, C]).")
    channels = array.shape[-1]
    if channels == 4:
        array = array[..., :3]
    elif channels == 2:
        array = np.concatenate([array, np.zeros_like(array[..., :1])], axis=-1)
    elif channels not in (1, 3):
        raise BadDataError(
            path, f"image with {channels} channels; expected 1 (grey), 2, 3 (RGB) "
            "or 4 (RGBA). Convert it to RGB first.")
    array = to_uint8(array, percentiles)
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return np.ascontiguousarray(array)


def read_label_image(path) -> np.ndarray:
    """Decode a single-channel label image (class ids or instance ids) as stored.

    Raises `BadDataError` (a ``ValueError``) naming the file when it holds colour; use
    :func:`read_array` and ``labels.colors_to_labels`` for colour-coded masks.
    An RGB file whose three channels are equal is accepted as grey.

    Example:

    >>> import tempfile, os, numpy as np
    >>> from PIL import Image
    >>> path = os.path.join(tempfile.mkdtemp(), "m.png")
    >>> Image.fromarray(np.eye(3, dtype=np.uint8)).save(path)
    >>> read_label_image(path).tolist()
    [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    """
    array = read_array(path)
    if array.ndim == 3:
        if array.shape[-1] in (3, 4) and (
                np.array_equal(array[..., 0], array[..., 1])
                and np.array_equal(array[..., 0], array[..., 2])):
            array = array[..., 0]
        elif array.shape[-1] == 1:
            array = array[..., 0]
        else:
            raise BadDataError(
                path, f"label image with {array.shape[-1]} differing channels; "
                "expected a single-channel image of class ids.")
    return array


@contextlib.contextmanager
def _header(path):
    """``path`` opened without decoding its pixels, for what its header says;
    an error while opening or reading it names the file (`MissingDataError`,
    `BadDataError`)."""
    try:
        with Image.open(path) as image:
            yield image
    except FileNotFoundError:
        raise MissingDataError(path, "file not found.") from None
    except Exception as error:
        raise BadDataError(
            path, f"cannot be read as an image ({type(error).__name__}: {error}); the "
            "file may be corrupt.") from error


def image_size(path) -> Tuple[int, int]:
    """(height, width) of an image file from its header only (no pixel decoding).

    Example:

    >>> import tempfile, os, numpy as np
    >>> from PIL import Image
    >>> path = os.path.join(tempfile.mkdtemp(), "a.png")
    >>> Image.fromarray(np.zeros((4, 5), np.uint8)).save(path)
    >>> image_size(path)
    (4, 5)
    """
    with _header(path) as image:
        width, height = image.size
    return height, width


_GREY_MODES = ("1", "L", "LA", "PA", "I", "F")


def image_channels(path) -> int:
    """Channels of an image file as :func:`read_image` finds them, from its header.

    1 for grey (any depth, with or without alpha), 3 for colour (RGB, RGBA,
    palette, CMYK...), and the page count for a multi-page TIFF of
    single-channel pages. Only the header (and a TIFF's page directory) is
    read; raises `MissingDataError` (a ``FileNotFoundError``) or `BadDataError`
    (a ``ValueError``) naming the file.

    Example:

    >>> import tempfile, os, numpy as np
    >>> from PIL import Image
    >>> root = tempfile.mkdtemp()
    >>> Image.fromarray(np.zeros((4, 5), np.uint16)).save(os.path.join(root, "g.png"))
    >>> Image.fromarray(np.zeros((4, 5, 3), np.uint8)).save(os.path.join(root, "c.jpg"))
    >>> image_channels(os.path.join(root, "g.png")), image_channels(os.path.join(root, "c.jpg"))
    (1, 3)
    """
    with _header(path) as image:
        mode = image.mode
        pages = getattr(image, "n_frames", 1)
    grey = mode in _GREY_MODES or mode.startswith("I;")
    if pages > 1 and grey:
        return int(pages)
    return 1 if grey else 3

