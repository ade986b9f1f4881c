"""The ``keras-sard`` command line.

Verbs (``keras-sard VERB --help`` for each)::

    keras-sard train-teacher --output run/teacher.keras
    keras-sard distill --teacher run/teacher.keras --method sard --output run/student.keras
    keras-sard evaluate --model run/student.keras
    keras-sard export --model run/student.keras --format tflite
    keras-sard visualize --teacher run/teacher.keras --student run/student.keras
    keras-sard diagnose --teacher run/teacher.keras
    keras-sard run --dataset monuseg --data-dir data/monuseg --method sard
    keras-sard tables --quick

Every verb works on the synthetic data and the "small" recipe by default, so
each runs on a CPU as it is.  ``--dataset NAME --data-dir FOLDER`` points a
verb at a real dataset; without ``--data-dir`` it runs on synthetic data
standing in for it and says where to download the real one.  ``--backend``
(before or after the verb) picks Keras' backend.  Bad input ends with a
one-line error and exit code 2.

The example scripts (``examples/<dataset>.py``) are the ``run`` verb with
each dataset's defaults (`run_script`).  The work itself is done by
`keras_sard.training` and `keras_sard.tables`.

One module per concern: `keras_sard.cli.parser` (what the command line
accepts; help built from the registries; no Keras import),
`keras_sard.cli.runner` (`main`, `run_script`, the backend) and
`keras_sard.cli.handlers` (what each verb does; imported once the backend
is set).  ``import keras_sard.cli`` does not import Keras.
"""

from keras_sard.cli.runner import main, run_script, use_backend
from keras_sard.cli.parser import BACKENDS, UsageError, build_parser

__all__ = ["BACKENDS", "UsageError", "build_parser", "main", "run_script", "use_backend"]
