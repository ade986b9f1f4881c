"""Read intermediate layer outputs during the model's own forward pass.

`FeatureTaps` finds layers by name, nested ones included, and records what
they return while the model runs once — so a distiller needs no second
forward pass and no rebuilt feature-extractor model, and it works for
functional, sequential and subclassed models alike, on every backend, eager
or traced.  `FeatureTaps.truncated_model()` gives the model cut after the
tapped layers, for a caller that needs nothing past them.

Names:

- ``"a/b/c"`` walks nested layers by name: layer ``a`` of the model, layer
  ``b`` inside ``a``, and so on.
- A bare name is searched at every depth and must match exactly one layer.

Example::

    import keras, numpy as np
    from keras_sard.taps import FeatureTaps

    inputs = keras.Input((8, 8, 3))
    hidden = keras.layers.Conv2D(4, 3, padding="same", name="stem")(inputs)
    model = keras.Model(inputs, keras.layers.Conv2D(2, 1, name="head")(hidden))
    taps = FeatureTaps(model, ["stem"])
    with taps.record() as features:
        logits = model(np.zeros((1, 8, 8, 3), "float32"))
    features["stem"].shape  # (1, 8, 8, 4)
"""

import contextlib
import difflib

import keras

__all__ = ["FeatureTaps", "find_layer"]


def _sublayers(layer):
    # Keras' own traversal: every tracked sublayer at every depth, once each.
    return list(layer._flatten_layers(include_self=False, recursive=True))


def _direct_child(layer, name):
    if hasattr(layer, "get_layer"):
        try:
            return layer.get_layer(name)
        except ValueError:
            pass
    for child in layer._flatten_layers(include_self=False, recursive=False):
        if child.name == name:
            return child
    return None


def _runs_its_graph(model):
    """Whether calling `model` runs exactly its functional graph: a functional
    or Sequential model whose `call` is Keras' own (not overridden)."""
    call = type(model).call
    return any(
        cls.__dict__.get("call") is call
        and cls.__name__ in ("Functional", "Sequential")
        and cls.__module__.startswith("keras.")
        for cls in type(model).__mro__
    )


def find_layer(model, name, role="model"):
    """The layer `name` refers to in `model` (see the module docstring).

    Raises a ValueError naming `role` (e.g. "teacher") and the closest
    existing names when there is no such layer, or the candidate paths when a
    bare name is ambiguous.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"Layer names must be non-empty strings; got {name!r} for the {role}.")
    if "/" in name:
        layer = model
        for part in name.split("/"):
            child = _direct_child(layer, part)
            if child is None:
                names = [c.name for c in layer._flatten_layers(include_self=False, recursive=False)]
                raise ValueError(
                    f"The {role} has no layer {name!r}: {layer.name!r} holds no layer "
                    f"{part!r}. Its layers: {names[:30]}."
                )
            layer = child
        return layer

    matches = [layer for layer in _sublayers(model) if layer.name == name]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        names = sorted({layer.name for layer in _sublayers(model)})
        close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
        hint = f" Closest names: {close}." if close else ""
        raise ValueError(
            f"The {role} ({model.name!r}) has no layer named {name!r} at any depth.{hint}"
        )
    raise ValueError(
        f"The {role} ({model.name!r}) has {len(matches)} layers named {name!r}; "
        "name one by its path, e.g. 'outer/inner'."
    )


class FeatureTaps:
    """Record the outputs of named layers of `model` during one forward pass.

    Args:
        model: the Keras model to read.
        names: layer names or paths (see the module docstring).
        role: how errors refer to the model ("teacher", "student").

    `record()` is a context manager yielding a dict that fills with
    ``{name: output}`` as the model runs.  On leaving the context, every
    tapped layer must have run exactly once; a layer that ran twice (a shared
    layer) or never is an error, since its output would be ambiguous.
    """

    def __init__(self, model, names, role="model"):
        self.model = model
        self.role = role
        self.layers = {}
        for name in dict.fromkeys(names):  # unique, in order
            self.layers[name] = find_layer(model, name, role)

    def __bool__(self):
        return bool(self.layers)

    def truncated_model(self):
        """A functional model from the model's inputs to the tapped layers'
        outputs, sharing the model's layers and weights: the model run only as
        far as the taps need (what lies after them, e.g. a segmenter's decoder,
        is left out).  None where the model's own graph does not reach every
        tapped layer exactly once — a subclassed model, a layer nested inside
        another layer or model, a layer called more than once — or when
        nothing is tapped; run the whole model there.

        Running it inside `record()` fills the dict as running the model
        would, with the same values.
        """
        layers = list(self.layers.values())
        if not layers or not _runs_its_graph(self.model):
            return None
        top_level = {id(layer) for layer in self.model.layers}
        if any(id(layer) not in top_level or len(layer._inbound_nodes) != 1 for layer in layers):
            return None
        try:
            inputs = self.model.input
        except AttributeError:  # Sequential
            inputs = self.model.inputs
            inputs = inputs[0] if len(inputs) == 1 else inputs
        try:
            return keras.Model(
                inputs,
                [layer.output for layer in layers],
                name=f"{self.model.name}_to_taps",
                dtype=self.model.dtype_policy,
            )
        except (ValueError, AttributeError):  # not connected to the inputs
            return None

    def output_shapes(self):
        """Static output shapes of the tapped layers where the model's graph
        knows them (functional models), else None for that name."""
        shapes = {}
        for name, layer in self.layers.items():
            try:
                shapes[name] = tuple(layer.output.shape)
            except (AttributeError, ValueError, RuntimeError):
                shapes[name] = None
        return shapes

    @contextlib.contextmanager
    def record(self):
        captured = {}
        counts = dict.fromkeys(self.layers, 0)
        patched = []
        for name, layer in self.layers.items():
            original = layer.call
            own = layer.__dict__.get("call")  # an instance-level call, kept as is

            def recording_call(*args, _original=original, _name=name, **kwargs):
                outputs = _original(*args, **kwargs)
                counts[_name] += 1
                captured[_name] = outputs
                return outputs

            # An instance attribute shadows the class's `call` for this pass only.
            object.__setattr__(layer, "call", recording_call)
            patched.append((layer, own))
        try:
            yield captured
        finally:
            for layer, own in patched:
                if own is None:
                    object.__delattr__(layer, "call")
                else:
                    object.__setattr__(layer, "call", own)
        for name, count in counts.items():
            if count != 1:
                raise ValueError(
                    f"The {self.role}'s tapped layer {name!r} ran {count} times in one "
                    "forward pass; tap a layer that runs exactly once (a shared layer "
                    "has no single output to distil)."
                )
