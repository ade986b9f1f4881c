"""The experiment workflow shared by the command line, the examples and the table runner.

data → teacher (trained here, or loaded from a ``.keras`` file) → student
distilled with a method → mIoU and bIoU → ``.keras`` files and exported
artefacts.  Each step is a function; `run_experiment` chains them.  One
module per step:

- `keras_sard.training.tasks`: `Task`, `load_task`, `stand_in_task`,
  `unlabelled_data` (images without labels for `distill`);
- `keras_sard.training.model_files`: `save_model`, `load_model`;
- `keras_sard.training.fitting`: `train_segmenter`, `distill`, `fair_batchnorm`;
- `keras_sard.training.scoring`: `predict`, `evaluate`;
- `keras_sard.training.exports`: `export`, `export_path`;
- `keras_sard.training.experiment`: `run_experiment`, `ExperimentResult`.

The optimiser follows the paper (spec §5) unless a recipe says otherwise:
`Schedule` (from `keras_sard.schedules`, re-exported here) holds the
settings, and each recipe of `keras_sard.models.recipes` names the schedules
of its teacher and student.

Example::

    import keras
    from keras_sard import training

    task = training.load_task("synthetic", image_size=32, num_examples=4)
    model = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(2, 1)])
    training.train_segmenter(model, task, training.Schedule(steps_per_epoch=1, batch_size=2),
                             verbose=0)
    print(training.evaluate(model, task.val))  # {'miou': ..., 'biou': ...}
"""

from keras_sard.schedules import (PAPER_SCHEDULE, SYNTHETIC_SCHEDULE, SYNTHETIC_TEACHER_SCHEDULE,
                                  Schedule)
from keras_sard.training.experiment import ExperimentResult, run_experiment
from keras_sard.training.exports import export, export_path
from keras_sard.training.fitting import (BATCHNORM_SEED_OFFSET, batchnorm_note, check_model_fits,
                                         distill, fair_batchnorm, train_segmenter)
from keras_sard.training.model_files import load_model, save_model
from keras_sard.training.scoring import evaluate, predict
from keras_sard.training.tasks import (SYNTHETIC_IMAGE_SIZE, Task, load_task, stand_in_task,
                                       unlabelled_data, unlabelled_note)

__all__ = [
    "BATCHNORM_SEED_OFFSET",
    "ExperimentResult",
    "PAPER_SCHEDULE",
    "SYNTHETIC_IMAGE_SIZE",
    "SYNTHETIC_SCHEDULE",
    "SYNTHETIC_TEACHER_SCHEDULE",
    "Schedule",
    "Task",
    "batchnorm_note",
    "check_model_fits",
    "distill",
    "evaluate",
    "export",
    "export_path",
    "fair_batchnorm",
    "load_model",
    "load_task",
    "predict",
    "run_experiment",
    "save_model",
    "stand_in_task",
    "train_segmenter",
    "unlabelled_data",
    "unlabelled_note",
]
