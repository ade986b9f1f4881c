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

One module per concern: `keras_sard.visualize.checks` (the inputs),
`.reading` (the forward pass that reads a layer, the structure map),
`.arrays` (what is drawn: colours, boundary errors, panels) and `.figures`
(the matplotlib figures).  matplotlib is imported on first use.
"""

from keras_sard.visualize.arrays import ERROR_COLOR, IGNORE_COLOR, boundary_errors, colorize
from keras_sard.visualize.figures import plot_predictions, plot_structure
from keras_sard.visualize.reading import read_layer

__all__ = [
    "read_layer",
    "plot_structure",
    "plot_predictions",
    "boundary_errors",
    "colorize",
    "ERROR_COLOR",
    "IGNORE_COLOR",
]
