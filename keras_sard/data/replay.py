"""Datasets whose every iterator yields the same elements.

A ``tf.data`` pipeline that reshuffles on each pass
(``shuffle(reshuffle_each_iteration=True)``, ``Dataset.random(...,
rerandomize_each_iteration=True)``) gives its first iterator a sequence fixed
by its seeds, but a second iterator of the same dataset draws from seed
state that depends on what else ran in the process.  Keras on JAX and
PyTorch iterates a training dataset twice (one batch to build the model,
then the training), so it would train on the second sequence: different
from TensorFlow's, and from one process to the next.  `rebuilt_each_iteration`
builds the pipeline afresh for every iterator, inside a ``flat_map``, so
every iterator yields the first sequence: the same batches on every backend
and in every process (which is what lets a resumed run skip to where its
backup stopped).

>>> import tensorflow as tf
>>> def build():
...     return tf.data.Dataset.range(6).shuffle(6, seed=1).repeat()
>>> data = rebuilt_each_iteration(build)
>>> first = [int(x) for x in data.take(12)]
>>> second = [int(x) for x in data.take(12)]
>>> first == second, sorted(first[:6]) == list(range(6))
(True, True)
"""

import tensorflow as tf

__all__ = ["rebuilt_each_iteration"]


def rebuilt_each_iteration(build):
    """A dataset that calls `build()` (a function returning a
    ``tf.data.Dataset``, traced once) anew for each of its iterators."""
    return tf.data.Dataset.range(1).flat_map(lambda _: build())
