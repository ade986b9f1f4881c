"""Keras callbacks that show what a `keras_sard.Distiller` is doing.

`StructureMapLogger` draws, for a fixed batch of images, the teacher's
structure map W (with E, C and D) and logs its structure report
(`keras_sard.diagnostics.structure_report`) once, and the student's
predictions beside the teacher's every N epochs, to TensorBoard and/or PNG
and text files.

Example::

    import keras, numpy as np
    from keras_sard import Distiller
    from keras_sard.callbacks import StructureMapLogger
    from keras_sard.losses import SARDLoss

    def segmenter(width, name):
        inputs = keras.Input((16, 16, 3))
        x = keras.layers.Conv2D(width, 3, padding="same", activation="relu",
                                name=f"{name}_features")(inputs)
        return keras.Model(inputs, keras.layers.Conv2D(2, 1)(x), name=name)

    distiller = Distiller(
        segmenter(8, "teacher"), segmenter(4, "student"),
        [SARDLoss(["teacher_features"], ["student_features"], radius=2, hidden_channels=8)],
    )
    distiller.compile(optimizer="adam")
    x = np.random.rand(4, 16, 16, 3).astype("float32")
    y = np.random.randint(0, 2, size=(4, 16, 16))
    logger = StructureMapLogger(x[:2], "teacher_features", log_dir="logs/images",
                                png_dir="figures", labels=y[:2], panel_pixels=96)
    distiller.fit(x, y, epochs=2, batch_size=2, verbose=0, callbacks=[logger])
    # logs/images: TensorBoard tags "structure/weights", "structure/terms", "predictions",
    #   "structure_report" (text) and scalars "structure_report/teacher_features/..."
    # figures: structure_00.png, structure_report.txt, predictions_step0000_00.png, ...
"""

import os

import keras
import numpy as np
from keras import ops

from keras_sard.backend import steps
from keras_sard.diagnostics import StructureReport, structure_report
from keras_sard.losses.sard import SARDLoss
from keras_sard.structure import StructureWeights
from keras_sard.taps import find_layer
from keras_sard.validation import IGNORE_LABEL, check_int
from keras_sard.visualize.arrays import prediction_panels, resize_map
from keras_sard.visualize.checks import check_label, check_panel_pixels, require_matplotlib
from keras_sard.visualize.figures import figure_to_array, predictions_figure, structure_figure
from keras_sard.visualize.reading import read_layer

__all__ = ["StructureMapLogger"]


def _heatmap_rgb(values, cmap="magma"):
    """A (H, W) map as RGB uint8, scaled to its own [0, max]."""
    matplotlib = require_matplotlib()  # the viz extra; the error says how to install it
    top = float(np.nanmax(values)) if np.isfinite(values).any() else 1.0
    scaled = np.clip(np.nan_to_num(values) / max(top, 1e-30), 0.0, 1.0)
    return np.round(matplotlib.colormaps[cmap](scaled)[..., :3] * 255).astype("uint8")


class StructureMapLogger(keras.callbacks.Callback):
    """Log the structure map W and the student's predictions on a fixed batch.

    Use it with a `keras_sard.Distiller` (it reads ``model.teacher`` and
    ``model.student``).  At the start of training it runs the teacher once on
    `images`, reading `layer` with `keras_sard.taps.FeatureTaps`, and logs
    at step 0:

    - ``structure/weights``: W of each image, upsampled to the image's size
      and coloured (magma, scaled to the image's largest weight);
    - ``structure/terms``: the `keras_sard.visualize.plot_structure` figure
      (image, W over the image, W, E, C, D) of each image.

    and W's structure report (`keras_sard.diagnostics.structure_report` on
    `images`, with `labels` when given) on each level of `report_layers`:

    - ``structure_report/<layer>/<number>`` TensorBoard scalars: the
      ``effective_fraction`` and ``max_over_mean`` of W and, with labels,
      its boundary ``concentration``, ``ceiling`` and
      ``boundary_cell_share`` (a number undefined on these images, NaN, is
      left out);
    - the report as a table with a verdict per level: the TensorBoard text
      ``structure_report``, and ``structure_report.txt`` in `png_dir` (in
      `log_dir` without one).

    The teacher is frozen, so W and its report cannot change: they are
    logged once per callback.  Then, at step 0 (before training) and after every
    `every_n_epochs`-th epoch (step = epochs done), it runs the student on
    `images` and logs

    - ``predictions``: the `keras_sard.visualize.plot_predictions` figure of
      each image: image, label (if given), teacher, student, with boundary
      errors highlighted and per-image Boundary IoU when labels are given.

    Everything is converted to NumPy before drawing, so it works while
    training on the TensorFlow, JAX and PyTorch backends alike.  TensorBoard
    images go through ``tf.summary.image`` into a ``tf.summary`` file writer
    at `log_dir`; PNG files go to `png_dir` as ``structure_{i:02d}.png`` and
    ``predictions_step{step:04d}_{i:02d}.png``.

    Args:
        images: the fixed batch (N, H, W, C) the models take (keep N small).
        layer: the teacher layer to read (name or nested path), typically one
            a `SARDLoss` taps.
        log_dir: TensorBoard folder for the images, or None.  (Next to
            ``keras.callbacks.TensorBoard(log_dir=d)``, ``d + "/images"``
            shows up as its own run.)
        png_dir: folder for PNG files, or None.  At least one of the two.
        every_n_epochs: log predictions after every N-th epoch (1).
        labels: (N, H, W) or (N, H, W, 1) integer labels of `images`, or None.
        structure: the `StructureWeights` that draws W; None takes the one of
            the Distiller's `SARDLoss` that taps `layer` (so the picture is the
            map that trains), else the defaults.  The same for each level of
            the report.
        report_layers: the teacher levels of the structure report; None:
            every level a structure-weighted `SARDLoss` of the Distiller taps,
            else `layer`; ``()``: no report.
        ignore_label: label value judged nowhere (255).
        num_classes: K; None infers it from the logits.
        panel_pixels: side of each figure panel in pixels (192).

    Raises:
        ValueError: at construction, for inputs of the wrong rank or size, no
            output folder, or a bad `every_n_epochs`; when training starts,
            for a model without ``teacher``/``student``, an unknown teacher
            layer, or images the models do not take.
    """

    def __init__(
        self,
        images,
        layer,
        log_dir=None,
        png_dir=None,
        every_n_epochs=1,
        labels=None,
        structure=None,
        ignore_label=IGNORE_LABEL,
        num_classes=None,
        panel_pixels=192,
        report_layers=None,
    ):
        super().__init__()
        images = np.asarray(ops.convert_to_numpy(images))
        if images.ndim != 4 or images.shape[0] < 1:
            raise ValueError(
                "`images` must be a non-empty batch of shape (batch, height, width, "
                f"channels); got shape {images.shape}."
            )
        if np.issubdtype(images.dtype, np.floating):
            images = images.astype("float32")
        if labels is not None:
            labels = np.asarray(ops.convert_to_numpy(labels))
            if labels.ndim == 4 and labels.shape[-1] == 1:
                labels = labels[..., 0]
            if labels.shape != images.shape[:3]:
                raise ValueError(
                    f"`labels` must be (batch, height, width) = {images.shape[:3]} to "
                    f"match `images` {images.shape}; got shape {labels.shape}."
                )
            labels = np.stack([check_label(label, "labels") for label in labels])
        if log_dir is None and png_dir is None:
            raise ValueError("Give `log_dir` (TensorBoard), `png_dir` (PNG files) or both.")
        if structure is not None and not isinstance(structure, StructureWeights):
            raise ValueError(
                "`structure` must be a keras_sard.structure.StructureWeights or None; "
                f"got {type(structure).__name__}."
            )
        if not isinstance(layer, str) or not layer:
            raise ValueError(f"`layer` must be a teacher layer name or path; got {layer!r}.")
        if report_layers is not None:
            if isinstance(report_layers, str) or not all(
                    isinstance(name, str) and name for name in report_layers):
                raise ValueError("`report_layers` must be a list of teacher layer names, () or "
                                 f"None; got {report_layers!r}.")
            report_layers = tuple(report_layers)
        self.report_layers = report_layers
        self.images = images
        self.labels = labels
        self.layer = layer
        self.log_dir = None if log_dir is None else os.fspath(log_dir)
        self.png_dir = None if png_dir is None else os.fspath(png_dir)
        self.every_n_epochs = check_int(every_n_epochs, "every_n_epochs")
        self.structure = structure
        self.ignore_label = ignore_label
        self.num_classes = num_classes
        self.panel_pixels = check_panel_pixels(panel_pixels)
        self._writer = None
        self._teacher_logits = None
        self._logged_structure = False
        self._logged_predictions = False

    # ------------------------------------------------------------- plumbing

    def _distiller_parts(self):
        model = self.model
        teacher, student = getattr(model, "teacher", None), getattr(model, "student", None)
        if not isinstance(teacher, keras.Model) or not isinstance(student, keras.Model):
            raise ValueError(
                "StructureMapLogger reads `model.teacher` and `model.student`: use it "
                f"with a keras_sard.Distiller; got {type(model).__name__}."
            )
        return teacher, student

    def _structure_for(self, model, layer=None):
        if self.structure is not None:
            return self.structure
        teacher_layer = find_layer(model.teacher, layer or self.layer, "teacher")
        for loss in _structure_losses(model):
            for name in loss.teacher_layers:
                if find_layer(model.teacher, name, "teacher") is teacher_layer:
                    return loss.structure
        if not hasattr(self, "_default_structure"):
            self._default_structure = StructureWeights()
        return self._default_structure

    def _report_layers(self, model):
        if self.report_layers is not None:
            return list(self.report_layers)
        layers = []
        for loss in _structure_losses(model):
            layers += [name for name in loss.teacher_layers if name not in layers]
        return layers or [self.layer]

    def _write_images(self, tag, pictures, step):
        if self._writer is None:
            return
        import tensorflow as tf

        with self._writer.as_default():
            tf.summary.image(tag, np.stack(pictures), step=step, max_outputs=len(pictures))
        self._writer.flush()

    def _write_report(self, report):
        text = report.format()
        folder = self.png_dir if self.png_dir is not None else self.log_dir
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "structure_report.txt"), "w", encoding="utf-8") as f:
            f.write(text + "\n")
        if self._writer is None:
            return
        import tensorflow as tf

        fields = ["effective_fraction", "max_over_mean"]
        if report.labelled:
            fields += ["concentration", "ceiling", "boundary_cell_share"]
        with self._writer.as_default():
            for level in report.levels:
                for field in fields:
                    value = getattr(level, field)
                    if np.isfinite(value):
                        tf.summary.scalar(f"structure_report/{level.layer}/{field}",
                                          float(value), step=0)
            # Indented: TensorBoard renders text as Markdown, this keeps the table as it is.
            tf.summary.text("structure_report", "\n".join(
                "    " + line for line in text.splitlines()), step=0)
        self._writer.flush()

    def _write_png(self, name, fig):
        os.makedirs(self.png_dir, exist_ok=True)
        fig.savefig(os.path.join(self.png_dir, name), dpi=fig.dpi, format="png")

    # ------------------------------------------------------------- logging

    def _log_structure(self, teacher):
        structure = self._structure_for(self.model)
        features, logits = read_layer(teacher, self.layer, self.images, "teacher")
        if not hasattr(features, "shape") or features.ndim != 4:
            raise ValueError(
                f"The teacher's layer {self.layer!r} must return a (batch, height, width, "
                f"channels) feature map; got {getattr(features, 'shape', type(features).__name__)}."
            )
        if not hasattr(logits, "shape") or logits.ndim != 4:
            raise ValueError(
                "The teacher must return logits (batch, height, width, classes); got "
                f"{getattr(logits, 'shape', type(logits).__name__)}."
            )
        self._teacher_logits = logits
        if self._logged_structure:
            return
        # One call for the batch: on JAX every new shape costs a compilation.
        terms = {k: ops.convert_to_numpy(v) for k, v in structure.terms(features).items()}
        weights, figures = [], []
        for i, image in enumerate(self.images):
            maps = {k: v[i] for k, v in terms.items()}
            weights.append(_heatmap_rgb(resize_map(maps["weights"], image.shape[:2])))
            fig = structure_figure(image, maps, self.panel_pixels, f"image {i}: teacher {self.layer}")
            if self.png_dir is not None:
                self._write_png(f"structure_{i:02d}.png", fig)
            if self._writer is not None:
                figures.append(figure_to_array(fig))
        self._write_images("structure/weights", weights, 0)
        self._write_images("structure/terms", figures, 0)
        self._log_report(teacher)
        self._logged_structure = True

    def _log_report(self, teacher):
        layers = self._report_layers(self.model)
        if not layers:
            return
        by_structure = {}
        for name in layers:
            structure = self._structure_for(self.model, name)
            by_structure.setdefault(id(structure), (structure, []))[1].append(name)
        levels = {}
        for structure, names in by_structure.values():
            report = structure_report(teacher, names, self.images, self.labels, structure,
                                      batch_size=len(self.images),
                                      ignore_label=self.ignore_label)
            levels.update(zip(names, report.levels))
        self._write_report(StructureReport(tuple(levels[name] for name in layers),
                                           self.labels is not None))

    def _log_predictions(self, student, step):
        with steps.inference_scope():
            student_logits = ops.convert_to_numpy(student(self.images, training=False))
        figures = []
        for i, image in enumerate(self.images):
            label = None if self.labels is None else self.labels[i]
            panels = prediction_panels(
                image,
                label,
                {"teacher": self._teacher_logits[i], "student": student_logits[i]},
                self.ignore_label,
                self.num_classes,
                0.02,
            )
            fig = predictions_figure(panels, self.panel_pixels, f"image {i}, step {step}")
            if self.png_dir is not None:
                self._write_png(f"predictions_step{step:04d}_{i:02d}.png", fig)
            if self._writer is not None:
                figures.append(figure_to_array(fig))
        self._write_images("predictions", figures, step)

    # ------------------------------------------------------------ callbacks

    def on_train_begin(self, logs=None):
        teacher, student = self._distiller_parts()
        if self.log_dir is not None and self._writer is None:
            import tensorflow as tf

            self._writer = tf.summary.create_file_writer(self.log_dir)
        self._log_structure(teacher)
        if not self._logged_predictions:
            self._log_predictions(student, 0)
            self._logged_predictions = True

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_n_epochs == 0:
            self._log_predictions(self._distiller_parts()[1], epoch + 1)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _structure_losses(model):
    """The Distiller's SARD losses that weight by the structure map."""
    return [loss for loss in getattr(model, "distillation_losses", ())
            if isinstance(loss, SARDLoss) and loss.weighting == "structure"]
