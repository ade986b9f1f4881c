"""CellBinDB reader: modality/sample folders, 16-bit scaling, binary masks, splits."""

import numpy as np
import pytest

from keras_sard.data.cellbin import load_cellbin
from keras_sard.data.decode import to_uint8

from ._fixtures import iterate_expecting_error, raises_naming, random_rgb, read_all, save_image


@pytest.fixture
def cellbin_dir(tmp_path, rng):
    root = tmp_path / "CellBinDB"
    dapi = (rng.random((6, 7)) * 3000 + 200).astype(np.uint16)  # 16-bit fluorescence
    mask = np.zeros((6, 7), np.uint8)
    mask[1:3, 1:4] = 255
    instance = np.zeros((6, 7), np.uint16)
    instance[1:3, 1:4] = 7
    instance[4:6, 5:7] = 300
    sample = root / "DAPI" / "DAPI_mouse_brain_1"
    save_image(sample / "DAPI_mouse_brain_1-img.tif", dapi)
    save_image(sample / "DAPI_mouse_brain_1-mask.tif", mask)
    save_image(sample / "DAPI_mouse_brain_1-instancemask.tif", instance)
    he = random_rgb(rng, 6, 7)
    sample = root / "10×Genomics_HE" / "HE_human_1"
    save_image(sample / "HE_human_1-img.tif", he)
    save_image(sample / "HE_human_1-mask.tif", np.ones((6, 7), np.uint8))
    save_image(sample / "HE_human_1-instancemask.tif", np.ones((6, 7), np.uint16))
    return tmp_path, dapi, he, mask, instance


def test_reads_every_modality_with_binary_masks(cellbin_dir):
    root, dapi, he, mask, _ = cellbin_dir
    data = load_cellbin(root, validate=True)
    assert (data.num_examples, data.num_classes, data.split) == (2, 2, "all")
    examples = read_all(data)
    # Sorted folder order: "10×Genomics_HE" before "DAPI".
    np.testing.assert_array_equal(examples[0][0], he)
    assert (examples[0][1] == 1).all()
    image, labels = examples[1]
    assert image.dtype == np.uint8 and image.shape == (6, 7, 3)
    np.testing.assert_array_equal(image[..., 1], to_uint8(dapi))  # 1-99 percentile stretch
    np.testing.assert_array_equal(labels, (mask > 0).astype(np.int32))


def test_modalities_instance_masks_and_splits(cellbin_dir):
    root, _, _, _, instance = cellbin_dir
    data = load_cellbin(root, modalities=["dapi"], mask="instance")
    assert data.num_examples == 1
    np.testing.assert_array_equal(read_all(data)[0][1], (instance > 0).astype(np.int32))
    assert load_cellbin(root, modalities="10xGenomics_HE").num_examples == 1
    assert load_cellbin(root, "val", val_fraction=1.0).num_examples == 2
    with pytest.raises(ValueError, match="selects none"):
        load_cellbin(root, "train", val_fraction=1.0)
    with pytest.raises(FileNotFoundError, match="ssDNA"):
        load_cellbin(root, modalities=["ssDNA"])
    with pytest.raises(ValueError, match="mask"):
        load_cellbin(root, mask="outline")


def test_missing_mask_corrupt_image_and_missing_folder(cellbin_dir, tmp_path):
    root, *_ = cellbin_dir
    sample = root / "CellBinDB" / "DAPI" / "DAPI_mouse_brain_1"
    (sample / "DAPI_mouse_brain_1-mask.tif").unlink()
    with raises_naming("DAPI_mouse_brain_1-img.tif", FileNotFoundError):
        load_cellbin(root)
    assert load_cellbin(root, mask="instance").num_examples == 2
    bad = sample / "DAPI_mouse_brain_1-img.tif"
    bad.write_bytes(b"not a tiff at all")
    iterate_expecting_error(load_cellbin(root, mask="instance"), bad)
    with raises_naming(tmp_path / "nowhere", FileNotFoundError):
        load_cellbin(tmp_path / "nowhere")
