"""MoNuSeg reader on a two-image folder in the published layout (TIFF + Aperio XML)."""

import numpy as np
import pytest

from keras_sard.data.monuseg import fill_polygon, load_monuseg, parse_aperio_xml

from ._fixtures import (iterate_expecting_error, raises_naming, random_rgb, read_all,
                        save_image, write_corrupt)

HEIGHT, WIDTH = 16, 20
RECT_A = [(1.5, 1.5), (4.5, 1.5), (4.5, 3.5), (1.5, 3.5)]       # rows 2-3, cols 2-4
RECT_B = [(4.5, 1.5), (7.5, 1.5), (7.5, 3.5), (4.5, 3.5)]       # rows 2-3, cols 5-7
TRIANGLE = [(0.5, 6.5), (9.0, 6.5), (0.5, 15.0)]                # c>=1, r>=7, c+r<=15
RECT_D = [(12.5, 9.5), (30.5, 9.5), (30.5, 12.5), (12.5, 12.5)]  # rows 10-12, cols 13-19
RECT_E = [(15.5, 11.5), (17.5, 11.5), (17.5, 14.5), (15.5, 14.5)]  # rows 12-14, cols 16-17


def write_aperio_xml(path, polygons):
    regions = []
    for index, polygon in enumerate(polygons, start=1):
        vertices = "".join(f'<Vertex X="{x}" Y="{y}" Z="0"/>' for x, y in polygon)
        regions.append(f'<Region Id="{index}" Type="0" Zoom="0.5"><Attributes/>'
                       f'<Vertices>{vertices}</Vertices></Region>')
    text = ('<?xml version="1.0"?>\n<Annotations MicronsPerPixel="0.252000">'
            '<Annotation Id="1" Name="" ReadOnly="0"><Attributes><Attribute Name="Description"'
            ' Id="0" Value=""/></Attributes><Regions><RegionAttributeHeaders/>'
            + "".join(regions) + "</Regions><Plots/></Annotation></Annotations>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def expected_masks():
    """Masks of the fixture polygons, written out from their definitions."""
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH]
    first = np.zeros((HEIGHT, WIDTH), np.int32)
    first[2:4, 2:8] = 1                                        # A and B
    first[(cols >= 1) & (rows >= 7) & (cols + rows <= 15)] = 1  # triangle
    first[10:13, 13:20] = 1                                    # D, clipped at the border
    first[12:15, 16:18] = 1                                    # E
    separated = first.copy()
    separated[2:4, 4] = 0        # A touches B: A's last column becomes the line
    separated[12, 16:18] = 0     # D and E overlap
    second = np.zeros((HEIGHT, WIDTH), np.int32)
    second[5:9, 3:7] = 1
    return first, separated, second


@pytest.fixture
def monuseg_dir(tmp_path, rng):
    train = tmp_path / "MoNuSeg 2018 Training Data"
    images = [random_rgb(rng, HEIGHT, WIDTH) for _ in range(2)]
    save_image(train / "Tissue Images" / "TCGA-AA-0001-01Z-00-DX1.tif", images[0])
    save_image(train / "Tissue Images" / "TCGA-BB-0002-01Z-00-DX1.tif", images[1])
    write_aperio_xml(train / "Annotations" / "TCGA-AA-0001-01Z-00-DX1.xml",
                     [RECT_A, RECT_B, TRIANGLE, RECT_D, RECT_E])
    write_aperio_xml(train / "Annotations" / "TCGA-BB-0002-01Z-00-DX1.xml",
                     [[(2.5, 4.5), (6.5, 4.5), (6.5, 8.5), (2.5, 8.5)], [(1, 1), (2, 2)]])
    test = tmp_path / "MoNuSegTestData"
    save_image(test / "TCGA-CC-0003-01Z-00-DX1.tif", images[1])
    write_aperio_xml(test / "TCGA-CC-0003-01Z-00-DX1.xml", [RECT_A])
    return tmp_path, images


def test_train_split_masks_images_and_counts(monuseg_dir):
    root, images = monuseg_dir
    data = load_monuseg(root, "train", validate=True)
    assert (data.num_examples, data.num_classes, data.ignore_label) == (2, 2, 255)
    assert data.class_names == ("background", "nucleus") and data.split == "train"
    examples = read_all(data)
    assert len(examples) == 2
    first, _, second = expected_masks()
    np.testing.assert_array_equal(examples[0][0], images[0])
    np.testing.assert_array_equal(examples[0][1], first)
    np.testing.assert_array_equal(examples[1][1], second)  # 2-vertex region skipped
    assert examples[0][1].dtype == np.int32


def test_separate_touching_cuts_overlaps_and_contacts(monuseg_dir):
    root, _ = monuseg_dir
    _, separated, _ = expected_masks()
    mask = read_all(load_monuseg(root, "train", separate_touching=True))[0][1]
    np.testing.assert_array_equal(mask, separated)


def test_test_split_flat_folder_and_split_folder_as_data_dir(monuseg_dir):
    root, images = monuseg_dir
    data = load_monuseg(root, "test")
    assert data.num_examples == 1
    image, mask = read_all(data)[0]
    np.testing.assert_array_equal(image, images[1])
    assert mask[2:4, 2:5].all() and mask.sum() == 6
    direct = load_monuseg(root / "MoNuSeg 2018 Training Data", "train")
    assert direct.num_examples == 2


def test_fill_polygon_matches_the_point_in_polygon_rule():
    rows, cols = np.mgrid[0:12, 0:12]
    triangle = np.array([(0.5, 0.5), (9.0, 0.5), (0.5, 9.0)])
    expected = (cols >= 1) & (rows >= 1) & (cols + rows <= 9)
    np.testing.assert_array_equal(fill_polygon(triangle, 12, 12), expected)
    assert not fill_polygon(triangle + 50, 12, 12).any()


def test_missing_annotation_is_named(monuseg_dir):
    root, _ = monuseg_dir
    (root / "MoNuSeg 2018 Training Data" / "Annotations" / "TCGA-BB-0002-01Z-00-DX1.xml").unlink()
    with raises_naming("TCGA-BB-0002-01Z-00-DX1.tif", FileNotFoundError):
        load_monuseg(root, "train")


def test_missing_folder_and_bad_split(tmp_path):
    with raises_naming(tmp_path / "absent", FileNotFoundError):
        load_monuseg(tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="MoNuSeg 2018 Training Data"):
        load_monuseg(tmp_path, "train")
    with pytest.raises(ValueError, match="split"):
        load_monuseg(tmp_path, "val")


def test_corrupt_image_and_bad_xml_fail_when_read(monuseg_dir):
    root, _ = monuseg_dir
    folder = root / "MoNuSeg 2018 Training Data"
    bad_image = write_corrupt(folder / "Tissue Images" / "TCGA-BB-0002-01Z-00-DX1.tif")
    data = load_monuseg(root, "train")
    assert data.num_examples == 2
    iterate_expecting_error(data, bad_image)
    with raises_naming(bad_image, ValueError):
        load_monuseg(root, "train", validate=True)

    xml = folder / "Annotations" / "TCGA-AA-0001-01Z-00-DX1.xml"
    xml.write_text("<Annotations><Region>")
    with raises_naming(xml, ValueError):
        parse_aperio_xml(xml)


def test_annotation_of_another_image_is_refused(monuseg_dir):
    root, _ = monuseg_dir
    xml = root / "MoNuSegTestData" / "TCGA-CC-0003-01Z-00-DX1.xml"
    write_aperio_xml(xml, [[(500.5, 600.5), (520.5, 600.5), (520.5, 630.5)]])
    iterate_expecting_error(load_monuseg(root, "test"), xml)
