"""The small conv head the losses train beside the student.

`DenoisingHead` (conv3×3 → ReLU → conv3×3) is SARD's g_θ, which predicts the
noise ε (`keras_sard.losses.DistributionAlignmentLoss`), and MGD's generator,
which rebuilds the teacher's map from the masked student's
(`keras_sard.losses.MaskedGenerativeKD`).  Its name and registered
serialization name (``keras_sard>DenoisingHead``) are kept so that saved
``.keras`` files load.
"""

import keras

from keras_sard.validation import check_int

__all__ = ["DenoisingHead"]


@keras.saving.register_keras_serializable(package="keras_sard")
class DenoisingHead(keras.layers.Layer):
    """conv3×3 (hidden_channels, ReLU) → conv3×3 (channels), float32.

    SARD's g_θ (predicting the noise ε) and MGD's generator.

    Example::

        import numpy as np
        from keras_sard.losses import DenoisingHead
        DenoisingHead(channels=8, hidden_channels=16)(np.zeros((1, 6, 6, 16))).shape
        # (1, 6, 6, 8)
    """

    def __init__(self, channels, hidden_channels=128, **kwargs):
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        self.channels = check_int(channels, "channels")
        self.hidden_channels = check_int(hidden_channels, "hidden_channels")
        self.hidden = keras.layers.Conv2D(
            self.hidden_channels, 3, padding="same", activation="relu", name="hidden",
            dtype="float32"
        )
        self.output_conv = keras.layers.Conv2D(
            self.channels, 3, padding="same", name="output", dtype="float32"
        )

    def build(self, input_shape):
        self.hidden.build(input_shape)
        self.output_conv.build(tuple(input_shape[:-1]) + (self.hidden_channels,))

    def call(self, inputs):
        return self.output_conv(self.hidden(inputs))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.channels,)

    def get_config(self):
        config = super().get_config()
        config.update(channels=self.channels, hidden_channels=self.hidden_channels)
        return config
