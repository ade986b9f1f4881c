"""The matplotlib figures, drawn with the object-oriented API on its Agg
canvas (no pyplot, no window, no change to matplotlib's global backend), each
on a grid of square panels of ``panel_pixels`` pixels."""

import io
import os

import numpy as np
from PIL import Image

from keras_sard.validation import IGNORE_LABEL, check_number
from keras_sard.visualize.arrays import display_image, prediction_panels, resize_map
from keras_sard.visualize.checks import check_panel_pixels, check_path, require_matplotlib
from keras_sard.visualize.reading import structure_maps

__all__ = ["figure_to_array", "plot_predictions", "plot_structure", "predictions_figure",
           "structure_figure"]

_DPI = 100


def _figure(rows, cols, panel_pixels, title_lines=1, suptitle=False, colorbars=False):
    """A Figure of rows × cols square panels, room left for the titles."""
    height, width = rows * panel_pixels, cols * panel_pixels
    # Agg sizes its canvas with int(inches · dpi); the half pixel keeps the
    # truncation from losing one to float rounding.
    figsize = ((width + 0.5) / _DPI, (height + 0.5) / _DPI)
    fig = require_matplotlib().figure.Figure(figsize=figsize, dpi=_DPI)
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

def figure_to_array(fig):
    """The figure as an RGB uint8 array (height, width, 3)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=_DPI, format="png")
    buffer.seek(0)
    return np.asarray(Image.open(buffer).convert("RGB"))

def structure_figure(image, maps, panel_pixels, title=None, cmap="magma"):
    """The 2×3 figure of `plot_structure` from the image and its maps."""
    fig, axes, fontsize = _figure(2, 3, panel_pixels, suptitle=bool(title), colorbars=True)
    shown = display_image(image)
    height, width = image.shape[:2]
    weights = maps["weights"]
    # W·N: 1 is the uniform weight 1/N, 3 three times it.
    relative = weights * weights.size
    overlay = resize_map(relative, (height, width))
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
    path = check_path(path)
    panel_pixels = check_panel_pixels(panel_pixels)
    image, maps = structure_maps(image, teacher, layer, features, structure)
    return _save(structure_figure(image, maps, panel_pixels, title, cmap), path)

def predictions_figure(panels, panel_pixels, title=None):
    """The one-row figure of `plot_predictions` from its panels."""
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
    ignore_label=IGNORE_LABEL,
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
    path = check_path(path)
    panel_pixels = check_panel_pixels(panel_pixels)
    dilation_ratio = check_number(dilation_ratio, "dilation_ratio")
    panels = prediction_panels(image, label, predictions, ignore_label, num_classes, dilation_ratio)
    return _save(predictions_figure(panels, panel_pixels, title), path)
