"""Figures of SARD's structure map and of segmentation predictions, as PNG files.

- `plot_structure`: an image, the teacher's E, C, D and W (spec §1) as
  heatmaps, and W upsampled and laid over the image.
- `plot_predictions`: an image, its label and several predictions side by
  side (e.g. teacher, scratch student, SARD student), with each prediction's
  boundary errors highlighted (spec §4's boundary band, ignore label left out).
- `read_layer`: one forward pass of a model that also returns a named
  (possibly nested) layer's output, through `keras_sard.taps.FeatureTaps`.
- `boundary_errors` and `colorize`: the arrays those figures draw.

Drawing uses matplotlib's object-oriented API on its Agg canvas: no pyplot,
no window, no change to matplotlib's global backend, so it runs headless and
inside a training loop.  Every figure is laid out on a grid of square panels
of ``panel_pixels`` pixels, so its PNG is exactly
``(rows·panel_pixels) × (columns·panel_pixels)`` pixels.

Example::

    import numpy as np
    from keras_sard.visualize import plot_predictions, plot_structure

    rng = np.random.default_rng(0)
    image = rng.random((32, 32, 3)).astype("float32")
    features = rng.normal(size=(16, 16, 8)).astype("float32")
    plot_structure(image, features=features, path="structure.png")

    label = np.zeros((32, 32), "int32")
    label[8:24, 8:24] = 1
    logits = rng.normal(size=(32, 32, 2)).astype("float32")
    plot_predictions(image, label, {"student": logits}, "predictions.png")
"""

import io
import os

import keras
import numpy as np
from keras import ops, tree

from keras_sard.backend import steps
from keras_sard.metrics import band_width, boundary_band, predicted_labels
from keras_sard.structure import StructureWeights
from keras_sard.taps import FeatureTaps

__all__ = [
    "read_layer",
    "plot_structure",
    "plot_predictions",
    "boundary_errors",
    "colorize",
    "ERROR_COLOR",
    "IGNORE_COLOR",
]

#: Colour of boundary errors in `colorize` and `plot_predictions` (magenta).
ERROR_COLOR = (255, 0, 255)
#: Colour of ignore-label pixels (black): they are judged nowhere.
IGNORE_COLOR = (0, 0, 0)
_DPI = 100
_MIN_PANEL_PIXELS = 64


# ----------------------------------------------------------------------------
# Input checks
# ----------------------------------------------------------------------------


def _numpy(x):
    return np.asarray(ops.convert_to_numpy(x)) if not isinstance(x, np.ndarray) else x


def _check_image(image, argument="image"):
    """A single image (H, W) or (H, W, C) as a NumPy array."""
    image = _numpy(image)
    if image.ndim not in (2, 3) or min(image.shape[:2]) < 1:
        raise ValueError(
            f"`{argument}` must be one image of shape (height, width) or "
            f"(height, width, channels); got shape {image.shape}."
        )
    if not (np.issubdtype(image.dtype, np.number) or image.dtype == bool):
        raise ValueError(f"`{argument}` must be numeric; got dtype {image.dtype}.")
    return image


def _check_label(label, argument="label"):
    """An integer class map (H, W); a trailing channel of 1 is dropped."""
    label = _numpy(label)
    if label.ndim == 3 and label.shape[-1] == 1:
        label = label[..., 0]
    if label.ndim != 2:
        raise ValueError(
            f"`{argument}` must be an integer class map of shape (height, width) "
            f"or (height, width, 1); got shape {label.shape}."
        )
    if not np.issubdtype(label.dtype, np.integer):
        raise ValueError(
            f"`{argument}` must hold integer class ids; got dtype {label.dtype}."
        )
    return label.astype("int64")


def _check_num_classes(num_classes):
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
        raise ValueError(
            f"`num_classes` must be an integer ≥ 2 (binary is 2); got {num_classes!r}."
        )
    return int(num_classes)


def _check_path(path):
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"`path` must be a file path ending in .png; got {path!r}.")
    path = os.fspath(path)
    if not path.lower().endswith(".png"):
        raise ValueError(f"`path` must end in .png (the figure is a PNG); got {path!r}.")
    return path


def _check_panel_pixels(panel_pixels):
    if (
        isinstance(panel_pixels, bool)
        or not isinstance(panel_pixels, (int, np.integer))
        or panel_pixels < _MIN_PANEL_PIXELS
    ):
        raise ValueError(
            f"`panel_pixels` must be an integer ≥ {_MIN_PANEL_PIXELS}; got {panel_pixels!r}."
        )
    return int(panel_pixels)


def _check_model_input(model, inputs, role):
    """Compare a batch with the model's declared input, where it declares one."""
    try:
        declared = [tuple(t.shape) for t in tree.flatten(model.inputs)]
    except (AttributeError, ValueError, TypeError):
        return
    if len(declared) != 1:
        return
    expected = declared[0]
    if len(expected) != len(inputs.shape) or any(
        e is not None and e != a for e, a in zip(expected[1:], inputs.shape[1:])
    ):
        raise ValueError(
            f"The {role} ({model.name!r}) expects inputs of shape {expected} (batch "
            f"first, None = any size); got a batch of shape {tuple(inputs.shape)}."
        )


# ----------------------------------------------------------------------------
# Reading a layer
# ----------------------------------------------------------------------------


def read_layer(model, layer, inputs, role="model"):
    """Run `model` once on `inputs`; return ``(layer output, model output)`` in NumPy.

    The layer is read during the model's own forward pass with
    `keras_sard.taps.FeatureTaps` (no sub-model is built), in inference mode
    and without recording gradients.

    Args:
        model: a Keras model.
        layer: the layer's name, or its path for a nested one
            (``"backbone/stage_1"``); see `keras_sard.taps`.
        inputs: a batch the model accepts, e.g. (B, H, W, C).
        role: how errors name the model ("teacher", "student").

    Raises:
        ValueError: the model has no such layer (the message lists the closest
            names), the layer runs other than once, or the batch does not fit
            the model's declared input.

    Example::

        import keras, numpy as np
        from keras_sard.visualize import read_layer

        inputs = keras.Input((16, 16, 3))
        hidden = keras.layers.Conv2D(4, 3, padding="same", name="stem")(inputs)
        model = keras.Model(inputs, keras.layers.Conv2D(2, 1)(hidden))
        features, logits = read_layer(model, "stem", np.zeros((1, 16, 16, 3), "float32"))
        features.shape, logits.shape  # (1, 16, 16, 4), (1, 16, 16, 2)
    """
    inputs = _numpy(inputs)
    if np.issubdtype(inputs.dtype, np.floating) and inputs.dtype != np.float32:
        inputs = inputs.astype("float32")
    _check_model_input(model, inputs, role)
    taps = FeatureTaps(model, [layer], role)
    with steps.inference_scope(), taps.record() as captured:
        outputs = model(inputs, training=False)
    return (
        tree.map_structure(ops.convert_to_numpy, captured[layer]),
        tree.map_structure(ops.convert_to_numpy, outputs),
    )


def _single_feature_map(features, argument):
    """(h, w, C) float32 from (h, w, C) or (1, h, w, C)."""
    if not hasattr(features, "shape"):
        raise ValueError(
            f"`{argument}` must be one feature map (height, width, channels); got "
            f"{type(features).__name__} (a layer with several outputs cannot be drawn)."
        )
    features = _numpy(features)
    if features.ndim == 4 and features.shape[0] == 1:
        features = features[0]
    if features.ndim != 3:
        raise ValueError(
            f"`{argument}` must be one channels_last feature map of shape (height, "
            f"width, channels) or (1, height, width, channels); got shape {features.shape}."
        )
    return features.astype("float32")


def _single_logits(outputs, role):
    if not hasattr(outputs, "shape") or np.ndim(outputs) != 4 or outputs.shape[0] != 1:
        shape = getattr(outputs, "shape", type(outputs).__name__)
        raise ValueError(
            f"The {role} must return one logits map (1, height, width, classes) for "
            f"one image; got {shape}."
        )
    return outputs[0]


# ----------------------------------------------------------------------------
# Drawing helpers
# ----------------------------------------------------------------------------


def _display_image(image):
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


def _matplotlib():
    """matplotlib, imported on first use: it is the optional ``viz`` extra."""
    try:
        import matplotlib
        import matplotlib.figure
    except ImportError as error:  # pragma: no cover - depends on the install
        raise ImportError(
            "keras_sard.visualize draws with matplotlib; install it with "
            "`pip install keras-sard[viz]` (or `pip install matplotlib`)."
        ) from error
    return matplotlib


def _figure(rows, cols, panel_pixels, title_lines=1, suptitle=False, colorbars=False):
    """A Figure of rows × cols square panels, room left for the titles."""
    height, width = rows * panel_pixels, cols * panel_pixels
    # Agg sizes its canvas with int(inches · dpi); the half pixel keeps the
    # truncation from losing one to float rounding.
    figsize = ((width + 0.5) / _DPI, (height + 0.5) / _DPI)
    fig = _matplotlib().figure.Figure(figsize=figsize, dpi=_DPI)
    fontsize = max(5.0, 9.0 * panel_pixels / 256.0)
    line = 1.3 * fontsize * _DPI / 72.0  # one line of text, in pixels
    gap = title_lines * line + 6.0 * _DPI / 72.0 + 2.0  # titles and their 6 pt pad
    top = height - gap - (1.25 * line if suptitle else 0.0)
    bottom = 0.02 * height
    hspace = gap * rows / max(top - bottom - (rows - 1) * gap, 1.0)
    axes = fig.subplots(rows, cols, squeeze=False)
    fig.subplots_adjust(
        left=0.01,
        right=1.0 - (3.2 * line if colorbars else 2.0) / width,  # room for tick labels
        bottom=bottom / height,
        top=top / height,
        wspace=0.25, hspace=hspace,
    )
    for ax in axes.flat:
        ax.set_axis_off()
    return fig, axes, fontsize


def _flag_non_finite(title, values):
    """Say so in the title where a map holds NaN or Inf (drawn blank)."""
    return title if np.isfinite(values).all() else f"{title}: NaN/Inf!"


def _heatmap(fig, ax, values, title, fontsize, cmap="magma"):
    shown = ax.imshow(values, cmap=cmap, interpolation="nearest")
    ax.set_title(_flag_non_finite(title, values), fontsize=fontsize)
    bar = fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.03)
    bar.ax.tick_params(labelsize=0.75 * fontsize)
    bar.ax.yaxis.get_offset_text().set_fontsize(0.75 * fontsize)


def _save(fig, path):
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    fig.savefig(path, dpi=_DPI, format="png")
    return path


def _to_array(fig):
    """The figure as an RGB uint8 array (height, width, 3)."""
    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=_DPI, format="png")
    buffer.seek(0)
    return np.asarray(Image.open(buffer).convert("RGB"))


def _resize(values, size):
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
        colors = _matplotlib().colormaps["tab10"].colors[:num_classes]
    elif num_classes <= 20:
        colors = _matplotlib().colormaps["tab20"].colors[:num_classes]
    else:
        rng = np.random.default_rng(0)
        colors = 0.15 + 0.8 * rng.random((num_classes, 3))
    return np.round(np.asarray(colors) * 255).astype("uint8")


# ----------------------------------------------------------------------------
# Structure
# ----------------------------------------------------------------------------


def _structure_maps(image, teacher, layer, features, structure):
    """The image and E, C, D, W of its teacher features, as NumPy."""
    image = _check_image(image)
    if features is None:
        if teacher is None or layer is None:
            raise ValueError(
                "Pass either `teacher` and `layer` (the teacher runs on the image) "
                "or `features` (a precomputed teacher feature map)."
            )
        if not isinstance(teacher, keras.Model):
            raise ValueError(f"`teacher` must be a keras.Model; got {type(teacher).__name__}.")
        if image.ndim != 3:
            raise ValueError(
                "`image` must be (height, width, channels) to be fed to the "
                f"teacher; got shape {image.shape}."
            )
        tapped, _ = read_layer(teacher, layer, image[None], "teacher")
        features = _single_feature_map(tapped, f"the output of the teacher's layer {layer!r}")
    else:
        if teacher is not None or layer is not None:
            raise ValueError(
                "Pass `features` or `teacher` and `layer`, not both: the map to "
                "draw would be ambiguous."
            )
        features = _single_feature_map(features, "features")
    if structure is None:
        structure = StructureWeights()
    if not isinstance(structure, StructureWeights):
        raise ValueError(
            "`structure` must be a keras_sard.structure.StructureWeights (e.g. a "
            f"SARDLoss's `.structure`); got {type(structure).__name__}."
        )
    terms = structure.terms(features[None])
    maps = {name: ops.convert_to_numpy(value)[0] for name, value in terms.items()}
    return image, maps


def _structure_figure(image, maps, panel_pixels, title=None, cmap="magma"):
    fig, axes, fontsize = _figure(2, 3, panel_pixels, suptitle=bool(title), colorbars=True)
    shown = _display_image(image)
    height, width = image.shape[:2]
    weights = maps["weights"]
    # W·N: 1 is the uniform weight 1/N, 3 three times it.
    relative = weights * weights.size
    overlay = _resize(relative, (height, width))
    gray = dict(cmap="gray", vmin=0.0, vmax=1.0) if shown.ndim == 2 else {}

    axes[0, 0].imshow(shown, interpolation="nearest", **gray)
    axes[0, 0].set_title("image", fontsize=fontsize)
    axes[0, 1].imshow(shown, interpolation="nearest", **gray)
    layer = axes[0, 1].imshow(overlay, cmap=cmap, alpha=0.55, interpolation="bilinear")
    axes[0, 1].set_title(_flag_non_finite("W over the image", overlay), fontsize=fontsize)
    bar = fig.colorbar(layer, ax=axes[0, 1], fraction=0.046, pad=0.03)
    bar.ax.tick_params(labelsize=0.75 * fontsize)
    _heatmap(fig, axes[0, 2], relative, "W·N (1 = uniform)", fontsize, cmap)
    _heatmap(fig, axes[1, 0], maps["edge"], "E = λ1 − λ2 (edges)", fontsize, cmap)
    _heatmap(fig, axes[1, 1], maps["corner"], "C = √(λ1·λ2) (corners)", fontsize, cmap)
    _heatmap(fig, axes[1, 2], maps["density"], "D (density)", fontsize, cmap)
    if title:
        fig.suptitle(title, fontsize=fontsize, y=1.0 - 2.0 / fig.bbox.height, va="top")
    return fig


def plot_structure(
    image,
    teacher=None,
    layer=None,
    path=None,
    *,
    features=None,
    structure=None,
    title=None,
    panel_pixels=256,
    cmap="magma",
):
    """Draw the structure map of one image: E, C, D, W and W over the image.

    Either the teacher runs on the image and its layer `layer` is read
    (through `keras_sard.taps.FeatureTaps`, one forward pass), or a
    precomputed feature map is passed as `features`.  The terms come from
    `structure.terms` (`keras_sard.structure.StructureWeights`): E, C and D
    raw (before any ``normalize``), W summing to 1, drawn as ``W·N`` where N
    is the number of feature pixels (1 = the uniform weight).  The maps are
    drawn at the feature map's own size; the overlay is W upsampled
    bilinearly to the image's size.  A map holding NaN or Inf (non-finite
    teacher features make the whole image's W NaN) is drawn blank and says
    so in its title.

    Args:
        image: one image (H, W, C) — what the teacher takes, e.g. normalised —
            or (H, W) when `features` is given.  Shown as RGB for 3 channels,
            grey otherwise (the channel mean), min–max scaled unless uint8 or
            already in [0, 1].
        teacher: a Keras model, with `layer`; or None with `features`.
        layer: the teacher layer's name or nested path (``"backbone/stage_1"``).
        path: where to write the PNG (must end in .png; folders are created).
        features: the teacher's feature map (h, w, C) or (1, h, w, C).
        structure: a `StructureWeights` giving the terms; None uses the
            defaults.  Pass a `SARDLoss`'s ``.structure`` to see the map that
            loss trains with.
        title: a title above the panels.
        panel_pixels: side of each of the 2×3 square panels: the PNG is
            ``3·panel_pixels`` wide and ``2·panel_pixels`` high.
        cmap: matplotlib colour map of the heatmaps.

    Returns:
        `path`, as a string.

    Raises:
        ValueError: an image or feature map of the wrong rank, an unknown or
            ambiguous layer (with the closest names), a layer whose output is
            not a (1, h, w, C) map, both or neither of `features` and
            `teacher`/`layer`, or a path not ending in .png.

    Example::

        import keras, numpy as np
        from keras_sard.visualize import plot_structure

        inputs = keras.Input((32, 32, 3))
        hidden = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="stage_1")(inputs)
        teacher = keras.Model(inputs, keras.layers.Conv2D(2, 1)(hidden))
        image = np.random.default_rng(0).random((32, 32, 3)).astype("float32")
        plot_structure(image, teacher, "stage_1", "teacher_structure.png", panel_pixels=128)
        # -> "teacher_structure.png", 384 × 256 pixels
    """
    if path is None:
        raise ValueError("`path` is required: the PNG file to write.")
    path = _check_path(path)
    panel_pixels = _check_panel_pixels(panel_pixels)
    image, maps = _structure_maps(image, teacher, layer, features, structure)
    return _save(_structure_figure(image, maps, panel_pixels, title, cmap), path)


# ----------------------------------------------------------------------------
# Predictions
# ----------------------------------------------------------------------------


def _infer_num_classes(num_classes, label, raw_predictions, ignore_label):
    channels = {p.shape[-1] for p in raw_predictions.values() if p.ndim == 3}
    if num_classes is not None:
        num_classes = _check_num_classes(num_classes)
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


def boundary_errors(label, prediction, num_classes, ignore_label=255, dilation_ratio=0.02):
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
    label = _check_label(label)
    prediction = _check_label(prediction, "prediction")
    num_classes = _check_num_classes(num_classes)
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
    class_map = _check_label(class_map, "class_map")
    num_classes = _check_num_classes(num_classes)
    masks = {}
    for argument, mask in (("ignore", ignore), ("errors", errors)):
        if mask is not None:
            mask = np.asarray(_numpy(mask), bool)
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


def _prediction_panels(image, label, predictions, ignore_label, num_classes, dilation_ratio):
    """RGB panels and titles: image, label (if any), one per prediction."""
    image = _check_image(image)
    size = image.shape[:2]
    if label is not None:
        label = _check_label(label)
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
        value = _numpy(value)
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

    panels = [(_display_image(image), "image")]
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


def _predictions_figure(panels, panel_pixels, title=None):
    lines = max(name.count("\n") + 1 for _, name in panels)
    fig, axes, fontsize = _figure(1, len(panels), panel_pixels, lines, bool(title))
    for ax, (picture, name) in zip(axes[0], panels):
        gray = dict(cmap="gray", vmin=0.0, vmax=1.0) if picture.ndim == 2 else {}
        ax.imshow(picture, interpolation="nearest", **gray)
        ax.set_title(name, fontsize=fontsize)
    if title:
        fig.suptitle(title, fontsize=fontsize, y=1.0 - 2.0 / fig.bbox.height, va="top")
    return fig


def plot_predictions(
    image,
    label,
    predictions,
    path,
    *,
    ignore_label=255,
    num_classes=None,
    dilation_ratio=0.02,
    title=None,
    panel_pixels=256,
):
    """Draw predictions side by side with their boundary errors highlighted.

    Panels, left to right: the image, the label (ignore pixels black), then
    one per prediction in the dict's order, coloured by class, with its
    boundary errors (`boundary_errors`: in the spec §4 boundary band of label
    or prediction, not ignored, wrong) in magenta and its per-image Boundary
    IoU and error count in the title.  With ``label=None`` the label panel,
    the errors and the scores are left out.

    Args:
        image: one image (H, W) or (H, W, C), shown as in `plot_structure`.
        label: (H, W) or (H, W, 1) integer class map, or None.
        predictions: ``{name: logits (h, w, K) or class map (H, W)}``.  Logits
            are resized bilinearly to H×W and turned into classes by argmax
            (K = 1: logit > 0, binary), as `keras_sard.metrics` does.
        path: where to write the PNG (must end in .png; folders are created).
        ignore_label: label value judged nowhere (255), or None.
        num_classes: K; None infers it from the logits' channels (at least
            2), or else from the largest class id.
        dilation_ratio: band width as a fraction of the image diagonal (0.02).
        title: a title above the panels.
        panel_pixels: side of each square panel: the PNG is
            ``panels·panel_pixels`` wide and ``panel_pixels`` high.

    Returns:
        `path`, as a string.

    Example::

        import numpy as np
        from keras_sard.visualize import plot_predictions

        rng = np.random.default_rng(0)
        label = np.zeros((40, 40), "int32"); label[10:30, 12:28] = 1
        label[:2] = 255  # ignored
        predictions = {
            "teacher": np.stack([1 - label, label], -1).astype("float32"),
            "student": rng.normal(size=(20, 20, 2)).astype("float32"),  # any size
            "shifted": np.roll(label, 3, axis=1) % 255,  # a class map
        }
        plot_predictions(rng.random((40, 40, 3)), label, predictions,
                         "predictions.png", panel_pixels=128)
        # -> 640 × 128 pixels: image, label and three predictions
    """
    path = _check_path(path)
    panel_pixels = _check_panel_pixels(panel_pixels)
    if not (isinstance(dilation_ratio, (int, float)) and dilation_ratio >= 0):
        raise ValueError(f"`dilation_ratio` must be a number ≥ 0; got {dilation_ratio!r}.")
    panels = _prediction_panels(image, label, predictions, ignore_label, num_classes, dilation_ratio)
    return _save(_predictions_figure(panels, panel_pixels, title), path)
