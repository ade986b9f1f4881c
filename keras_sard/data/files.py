"""Finding dataset folders and pairing image files with their annotation files.

All readers list files here, so that every one fails the same way: a missing
folder, an empty folder, an image without its annotation or an annotation
without its image raises at listing time a
`keras_sard.data.errors.MissingDataError` (a ``FileNotFoundError``) naming
the path, and never gives a silently shorter dataset.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple, Union

from keras_sard.data.errors import BadDataError, MissingDataError

PathLike = Union[str, os.PathLike]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
"""File endings accepted as images when a reader does not name its own."""

_MAX_LISTED = 5


def require_dir(path: PathLike, what: str, hint: str = "") -> Path:
    """Return ``path`` as a ``Path``; a `MissingDataError` (a ``FileNotFoundError``)
    naming it unless it is a folder.

    Example:

    >>> import tempfile
    >>> require_dir(tempfile.gettempdir(), "temporary").is_dir()
    True
    """
    path = Path(path)
    if not path.is_dir():
        found = "is a file, not a folder" if path.exists() else "does not exist"
        raise MissingDataError(path, f"{what} folder {found}.{' ' + hint if hint else ''}")
    return path


def find_child_dir(parent: Path, names: Iterable[str]) -> Optional[Path]:
    """The first sub-folder of ``parent`` whose name matches one of ``names``.

    Matching ignores case, spaces, ``_`` and ``-`` (``"Tissue Images"`` matches
    ``"tissue_images"``). Returns ``None`` when there is none.

    Example:

    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "Tissue Images").mkdir()
    >>> find_child_dir(root, ["tissue_images"]).name
    'Tissue Images'
    """
    wanted = {_folded(n) for n in names}
    if not parent.is_dir():
        return None
    for child in sorted(parent.iterdir()):
        if child.is_dir() and _folded(child.name) in wanted:
            return child
    return None


def _folded(name: str) -> str:
    return "".join(c for c in name.lower() if c not in " _-")


def _ends_with(name: str, suffixes: Sequence[str]) -> Optional[str]:
    lower = name.lower()
    for suffix in suffixes:
        if lower.endswith(suffix.lower()):
            return suffix
    return None


def list_files(folder: PathLike, suffixes: Sequence[str], *, recursive: bool = False,
               exclude_suffixes: Sequence[str] = ()) -> List[Path]:
    """Sorted files in ``folder`` ending (case-insensitively) in one of ``suffixes``.

    Files ending in one of ``exclude_suffixes`` are left out (e.g. masks that
    share a folder with their images). Hidden files are skipped.

    Example:

    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for n in ("a.png", "a_mask.png", "b.txt"): (root / n).touch()
    >>> [p.name for p in list_files(root, [".png"], exclude_suffixes=["_mask.png"])]
    ['a.png']
    """
    folder = Path(folder)
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    found = []
    for path in candidates:
        if path.name.startswith(".") or not path.is_file():
            continue
        if _ends_with(path.name, exclude_suffixes):
            continue
        if _ends_with(path.name, suffixes):
            found.append(path)
    return sorted(found)


def _key(path: Path, root: Path, suffix: str) -> str:
    relative = path.relative_to(root).as_posix()
    return relative[: len(relative) - len(suffix)]


def pair_files(
    image_dir: PathLike,
    mask_dir: PathLike,
    *,
    image_suffixes: Sequence[str] = IMAGE_SUFFIXES,
    mask_suffixes: Sequence[str] = (".png",),
    recursive: bool = False,
    image_exclude: Sequence[str] = (),
    allow_unpaired_masks: bool = False,
) -> List[Tuple[str, str]]:
    """Pair each image with its annotation by file stem; raise on any unpaired file.

    The stem is the path relative to the folder minus the matched suffix, so
    ``image_dir/aachen/x_leftImg8bit.png`` pairs with
    ``mask_dir/aachen/x_gtFine_labelIds.png`` for
    ``image_suffixes=["_leftImg8bit.png"]``, ``mask_suffixes=["_gtFine_labelIds.png"]``.

    Raises `MissingDataError` (a ``FileNotFoundError``) when a folder is
    missing, when there is no image, when an image has no annotation (naming
    the file expected), or when an annotation has no image (unless
    ``allow_unpaired_masks``); `BadDataError` (a ``ValueError``) when two
    images share a stem (``a.png`` and ``a.jpg``).

    Returns:
        sorted list of ``(image_path, mask_path)`` strings.

    Example:

    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "images").mkdir(); (root / "masks").mkdir()
    >>> (root / "images" / "a.jpg").touch(); (root / "masks" / "a.png").touch()
    >>> [(pathlib.Path(i).name, pathlib.Path(m).name)
    ...  for i, m in pair_files(root / "images", root / "masks")]
    [('a.jpg', 'a.png')]
    """
    image_dir = require_dir(image_dir, "Image")
    mask_dir = require_dir(mask_dir, "Mask")
    images = list_files(image_dir, image_suffixes, recursive=recursive,
                        exclude_suffixes=image_exclude)
    if not images:
        raise MissingDataError(
            image_dir, f"no image files ending in {list(image_suffixes)}"
            f"{' (searched recursively)' if recursive else ''}.")
    masks = list_files(mask_dir, mask_suffixes, recursive=recursive)

    image_by_key = {}
    for path in images:
        key = _key(path, image_dir, _ends_with(path.name, image_suffixes))
        if key in image_by_key:
            raise BadDataError(
                path, f"two images share the name '{key}': '{image_by_key[key]}' and "
                "this one; keep one.")
        image_by_key[key] = path
    mask_by_key = {}
    for path in masks:
        key = _key(path, mask_dir, _ends_with(path.name, mask_suffixes))
        if key in mask_by_key:
            raise BadDataError(
                path, f"two masks share the name '{key}': '{mask_by_key[key]}' and "
                "this one; keep one.")
        mask_by_key[key] = path

    missing = [key for key in image_by_key if key not in mask_by_key]
    if missing:
        first = missing[0]
        expected = mask_dir / (first + mask_suffixes[0])
        listed = ", ".join(str(image_by_key[k]) for k in missing[:_MAX_LISTED])
        raise MissingDataError(
            image_by_key[first],
            f"image without a mask: expected '{expected}'. {len(missing)} of "
            f"{len(image_by_key)} images lack a mask ending in {list(mask_suffixes)}: "
            f"{listed}{' ...' if len(missing) > _MAX_LISTED else ''}")
    extra = [key for key in mask_by_key if key not in image_by_key]
    if extra and not allow_unpaired_masks:
        listed = ", ".join(str(mask_by_key[k]) for k in extra[:_MAX_LISTED])
        raise MissingDataError(
            mask_by_key[extra[0]],
            f"mask without an image: {len(extra)} masks have no image in '{image_dir}' "
            f"(expected an image ending in {list(image_suffixes)} with the same name): "
            f"{listed}{' ...' if len(extra) > _MAX_LISTED else ''}")
    return [(str(image_by_key[k]), str(mask_by_key[k])) for k in sorted(image_by_key)]


def split_subset(pairs: Sequence[Tuple[str, str]], split: str, *,
                 val_fraction: float, key=None) -> List[Tuple[str, str]]:
    """A deterministic train/val subset for datasets published without a split.

    Each pair goes to ``"val"`` when the CRC32 of its key (default: the image
    file name) modulo 1000 is below ``val_fraction * 1000``, else to
    ``"train"``; ``"all"`` keeps every pair. The assignment depends only on the
    file name, so it is the same on every machine and does not change when
    files are added.

    Example:

    >>> pairs = [(f"img{i}.tif", f"img{i}-mask.tif") for i in range(100)]
    >>> train = split_subset(pairs, "train", val_fraction=0.2)
    >>> val = split_subset(pairs, "val", val_fraction=0.2)
    >>> len(train) + len(val), set(train) & set(val)
    (100, set())
    """
    import zlib

    if split == "all":
        return list(pairs)
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train', 'val' or 'all', got {split!r}.")
    if not 0.0 <= val_fraction <= 1.0:
        raise ValueError(f"val_fraction must lie in [0, 1], got {val_fraction}.")
    key = key or (lambda pair: Path(pair[0]).name)
    threshold = int(round(val_fraction * 1000))
    chosen = []
    for pair in pairs:
        in_val = zlib.crc32(key(pair).encode("utf-8")) % 1000 < threshold
        if in_val == (split == "val"):
            chosen.append(pair)
    if not chosen:
        raise ValueError(
            f"split={split!r} with val_fraction={val_fraction} selects none of the "
            f"{len(pairs)} examples.")
    return chosen
