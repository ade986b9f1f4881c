"""The arrays the figures draw: images as shown, resized maps, class colours,
boundary errors and the panels of a predictions figure."""

import numpy as np
from keras import ops

from keras_sard.maps import predicted_labels
from keras_sard.metrics import band_width, boundary_band
from keras_sard.validation import IGNORE_LABEL, check_num_classes
from keras_sard.visualize.checks import as_numpy, check_image, check_label, require_matplotlib

__all__ = ["ERROR_COLOR", "IGNORE_COLOR", "boundary_errors", "colorize", "display_image",
           "prediction_panels", "resize_map"]

#: Colour of boundary errors in `colorize` and `plot_predictions` (magenta).
ERROR_COLOR = (255, 0, 255)
#: Colour of ignore-label pixels (black): they are judged nowhere.
IGNORE_COLOR = (0, 0, 0)


def display_image(image):
    """An image as matplotlib shows it: RGB or grey, values in [0, 1].

    uint8 is divided by 255; floats already in [0, 1] are kept; anything else
    is min–max scaled (a normalised model input, say).  Three channels are
    RGB; any other count is shown as the channel mean in grey.
    """
    scale = 255.0 if image.dtype == np.uint8 else None
    image = image.astype("float64")
    if image.ndim == 3:
        image = image if image.shape[-1] == 3 else image.mean(axis=-1)
    if scale is not None:
        return image / scale
    finite = image[np.isfinite(image)]
    low, high = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
    if low >= 0.0 and high <= 1.0:
        return np.nan_to_num(image)
    return np.nan_to_num((image - low) / max(high - low, 1e-12))

def resize_map(values, size):
    """Bilinear resize of a (h, w) map to size = (H, W)."""
    if tuple(values.shape) == tuple(size):
        return values
    resized = ops.image.resize(
        values[None, :, :, None].astype("float32"), size, interpolation="bilinear"
    )
    return ops.convert_to_numpy(resized)[0, :, :, 0]

def _palette(num_classes):
    """One RGB uint8 colour per class: tab10/tab20, else a fixed random set."""
    if num_classes <= 10:
        colors = require_matplotlib().colormaps["tab10"].colors[:num_classes]
    elif num_classes <= 20:
        colors = require_matplotlib().colormaps["tab20"].colors[:num_classes]
    else:
        rng = np.random.default_rng(0)
        colors = 0.15 + 0.8 * rng.random((num_classes, 3))
    return np.round(np.asarray(colors) * 255).astype("uint8")

def _infer_num_classes(num_classes, label, raw_predictions, ignore_label):
    channels = {p.shape[-1] for p in raw_predictions.values() if p.ndim == 3}
    if num_classes is not None:
        num_classes = check_num_classes(num_classes)
        for name, p in raw_predictions.items():
            if p.ndim == 3 and p.shape[-1] not in (num_classes, 1 if num_classes == 2 else num_classes):
                raise ValueError(
                    f"Prediction {name!r} has {p.shape[-1]} logit channels; "
                    f"`num_classes`={num_classes} expects {num_classes}"
                    f"{' (or 1 for binary)' if num_classes == 2 else ''}."
                )
        return int(num_classes)
    if len({max(c, 2) for c in channels}) > 1:
        raise ValueError(
            f"The predictions' logits disagree on the number of classes ({sorted(channels)} "
            "channels); pass `num_classes`."
        )
    if channels:
        return max(channels.pop(), 2)
    ids = [p for p in raw_predictions.values()]
    if label is not None:
        valid = label if ignore_label is None else label[label != ignore_label]
        ids.append(valid)
    largest = max((int(a.max()) for a in ids if a.size), default=1)
    return max(largest + 1, 2)

def boundary_errors(label, prediction, num_classes, ignore_label=IGNORE_LABEL,
                    dilation_ratio=0.02):
    """Boundary errors of one prediction and its per-image Boundary IoU.

    The boundary region is the union over classes k of the boundary bands
    (spec §4: ``mask AND NOT erode(mask)``, eroding d = max(1, round(ratio ·
    diagonal)) times by a 3×3 square, zero padding) of ``label == k`` and of
    ``prediction == k`` — the pixels Boundary IoU looks at.  Each class is
    banded on its own, never the label map as one image.  Ignore pixels are in
    no class in either map and are never errors.

    Args:
        label: (H, W) integer class map.
        prediction: (H, W) integer class map.
        num_classes: K; ids outside [0, K) other than the ignore label are an
            error.
        ignore_label: the label value that counts nowhere (255), or None.
        dilation_ratio: the band width as a fraction of the diagonal (0.02).

    Returns:
        ``(errors, biou)``: errors (H, W) bool, True where the pixel lies in
        the boundary region, is not ignored, and ``prediction != label``; biou
        the mean over classes with a non-empty band union of
        ``|band_G ∩ band_P| / |band_G ∪ band_P|`` on this image (NaN when no
        class has a band).

    Example::

        import numpy as np
        from keras_sard.visualize import boundary_errors

        label = np.zeros((20, 20), "int32"); label[5:15, 5:15] = 1
        prediction = np.roll(label, 2, axis=1)
        errors, biou = boundary_errors(label, prediction, num_classes=2)
        errors.sum(), round(biou, 3)
    """
    label = check_label(label)
    prediction = check_label(prediction, "prediction")
    num_classes = check_num_classes(num_classes)
    if prediction.shape != label.shape:
        raise ValueError(
            f"`prediction` must have the label's shape {label.shape}; got {prediction.shape}."
        )
    valid = np.ones(label.shape, bool) if ignore_label is None else label != ignore_label
    for argument, ids in (("label", label[valid]), ("prediction", prediction[valid])):
        if ids.size and (ids.min() < 0 or ids.max() >= num_classes):
            raise ValueError(
                f"`{argument}` holds class ids outside [0, {num_classes}) (other than "
                f"the ignore label {ignore_label}): min {ids.min()}, max {ids.max()}."
            )
    height, width = label.shape
    distance = band_width(height, width, dilation_ratio)
    classes = np.arange(num_classes)
    truth = np.where(valid, label, -1)[..., None] == classes
    guess = np.where(valid, prediction, -1)[..., None] == classes
    bands = ops.convert_to_numpy(
        boundary_band(ops.convert_to_tensor(np.stack([truth, guess]), "float32"), distance)
    ) > 0.5
    band_truth, band_guess = bands[0] & valid[..., None], bands[1] & valid[..., None]
    region = np.any(band_truth | band_guess, axis=-1)
    errors = region & valid & (prediction != label)
    union = np.sum(band_truth | band_guess, axis=(0, 1))
    intersection = np.sum(band_truth & band_guess, axis=(0, 1))
    present = union > 0
    biou = float(np.mean(intersection[present] / union[present])) if present.any() else float("nan")
    return errors, biou

def colorize(class_map, num_classes, ignore=None, errors=None):
    """An RGB uint8 picture of a class map.

    Classes get tab10/tab20 colours (a fixed random palette beyond 20);
    pixels where `ignore` is True are `IGNORE_COLOR` (black) and pixels where
    `errors` is True `ERROR_COLOR` (magenta), on top.  An id outside
    ``[0, num_classes)`` that `ignore` does not mark is a ValueError.

    Example::

        import numpy as np
        from keras_sard.visualize import colorize
        colorize(np.array([[0, 1], [2, 0]]), num_classes=3).shape  # (2, 2, 3)
    """
    class_map = check_label(class_map, "class_map")
    num_classes = check_num_classes(num_classes)
    masks = {}
    for argument, mask in (("ignore", ignore), ("errors", errors)):
        if mask is not None:
            mask = np.asarray(as_numpy(mask), bool)
            if mask.shape != class_map.shape:
                raise ValueError(
                    f"`{argument}` must have the class map's shape {class_map.shape}; "
                    f"got {mask.shape}."
                )
            masks[argument] = mask
    unknown = (class_map < 0) | (class_map >= num_classes)
    if "ignore" in masks:
        unknown &= ~masks["ignore"]
    if unknown.any():
        raise ValueError(
            f"`class_map` holds ids outside [0, {num_classes}) that `ignore` does not "
            f"mark: {np.unique(class_map[unknown])[:10].tolist()}."
        )
    rgb = _palette(num_classes)[np.clip(class_map, 0, num_classes - 1)]
    if "ignore" in masks:
        rgb[masks["ignore"]] = IGNORE_COLOR
    if "errors" in masks:
        rgb[masks["errors"]] = ERROR_COLOR
    return rgb

def prediction_panels(image, label, predictions, ignore_label, num_classes, dilation_ratio):
    """RGB panels and titles: image, label (if any), one per prediction
    (with its boundary errors and per-image bIoU where a label is given)."""
    image = check_image(image)
    size = image.shape[:2]
    if label is not None:
        label = check_label(label)
        if label.shape != size:
            raise ValueError(
                f"`label` {label.shape} and `image` {image.shape} must have the same "
                "height and width."
            )
    if not isinstance(predictions, dict) or not predictions:
        raise ValueError(
            "`predictions` must be a non-empty dict {name: logits (h, w, K) or "
            f"class map (H, W)}}; got {type(predictions).__name__}."
        )
    raw = {}
    for name, value in predictions.items():
        if not isinstance(name, str):
            raise ValueError(f"Prediction names must be strings; got {name!r}.")
        value = as_numpy(value)
        if value.ndim == 3:
            if not np.issubdtype(value.dtype, np.floating):
                raise ValueError(
                    f"Prediction {name!r}: a rank-3 prediction is logits (h, w, K) and "
                    f"must be floating point; got dtype {value.dtype}."
                )
        elif value.ndim == 2:
            if not np.issubdtype(value.dtype, np.integer):
                raise ValueError(
                    f"Prediction {name!r}: a rank-2 prediction is a class map (H, W) "
                    f"and must hold integers; got dtype {value.dtype}."
                )
            if value.shape != size:
                raise ValueError(
                    f"Prediction {name!r}: a class map must have the image's size "
                    f"{size}; got {value.shape} (logits may be of another size)."
                )
        else:
            raise ValueError(
                f"Prediction {name!r} must be logits (height, width, classes) or a "
                f"class map (height, width); got shape {value.shape}."
            )
        raw[name] = value
    num_classes = _infer_num_classes(num_classes, label, raw, ignore_label)
    classes = {
        name: (
            ops.convert_to_numpy(predicted_labels(value[None].astype("float32"), size))[0]
            if value.ndim == 3
            else value
        )
        for name, value in raw.items()
    }

    panels = [(display_image(image), "image")]
    ignore = None
    if label is not None:
        ignore = None if ignore_label is None else label == ignore_label
        panels.append((colorize(label, num_classes, ignore), "label"))
    for name, prediction in classes.items():
        if label is None:
            panels.append((colorize(prediction, num_classes), name))
            continue
        errors, biou = boundary_errors(label, prediction, num_classes, ignore_label, dilation_ratio)
        panels.append(
            (
                colorize(prediction, num_classes, ignore, errors),
                f"{name}\nbIoU {biou:.3f}, {int(errors.sum())} px off",
            )
        )
    return panels
