"""MoNuSeg (Multi-Organ Nucleus Segmentation, MICCAI 2018) from its published folders.

Download from https://monuseg.grand-challenge.org/Data/ and unzip both archives
into one folder::

    data_dir/
      MoNuSeg 2018 Training Data/          # split="train" (37 images)
        Tissue Images/TCGA-...-01Z-00-DX1.tif
        Annotations/TCGA-...-01Z-00-DX1.xml
      MoNuSegTestData/                     # split="test" (14 images)
        TCGA-...-01Z-00-DX1.tif
        TCGA-...-01Z-00-DX1.xml

``data_dir`` may also be one split's folder itself. Images are 1000x1000 RGB
H&E TIFFs; each annotation is an Aperio ImageScope XML file with one
``<Region>`` per nucleus whose ``<Vertices><Vertex X=".." Y=".."/>`` list is
the nucleus outline in pixel coordinates.

Masks are binary (0 background, 1 nucleus): every polygon's interior is
filled (pixel ``(row, col)`` is inside when the point ``x=col, y=row`` lies
inside the polygon, the ``skimage.draw.polygon`` convention). With
``separate_touching=True``, pixels shared by two nuclei and a 1-px line where
two nuclei touch are set to background, keeping touching nuclei apart.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import List

import numpy as np

from keras_sard.data.base import IGNORE_LABEL, SegmentationData, from_files
from keras_sard.data.decode import image_size, read_image
from keras_sard.data.errors import BadDataError, MissingDataError
from keras_sard.data.files import PathLike, find_child_dir, pair_files, require_dir
from keras_sard.data.labels import touching_borders

CLASS_NAMES = ("background", "nucleus")
SPLIT_FOLDERS = {
    "train": ("MoNuSeg 2018 Training Data", "MoNuSegTrainingData", "MoNuSeg2018TrainingData",
              "train", "training"),
    "test": ("MoNuSegTestData", "MoNuSeg 2018 Test Data", "MoNuSegTestingData", "test",
             "testing"),
}


def parse_aperio_xml(path: PathLike) -> List[np.ndarray]:
    """Polygons of an Aperio ImageScope XML file, each ``(K, 2)`` float ``(x, y)``.

    Regions with fewer than three vertices (no area) are skipped. Raises
    `BadDataError` (a ``ValueError``) naming the file when it is not parseable
    XML or a vertex lacks numeric X/Y.

    Example:

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "a.xml")
    >>> _ = open(path, "w").write(
    ...     '<Annotations><Annotation><Regions><Region Id="1"><Vertices>'
    ...     '<Vertex X="1" Y="1"/><Vertex X="5" Y="1"/><Vertex X="5" Y="4"/>'
    ...     '</Vertices></Region></Regions></Annotation></Annotations>')
    >>> [p.tolist() for p in parse_aperio_xml(path)]
    [[[1.0, 1.0], [5.0, 1.0], [5.0, 4.0]]]
    """
    try:
        root = ElementTree.parse(path).getroot()
    except FileNotFoundError:
        raise MissingDataError(path, "annotation file not found.") from None
    except ElementTree.ParseError as error:
        raise BadDataError(path, f"cannot be parsed as annotation XML: {error}.") from error
    polygons = []
    for region in root.iter("Region"):
        vertices = []
        for vertex in region.iter("Vertex"):
            try:
                vertices.append((float(vertex.attrib["X"]), float(vertex.attrib["Y"])))
            except (KeyError, ValueError):
                raise BadDataError(
                    path, f"annotation region {region.attrib.get('Id', '?')} has a "
                    f"Vertex without numeric X and Y: {vertex.attrib}.") from None
        if len(vertices) >= 3:
            polygons.append(np.asarray(vertices, np.float64))
    return polygons


def fill_polygon(vertices: np.ndarray, height: int, width: int) -> np.ndarray:
    """Boolean (height, width) mask of pixels inside a polygon (even-odd rule).

    Pixel ``(row, col)`` is inside when the point ``(x=col, y=row)`` is; the
    polygon may extend beyond the image. Vectorised over the polygon's
    bounding box.

    Example:

    >>> import numpy as np
    >>> square = np.array([[0.5, 0.5], [2.5, 0.5], [2.5, 2.5], [0.5, 2.5]])
    >>> fill_polygon(square, 4, 4).astype(int).tolist()
    [[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
    """
    vertices = np.asarray(vertices, np.float64)
    mask = np.zeros((height, width), bool)
    xs, ys = vertices[:, 0], vertices[:, 1]
    row0, row1 = max(int(np.ceil(ys.min())), 0), min(int(np.floor(ys.max())), height - 1)
    col0, col1 = max(int(np.ceil(xs.min())), 0), min(int(np.floor(xs.max())), width - 1)
    if row0 > row1 or col0 > col1:
        return mask
    rows = np.arange(row0, row1 + 1, dtype=np.float64)[None, :]  # (1, R)
    cols = np.arange(col0, col1 + 1, dtype=np.float64)[None, None, :]  # (1, 1, C)
    x1, y1 = xs[:, None], ys[:, None]  # (E, 1)
    x2, y2 = np.roll(xs, -1)[:, None], np.roll(ys, -1)[:, None]
    straddles = (y1 > rows) != (y2 > rows)  # (E, R)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = x1 + (rows - y1) * (x2 - x1) / (y2 - y1)
    crossings = straddles[..., None] & (cols < x_cross[..., None])  # (E, R, C)
    mask[row0:row1 + 1, col0:col1 + 1] = crossings.sum(axis=0) % 2 == 1
    return mask


def rasterize_nuclei(polygons, height: int, width: int,
                     separate_touching: bool = False) -> np.ndarray:
    """Binary int32 mask (1 = nucleus) from nucleus polygons.

    With ``separate_touching``, pixels covered by two or more polygons, and a
    1-px line where two nuclei touch, become background.

    Example:

    >>> import numpy as np
    >>> a = np.array([[0.5, 0.5], [2.5, 0.5], [2.5, 1.5], [0.5, 1.5]])
    >>> b = a + [2.0, 0.0]
    >>> rasterize_nuclei([a, b], 2, 6).tolist()
    [[0, 0, 0, 0, 0, 0], [0, 1, 1, 1, 1, 0]]
    >>> rasterize_nuclei([a, b], 2, 6, separate_touching=True).tolist()
    [[0, 0, 0, 0, 0, 0], [0, 1, 0, 1, 1, 0]]
    """
    instance = np.zeros((height, width), np.int32)
    cover = np.zeros((height, width), np.int32)
    for index, polygon in enumerate(polygons, start=1):
        inside = fill_polygon(polygon, height, width)
        instance[inside] = index
        cover += inside
    mask = (cover > 0).astype(np.int32)
    if separate_touching:
        mask[(cover > 1) | touching_borders(np.where(cover == 1, instance, 0))] = 0
    return mask


def _split_root(data_dir: Path, split: str) -> Path:
    if split not in SPLIT_FOLDERS:
        raise ValueError(f"MoNuSeg split must be one of {sorted(SPLIT_FOLDERS)}, got {split!r}.")
    found = find_child_dir(data_dir, SPLIT_FOLDERS[split])
    if found is not None:
        return found
    # data_dir may be the split folder itself.
    if find_child_dir(data_dir, ["Tissue Images"]) is not None or any(data_dir.glob("*.xml")):
        return data_dir
    raise MissingDataError(
        data_dir, f"no MoNuSeg {split} folder: expected one of "
        f"{list(SPLIT_FOLDERS[split])} (e.g. '{data_dir / SPLIT_FOLDERS[split][0]}'), or "
        f"data_dir to be that folder. Download from https://monuseg.grand-challenge.org/Data/.")


def list_monuseg(data_dir: PathLike, split: str = "train"):
    """Sorted ``(tif_path, xml_path)`` pairs of a MoNuSeg split (see the module docstring).

    Example:

    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp()) / "MoNuSegTestData"
    >>> root.mkdir()
    >>> (root / "a.tif").touch(); (root / "a.xml").touch()
    >>> [pathlib.Path(p).name for p in list_monuseg(root.parent, "test")[0]]
    ['a.tif', 'a.xml']
    """
    data_dir = require_dir(data_dir, "MoNuSeg data",
                           "Download from https://monuseg.grand-challenge.org/Data/.")
    root = _split_root(data_dir, split)
    image_dir = find_child_dir(root, ["Tissue Images", "TissueImages", "images"]) or root
    xml_dir = find_child_dir(root, ["Annotations"]) or root
    return pair_files(image_dir, xml_dir, image_suffixes=(".tif", ".tiff", ".png"),
                      mask_suffixes=(".xml",))


def load_monuseg(data_dir: PathLike, split: str = "train", *,
                 separate_touching: bool = False, validate: bool = False) -> SegmentationData:
    """MoNuSeg as :class:`SegmentationData` (binary: background, nucleus).

    Args:
        data_dir: folder holding the unzipped archives (see the module docstring).
        split: ``"train"`` (MoNuSeg 2018 Training Data) or ``"test"`` (MoNuSegTestData).
        separate_touching: set overlaps and 1-px lines between touching nuclei
            to background.
        validate: read every image header and XML now (size checks happen
            when each example is read otherwise).

    Example:

    >>> data = load_monuseg("/data/monuseg", "train")        # doctest: +SKIP
    >>> data.num_examples, data.class_names                  # doctest: +SKIP
    (37, ('background', 'nucleus'))
    """
    pairs = list_monuseg(data_dir, split)

    def load_example(image_path, xml_path):
        image = read_image(image_path)
        height, width = image.shape[:2]
        polygons = parse_aperio_xml(xml_path)
        _check_inside(polygons, height, width, xml_path, image_path)
        return image, rasterize_nuclei(polygons, height, width, separate_touching)

    if validate:
        for image_path, xml_path in pairs:
            height, width = image_size(image_path)
            _check_inside(parse_aperio_xml(xml_path), height, width, xml_path, image_path)
    return from_files(pairs, load_example, name="monuseg", split=split,
                      class_names=CLASS_NAMES, ignore_label=IGNORE_LABEL)


def _check_inside(polygons, height, width, xml_path, image_path):
    """An annotation whose polygons all miss the image belongs to another image."""
    if not polygons:
        return
    points = np.concatenate(polygons)
    inside = ((points[:, 0] >= -1) & (points[:, 0] <= width) &
              (points[:, 1] >= -1) & (points[:, 1] <= height))
    if inside.mean() < 0.5:
        raise BadDataError(
            xml_path, f"annotation with {100 * (1 - inside.mean()):.0f}% of its vertices "
            f"outside its image '{image_path}' ({height}x{width}); the files do not match.")
