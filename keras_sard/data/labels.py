"""Turning raw annotation values into class ids, and instance borders.

Mapping is strict: a raw value or colour that the dataset does not define
raises an error naming the file, instead of silently becoming background.
"""

from __future__ import annotations

from typing import Dict, Mapping, Sequence, Tuple

import numpy as np

from keras_sard.data.errors import BadDataError


def lookup_labels(raw: np.ndarray, table: np.ndarray, path, *, invalid: int = -1
                  ) -> np.ndarray:
    """Map raw label values to class ids through ``table`` (``class = table[raw]``).

    Entries equal to ``invalid`` mark values that must not occur; a value
    outside the table or marked invalid raises `BadDataError` (a ``ValueError``)
    naming ``path``.

    Example:

    >>> import numpy as np
    >>> table = np.array([255, 0, 1])          # 0 -> ignore, 1 -> 0, 2 -> 1
    >>> lookup_labels(np.array([[0, 1, 2]]), table, "m.png").tolist()
    [[255, 0, 1]]
    """
    raw = np.asarray(raw)
    if raw.size and (raw.min() < 0 or raw.max() >= len(table)):
        values = np.unique(raw[(raw < 0) | (raw >= len(table))])[:10].tolist()
        raise BadDataError(
            path, f"mask holds values {values} outside the known range [0, {len(table) - 1}].")
    mapped = np.asarray(table, np.int64)[raw]
    if (mapped == invalid).any():
        values = np.unique(raw[mapped == invalid])[:10].tolist()
        raise BadDataError(path, f"mask holds values {values} that have no class.")
    return mapped.astype(np.int32)


def colors_to_labels(rgb: np.ndarray, palette: Mapping[Tuple[int, int, int], int], path
                     ) -> np.ndarray:
    """Map an RGB mask to class ids with ``palette`` ({(r, g, b): class_id}).

    A pixel whose colour is not in the palette raises `BadDataError` naming
    ``path`` and the first unknown colours (no silent background).

    Example:

    >>> import numpy as np
    >>> rgb = np.array([[[0, 0, 0], [0, 0, 63]]], np.uint8)
    >>> colors_to_labels(rgb, {(0, 0, 0): 0, (0, 0, 63): 1}, "m.png").tolist()
    [[0, 1]]
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] not in (3, 4):
        raise BadDataError(path, f"colour mask of shape {rgb.shape}; expected (H, W, 3) RGB.")
    rgb = rgb[..., :3].astype(np.int64)
    codes = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    keys = np.array([(r << 16) | (g << 8) | b for (r, g, b) in palette], np.int64)
    values = np.array(list(palette.values()), np.int64)
    order = np.argsort(keys)
    keys, values = keys[order], values[order]
    position = np.clip(np.searchsorted(keys, codes), 0, len(keys) - 1)
    known = keys[position] == codes
    if not known.all():
        unknown = np.unique(codes[~known])[:5]
        colours = [((c >> 16) & 255, (c >> 8) & 255, c & 255) for c in unknown.tolist()]
        raise BadDataError(
            path, f"colour mask with {int((~known).sum())} pixels of colours not in the "
            f"palette, e.g. {colours}; known colours: {sorted(palette)}.")
    return values[position].astype(np.int32)


def palette_dict(colors: Sequence[Tuple[int, int, int]]) -> Dict[Tuple[int, int, int], int]:
    """``{colour: class_id}`` for a list of colours in class order.

    Example:

    >>> palette_dict([(0, 0, 0), (255, 0, 0)])
    {(0, 0, 0): 0, (255, 0, 0): 1}
    """
    mapping = {}
    for index, colour in enumerate(colors):
        colour = tuple(int(v) for v in colour)
        if colour in mapping:
            raise ValueError(f"Colour {colour} appears twice in the palette.")
        mapping[colour] = index
    return mapping


def touching_borders(instance: np.ndarray) -> np.ndarray:
    """Pixels of an instance map (0 = none) that touch a different instance.

    A pixel is marked when its right or lower 4-neighbour belongs to another
    instance; setting the marked pixels to background leaves every instance
    4-disconnected from the others with a 1-px line.

    Example:

    >>> import numpy as np
    >>> touching_borders(np.array([[1, 1, 2, 2]])).astype(int).tolist()
    [[0, 1, 0, 0]]
    """
    instance = np.asarray(instance)
    line = np.zeros(instance.shape, bool)
    a, b = instance[:, :-1], instance[:, 1:]
    line[:, :-1] |= (a > 0) & (b > 0) & (a != b)
    a, b = instance[:-1], instance[1:]
    line[:-1] |= (a > 0) & (b > 0) & (a != b)
    return line
