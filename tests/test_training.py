"""keras_sard.training: the schedule, the data, evaluation against NumPy/SciPy
references (whole images, sliding windows, padding), model files.  Training
itself runs in test_cli, test_examples and test_reproduce_tables."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage

from keras_sard import training
from keras_sard.data import IMAGENET_MEAN, IMAGENET_STD, SegmentationData

NUM_CLASSES = 3


# ------------------------------------------------------------------ schedule


def test_schedule_defaults_are_the_papers():
    schedule = training.Schedule()
    assert (schedule.learning_rate, schedule.weight_decay, schedule.batch_size,
            schedule.gradient_accumulation_steps) == (1e-4, 0.01, 8, 2)
    optimizer = schedule.optimizer(total_steps=40)
    config = optimizer.get_config()
    assert isinstance(optimizer, keras.optimizers.AdamW)
    assert config["weight_decay"] == 0.01 and config["gradient_accumulation_steps"] == 2
    decay = config["learning_rate"]["config"]
    assert decay["initial_learning_rate"] == 1e-4 and decay["decay_steps"] == 40
    assert decay["alpha"] == 0.0  # down to 0
    no_accumulation = training.Schedule(gradient_accumulation_steps=1).optimizer(5)
    assert no_accumulation.get_config()["gradient_accumulation_steps"] is None


def test_schedule_steps_and_replace():
    schedule = training.Schedule(batch_size=4)
    assert schedule.steps(num_examples=10) == 2 and schedule.steps(num_examples=3) == 1
    assert schedule.replace(steps_per_epoch=7, epochs=None).steps(10) == 7
    assert schedule.replace(epochs=None) == schedule


@pytest.mark.parametrize("kwargs, message", [
    ({"epochs": 0}, "`epochs` must be an integer ≥ 1"),
    ({"batch_size": 2.5}, "`batch_size`"),
    ({"learning_rate": 0}, "`learning_rate` must be a number > 0"),
    ({"weight_decay": -1}, "`weight_decay`"),
    ({"gradient_accumulation_steps": 0}, "`gradient_accumulation_steps`"),
])
def test_schedule_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        training.Schedule(**kwargs)


# ---------------------------------------------------------------------- data


def test_synthetic_task_and_stand_ins():
    task = training.load_task("synthetic", image_size=32, num_examples=8, kind="nuclei")
    assert (task.train.num_examples, task.val.num_examples) == (8, 2)
    assert task.image_size == (32, 32) and task.val.split == "val" and task.cache
    images, masks = next(iter(task.train_batches(batch_size=4)))
    assert tuple(images.shape) == (4, 32, 32, 3) and tuple(masks.shape) == (4, 32, 32)

    task, notice = training.stand_in_task("LoveDA", image_size=32, num_examples=4)
    assert task.train.name == "synthetic_fragments" and task.num_classes == 4
    assert "No data folder given for 'loveda'" in notice and "zenodo" in notice
    assert notice.endswith("Running on synthetic fragments (4 classes, 32x32) instead.")
    task, notice = training.stand_in_task("cellbin", image_size=32, num_examples=4)
    assert task.train.name == "synthetic_nuclei" and task.num_classes == 2
    assert training.stand_in_task("synthetic", image_size=32, num_examples=4)[1] == ""


def test_dataset_names_resolve_as_load_dataset_does(tmp_path):
    """One alias table (data.registry.resolve_dataset) for load_dataset,
    load_task and stand_in_task."""
    with pytest.raises(FileNotFoundError, match="Dataset 'ade20k': no data_dir was given"):
        training.load_task("ade20k-150")
    with pytest.raises(FileNotFoundError, match="Dataset 'ade20k'.*is not a folder"):
        training.load_task("ADE20K-150", tmp_path / "missing")
    assert "No data folder given for 'cellbin'" in training.stand_in_task(
        "CellBinDB", image_size=32, num_examples=4)[1]


def test_run_experiment_trains_with_the_recipes_schedules(monkeypatch, tmp_path):
    """The Swin pair trains with the paper's schedule (recipes own their
    schedules); stopped before any model is built."""
    from keras_sard.models.recipes import Recipe, get_recipe

    class Stop(Exception):
        pass

    seen = {}

    def build_teacher(self, *args, **kwargs):
        return "teacher"

    def train_segmenter(model, task, schedule, **kwargs):
        seen["teacher"] = schedule
        raise Stop

    monkeypatch.setattr(Recipe, "build_teacher", build_teacher)
    monkeypatch.setattr(training.experiment, "train_segmenter", train_segmenter)
    for recipe, given in (("swin_l->swin_t", None), ("small", None),
                          ("swin_l->swin_t", training.SYNTHETIC_SCHEDULE)):
        with pytest.raises(Stop):
            training.run_experiment(recipe=recipe, image_size=32, num_examples=4,
                                    teacher_schedule=given, log=lambda line: None,
                                    output_dir=str(tmp_path))
        assert seen["teacher"] == (given or get_recipe(recipe).teacher_schedule)
    assert get_recipe("swin_l->swin_t").teacher_schedule == training.PAPER_SCHEDULE
    assert get_recipe("small").student_schedule == training.SYNTHETIC_SCHEDULE


def test_run_experiment_passes_object_scale_to_synthetic_data_only(monkeypatch, tmp_path):
    class Stop(Exception):
        pass

    def stand_in_task(dataset, image_size=None, **kwargs):
        raise Stop(kwargs)

    monkeypatch.setattr(training.experiment, "stand_in_task", stand_in_task)
    with pytest.raises(Stop) as stopped:
        training.run_experiment(object_scale=4, log=lambda line: None, output_dir=str(tmp_path))
    assert stopped.value.args[0]["object_scale"] == 4
    with pytest.raises(ValueError, match="`object_scale` \\(4\\) is for synthetic data"):
        training.run_experiment("monuseg", str(tmp_path), object_scale=4, output_dir=str(tmp_path))


def test_load_task_errors(tmp_path):
    with pytest.raises(ValueError, match="Unknown dataset 'mnist'"):
        training.load_task("mnist")
    with pytest.raises(ValueError, match="image_size 48 is not divisible by 32"):
        training.load_task("synthetic", image_size=48)
    with pytest.raises(FileNotFoundError, match="no data_dir was given(.|\n)*Download: https"):
        training.load_task("monuseg")
    with pytest.raises(ValueError, match="`num_examples`"):
        training.load_task("synthetic", num_examples=0)


# ------------------------------------------------------------ long runs


class _InterruptAt(keras.callbacks.Callback):
    """Raise after batch `batch` of epoch `epoch` (mid-epoch)."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.at, self.epoch = (epoch, batch), None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            raise RuntimeError("interrupted")


def test_training_batches_are_one_sequence_whoever_iterates_them():
    """Every iterator of train_batches yields the same batches (Keras on JAX
    and PyTorch iterates twice: a batch to build the model, then training),
    and skip=k starts that sequence at batch k (a resumed run)."""
    task = training.load_task("synthetic", image_size=32, num_examples=6)

    def first(batches, count):
        return [images.numpy() for images, _ in batches.take(count)]

    batches = task.train_batches(batch_size=2, seed=4)
    once = first(batches, 7)  # more than one pass over the 6 images: reshuffled passes
    for again in (first(batches, 7), first(task.train_batches(batch_size=2, seed=4), 7)):
        for a, b in zip(again, once):
            np.testing.assert_array_equal(a, b)
    for a, b in zip(first(task.train_batches(batch_size=2, seed=4, skip=3), 4), once[3:]):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first(task.train_batches(batch_size=2, seed=5), 1)[0], once[0])


def test_train_segmenter_resumes_from_its_backup_as_if_never_interrupted(tmp_path):
    """backup_dir: an interruption in the middle of the second epoch, then
    the same call resumes from the backup of the first; the resumed epochs
    see the batches the uninterrupted run saw (the pipeline's stream is
    skipped to where that epoch began), so the weights come out the same."""
    task = training.load_task("synthetic", image_size=32, num_examples=8)
    schedule = training.Schedule(epochs=3, steps_per_epoch=2, batch_size=2, learning_rate=1e-2,
                                 gradient_accumulation_steps=1)

    def train(callbacks=(), backup_dir=None):
        keras.utils.set_random_seed(3)
        model = keras.Sequential([keras.Input((32, 32, 3)),
                                  keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
                                  keras.layers.Conv2D(2, 1)])
        history = training.train_segmenter(model, task, schedule, seed=5, verbose=0,
                                           callbacks=list(callbacks), backup_dir=backup_dir)
        return model, history

    expected, _ = train()
    backup = tmp_path / "backup"
    with pytest.raises(RuntimeError, match="interrupted"):
        train([_InterruptAt(1, 0)], backup)
    assert (backup / "training_metadata.json").is_file()
    resumed, history = train(backup_dir=backup)
    assert history.epoch == [1, 2] and not backup.exists()
    for actual, wanted in zip(resumed.get_weights(), expected.get_weights()):
        np.testing.assert_allclose(actual, wanted, rtol=1e-6, atol=1e-7)


# ------------------------------------------------- unlabelled images (distill)


def _png_folder(folder, count, size=40, grey=False):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(count)
    shape = (size, size) if grey else (size, size, 3)
    for index in range(count):
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(folder / f"{index}.png")
    return folder


def _conv_segmenter(seed, image_size=32, num_classes=2):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((image_size, image_size, 3)),
                             keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
                             keras.layers.Conv2D(num_classes, 1)])


def test_distill_on_mixed_batches_trains_on_their_labelled_part(tmp_path):
    """distill(unlabelled=folder): a model without BatchNorm trained from
    scratch on batches of 2 labelled + 2 unlabelled images comes out exactly
    as one trained on the 2 labelled images alone (the task loss skips the
    unlabelled ones; the labelled part is the 2-image pipeline of the seed)."""
    task = training.load_task("synthetic", image_size=32, num_examples=8)
    folder = _png_folder(tmp_path / "unlabelled", 3)
    teacher = _conv_segmenter(0)

    def train(batch_size, **unlabelled):
        student = _conv_segmenter(1)
        schedule = training.Schedule(steps_per_epoch=3, batch_size=batch_size,
                                     learning_rate=1e-2, recalibrate_batchnorm=False)
        training.distill(teacher, student, task, "scratch", schedule, seed=2, verbose=0,
                         **unlabelled)
        return student.get_weights()

    mixed = train(4, unlabelled=folder, unlabelled_ratio=0.5)
    plain = train(2)
    other = train(2, unlabelled=str(folder), unlabelled_ratio=0.5)  # 1 + 1: other batches
    for actual, wanted in zip(mixed, plain):
        np.testing.assert_allclose(actual, wanted, rtol=1e-5, atol=1e-6)
    assert not np.allclose(other[0], plain[0])


def test_distill_with_unlabelled_images_re_estimates_batchnorm_on_labelled_batches(
        monkeypatch, tmp_path):
    """SARD-style distillation (CWD here: cheaper) on mixed batches: the
    distillation term is trained; BatchNorm is then re-estimated on batches
    of labelled images only (no image whose mask is all the ignore label)."""
    from keras_sard.data import drop_labels, make_synthetic
    from keras_sard.models import get_recipe

    task = training.load_task("synthetic", image_size=32, num_examples=8)
    unlabelled = drop_labels(make_synthetic("fragments", 6, (32, 32), split="test"))
    teacher, student, _, _ = get_recipe("small").build(2, 32, tiny=True)
    seen = []
    real = training.fitting.recalibrate_batchnorm

    def spy(model, batches, num_batches=None, **kwargs):
        seen.extend(masks.numpy() for _, masks in batches.take(num_batches))
        return real(model, batches, num_batches=num_batches, **kwargs)

    monkeypatch.setattr(training.fitting, "recalibrate_batchnorm", spy)
    schedule = training.Schedule(steps_per_epoch=2, batch_size=4, recalibrate_batchnorm=True,
                                 recalibration_batches=2)
    history = training.distill(teacher, student, task, "cwd", schedule, verbose=0,
                               unlabelled=unlabelled, unlabelled_ratio=0.25)
    assert np.isfinite(history.history["cwd"]).all() and history.recalibration.batches == 2
    assert len(seen) == 2 and all(masks.shape[0] == 4 for masks in seen)
    assert not any((image == 255).all() for masks in seen for image in masks)


def test_distill_refuses_bad_unlabelled_images_before_training(tmp_path):
    from keras_sard.data.errors import BadDataError, MissingDataError

    task = training.load_task("synthetic", image_size=32, num_examples=4)
    teacher, student = _conv_segmenter(0), _conv_segmenter(1)
    schedule = training.Schedule(steps_per_epoch=1, batch_size=4)

    def distill(unlabelled, ratio=0.5, on=task):
        training.distill(teacher, student, on, "cwd", schedule, verbose=0,
                         unlabelled=unlabelled, unlabelled_ratio=ratio)

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MissingDataError, match=f"^{empty}: no image files"):
        distill(empty)
    broken = _png_folder(tmp_path / "broken", 2)
    (broken / "1.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    with pytest.raises(BadDataError, match=f"^{broken / '1.png'}: cannot be read as an image"):
        distill(broken)
    with pytest.raises(ValueError, match="unlabelled_ratio=0.1 of batch_size=4 gives 0"):
        distill(_png_folder(tmp_path / "good", 2), 0.1)
    with pytest.raises(TypeError, match="unlabelled must be a folder of images or a "):
        distill(np.zeros((2, 32, 32, 3)))
    # Grey unlabelled images beside colour labelled files ('folder' dataset).
    from PIL import Image

    root = tmp_path / "labelled"
    for split in ("train", "val"):
        _png_folder(root / split / "images", 2, size=32)
        (root / split / "masks").mkdir()
        for index in range(2):
            Image.fromarray(np.zeros((32, 32), np.uint8)).save(
                root / split / "masks" / f"{index}.png")
    folder_task = training.load_task("folder", root, 32, num_classes=2)
    grey = _png_folder(tmp_path / "grey", 2, grey=True)
    with pytest.raises(BadDataError, match=f"^{grey / '0.png'}: unlabelled image .* is grey"):
        distill(grey, on=folder_task)


# ---------------------------------------------------------------- evaluation


def _pixel_model(kernel, image_size=None):
    """Logits = normalised image @ kernel at every pixel (a 1×1 convolution)."""
    shape = (None, None, 3) if image_size is None else (image_size, image_size, 3)
    inputs = keras.Input(shape)
    conv = keras.layers.Conv2D(kernel.shape[1], 1, use_bias=False)
    model = keras.Model(inputs, conv(inputs))
    conv.set_weights([kernel.reshape(1, 1, 3, -1)])
    return model


def _data(rng, sizes):
    """Images of different sizes: blocky labels the pixel model half gets right."""
    images, masks = [], []
    for height, width in sizes:
        label = np.repeat(np.repeat(rng.integers(0, NUM_CLASSES, (height // 4, width // 4)),
                                    4, 0), 4, 1)
        image = rng.integers(0, 256, (height, width, 3)).astype(np.uint8)
        image[..., 0] = np.where(rng.random((height, width)) < 0.7, 80 * label,
                                 image[..., 0]).astype(np.uint8)
        label[rng.random(label.shape) < 0.05] = 255
        images.append(image)
        masks.append(label.astype(np.int32))

    def generator():
        yield from zip(images, masks)

    dataset = tf.data.Dataset.from_generator(generator, output_signature=(
        tf.TensorSpec((None, None, 3), tf.uint8), tf.TensorSpec((None, None), tf.int32)))
    data = SegmentationData(dataset=dataset, num_classes=NUM_CLASSES,
                            class_names=("a", "b", "c"), num_examples=len(sizes), name="toy")
    return data, images, masks


def _reference_scores(images, masks, kernel):
    """mIoU (confusion matrix) and Boundary IoU (SciPy erosion), spec §4."""
    confusion = np.zeros((NUM_CLASSES, NUM_CLASSES))
    inter, union = np.zeros(NUM_CLASSES), np.zeros(NUM_CLASSES)
    for image, label in zip(images, masks):
        x = (image / 255.0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
        prediction = np.argmax(x @ kernel, axis=-1)
        valid = label != 255
        np.add.at(confusion, (label[valid], prediction[valid]), 1)
        d = max(1, int(round(0.02 * np.hypot(*label.shape))))

        def band(mask):
            return mask & ~ndimage.binary_erosion(mask, np.ones((3, 3)), iterations=d,
                                                  border_value=0)

        for k in range(NUM_CLASSES):
            truth, guess = band(label == k), band((prediction == k) & valid)
            inter[k] += np.sum(truth & guess & valid)
            union[k] += np.sum((truth | guess) & valid)
    tp = np.diag(confusion)
    denominator = confusion.sum(0) + confusion.sum(1) - tp
    miou = np.mean(tp[denominator > 0] / denominator[denominator > 0])
    biou = np.mean(inter[union > 0] / union[union > 0])
    return miou, biou


@pytest.mark.parametrize("image_size", [None, 32], ids=["any-size", "sliding-window"])
def test_evaluate_matches_numpy(rng, image_size):
    kernel = rng.normal(size=(3, NUM_CLASSES)).astype("float32")
    kernel[0] = [-2.0, 0.0, 2.0]  # channel 0 carries the label
    data, images, masks = _data(rng, [(48, 40), (32, 64), (36, 36)])
    scores = training.evaluate(_pixel_model(kernel, image_size), data)
    miou, biou = _reference_scores(images, masks, kernel)
    assert scores["miou"] == pytest.approx(miou, rel=1e-5)
    assert scores["biou"] == pytest.approx(biou, rel=1e-5)
    assert 0.2 < scores["miou"] < 0.95


def test_predict_covers_every_pixel_with_windows(rng):
    kernel = rng.normal(size=(3, 2)).astype("float32")
    images = rng.normal(size=(2, 45, 70, 3)).astype("float32")
    logits = training.predict(_pixel_model(kernel, 32), images)
    np.testing.assert_allclose(logits, images @ kernel, rtol=1e-5, atol=1e-5)


def test_evaluate_errors(rng):
    data, _, _ = _data(rng, [(32, 32)])
    model = _pixel_model(rng.normal(size=(3, 2)).astype("float32"))
    with pytest.raises(ValueError, match="predicts 2 classes; the data \\('toy'\\) has 3"):
        training.evaluate(model, data)
    with pytest.raises(TypeError, match="SegmentationData"):
        training.evaluate(model, [(np.zeros((32, 32, 3)), np.zeros((32, 32)))])


# -------------------------------------------------------------------- files


def test_model_files(tmp_path, rng):
    model = _pixel_model(rng.normal(size=(3, 2)).astype("float32"), 32)
    path = training.save_model(model, tmp_path / "sub" / "m.keras")
    loaded = training.load_model(path)
    x = rng.normal(size=(1, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)),
                               keras.ops.convert_to_numpy(model(x)), rtol=1e-6)
    with pytest.raises(ValueError, match="saved as '.keras' files"):
        training.save_model(model, tmp_path / "m.h5")
    with pytest.raises(FileNotFoundError, match="No model file"):
        training.load_model(tmp_path / "missing.keras")
    (tmp_path / "junk.keras").write_text("junk")
    with pytest.raises(ValueError, match="is not a Keras model file"):
        training.load_model(tmp_path / "junk.keras")
    assert training.export_path("out/student", "saved_model") == "out/student_saved_model"
    with pytest.raises(ValueError, match="Unknown export format 'gif'"):
        training.export_path("out/student", "gif")
