"""The structure-importance map W of SARD (spec §1, the supplement's Eq. 16–24).

W says where on a teacher feature map the student should be matched most
closely: on edges between objects (E), at corners and junctions (C) and in
crowded regions (D).  Everything here reads teacher features only, needs no
label, runs in float32 whatever the mixed-precision policy, and carries no
gradient.

Every term can be computed and plotted on its own::

    import numpy as np
    from keras_sard.structure import StructureWeights

    features = np.random.default_rng(0).normal(size=(2, 32, 32, 16))
    terms = StructureWeights().terms(features)
    terms["edge"].shape      # (2, 32, 32): E, also "corner" (C), "density" (D)
    terms["weights"].sum(axis=(1, 2))   # W sums to 1 per image

Shapes: features are channels_last ``(batch, height, width, channels)``; every
map returned is ``(batch, height, width)``.

Non-finite features are propagated, not hidden: a NaN or Inf anywhere in one
image's features makes that image's W NaN (the other images of the batch are
unaffected), so the loss that uses W turns NaN and the Distiller's guard sees
it.  Nothing here raises on values, because values are not known while a
training step is being traced.

The package's modules: `filters` (padding, Sobel, Gaussian, the structure
tensor J), `edges` (E and C from J's eigenvalues), `density` (D) and
`layers` (the Keras layers, `StructureWeights` among them).
"""

from keras_sard.structure.density import DENSITY_METHODS, DENSITY_TILE, feature_density
from keras_sard.structure.edges import (
    DEFAULT_SCALES,
    DEFAULT_SIGMA0,
    corner_strength,
    edge_strength,
)
from keras_sard.structure.filters import (
    DEFAULT_PADDING,
    FLOAT32_RESOLUTION,
    PADDINGS,
    gaussian_smooth,
    sobel_gradients,
    structure_tensor,
)
from keras_sard.structure.layers import (
    NORMALIZATIONS,
    CornerStrength,
    EdgeStrength,
    FeatureDensity,
    StructureWeights,
)

__all__ = [
    "sobel_gradients",
    "gaussian_smooth",
    "structure_tensor",
    "edge_strength",
    "corner_strength",
    "feature_density",
    "EdgeStrength",
    "CornerStrength",
    "FeatureDensity",
    "StructureWeights",
]
