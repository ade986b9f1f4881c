"""Independent NumPy/SciPy references of the library's math.

Written from the spec (docs/method.md), never from the implementation: loops,
scipy.ndimage filters and np.linalg where the library uses closed forms and
keras.ops.  Tests compare the library against these on random inputs.
"""

import math

import numpy as np
from scipy import ndimage

# The documented rule (docs/method.md): λ2 ≤ 1e-6·λ1 is taken as 0.
FLOAT32_RESOLUTION = 1e-6


def random_features(rng, shape):
    # A smooth part plus noise, so edges, corners and flat parts all occur.
    b, h, w, c = shape
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    smooth = np.stack(
        [np.sin(0.7 * xx + k) * np.cos(0.5 * yy - k) for k in range(c)], axis=-1
    )
    return (smooth[None] + 0.5 * rng.normal(size=shape)).astype("float32")


# The library's padding names (NumPy's) → scipy.ndimage modes: SciPy calls
# NumPy's "symmetric" (edge repeated) "reflect", and NumPy's "reflect" (edge not
# repeated) "mirror".
SCIPY_MODES = {"symmetric": "reflect", "reflect": "mirror", "zero": "constant"}
NUMPY_MODES = {"symmetric": "symmetric", "reflect": "reflect", "zero": "constant"}
PADDINGS = tuple(SCIPY_MODES)
# The spec's defaults (§1.1, §1.4): edge-repeating padding, multi-scale E.
DEFAULT_PADDING = "symmetric"
DEFAULT_SCALES = (1, 2, 4, 8)


def ref_gradients(x, padding=DEFAULT_PADDING):
    """scipy Sobel per 2-D slice (in SciPy's mode for `padding`); scaled by 1/8."""
    mode = SCIPY_MODES[padding]
    x = x.astype("float64")
    gx = np.zeros_like(x)
    gy = np.zeros_like(x)
    for b in range(x.shape[0]):
        for c in range(x.shape[3]):
            gx[b, :, :, c] = ndimage.sobel(x[b, :, :, c], axis=1, mode=mode) / 8
            gy[b, :, :, c] = ndimage.sobel(x[b, :, :, c], axis=0, mode=mode) / 8
    return gx, gy


def ref_eigen_terms(x, padding=DEFAULT_PADDING):
    """E = λ1 − λ2 and C = sqrt(λ1·λ2) from np.linalg.eigvalsh of each J."""
    gx, gy = ref_gradients(x, padding)
    j = np.empty(x.shape[:3] + (2, 2))
    j[..., 0, 0] = (gx * gx).sum(-1)
    j[..., 0, 1] = j[..., 1, 0] = (gx * gy).sum(-1)
    j[..., 1, 1] = (gy * gy).sum(-1)
    lam = np.linalg.eigvalsh(j)  # ascending: λ2, λ1
    lam2, lam1 = lam[..., 0], lam[..., 1]
    # The documented rule: λ2 ≤ 1e-6·λ1 is taken as 0 (float32 cannot resolve it).
    floored = np.where(lam2 <= FLOAT32_RESOLUTION * lam1, 0.0, lam2)
    return lam1 - lam2, np.sqrt(np.clip(lam1 * floored, 0, None))


def ref_major_eigenvalue(x, padding=DEFAULT_PADDING):
    gx, gy = ref_gradients(x, padding)
    jxx, jxy, jyy = (gx * gx).sum(-1), (gx * gy).sum(-1), (gy * gy).sum(-1)
    return np.linalg.eigvalsh(np.stack([np.stack([jxx, jxy], -1), np.stack([jxy, jyy], -1)], -2))[..., 1]


def ref_smooth(x, sigma, padding=DEFAULT_PADDING):
    """Gaussian of radius ceil(3σ) on a map padded by np.pad in `padding`'s mode
    (repeated reflection where the map is smaller than the radius)."""
    radius = int(math.ceil(3 * sigma))
    out = np.empty(x.shape, dtype="float64")
    for b in range(x.shape[0]):
        for c in range(x.shape[3]):
            p = np.pad(x[b, :, :, c].astype("float64"), radius, mode=NUMPY_MODES[padding])
            p = ndimage.gaussian_filter(p, sigma, mode="constant", radius=radius)
            out[b, :, :, c] = p[radius:-radius, radius:-radius]
    return out


def ref_multiscale_edge(x, scales, sigma0, padding=DEFAULT_PADDING):
    return sum(
        math.exp(-s / sigma0) * ref_eigen_terms(ref_smooth(x, s, padding), padding)[0]
        for s in scales
    )


def ref_density(x, radius, method="exact"):
    """Brute force over pixels and their in-bounds windows."""
    x = x.astype("float64")
    b, h, w, _ = x.shape
    out = np.zeros((b, h, w))
    for i in range(h):
        for j in range(w):
            win = x[:, max(0, i - radius) : i + radius + 1, max(0, j - radius) : j + radius + 1]
            win = win.reshape(b, -1, x.shape[3])
            mu = win.mean(axis=1, keepdims=True)
            if method == "exact":
                out[:, i, j] = np.linalg.norm(win - mu, axis=-1).mean(axis=1)
            else:
                spread = (win**2).sum(-1).mean(1) - (mu[:, 0] ** 2).sum(-1)
                out[:, i, j] = np.sqrt(np.clip(spread, 0, None))
    return out


def ref_weights(x, beta=(2.0, 1.0, 1.0), radius=7, normalize="mean", scales=DEFAULT_SCALES,
                eps=1e-8, padding=DEFAULT_PADDING, sigma0=4.0):
    """W = S / ΣS (Eq. 23–24); E multi-scale unless `scales` is None, C single-scale."""
    e, c = ref_eigen_terms(x, padding)
    if scales is not None:
        e = ref_multiscale_edge(x, scales, sigma0, padding)
    d = ref_density(x, radius)
    score = 0.0
    for bt, term in zip(beta, (e, c, d)):
        if normalize == "mean":
            term = term / (term.mean(axis=(1, 2), keepdims=True) + eps)
        score = score + bt * term
    return score / score.sum(axis=(1, 2), keepdims=True)


# ------------------------------------------------------------------ layers


def ref_conv2d(x, kernel, bias=None):
    """'same' zero-padded cross-correlation, stride 1: (B,H,W,Ci) ⊛ (kh,kw,Ci,Co)."""
    kh, kw = kernel.shape[:2]
    ph, pw = kh // 2, kw // 2
    p = np.pad(x.astype("float64"), [(0, 0), (ph, ph), (pw, pw), (0, 0)])
    h, w = x.shape[1:3]
    out = np.zeros(x.shape[:3] + (kernel.shape[3],))
    for dy in range(kh):
        for dx in range(kw):
            out += p[:, dy : dy + h, dx : dx + w, :] @ kernel[dy, dx].astype("float64")
    if bias is not None:
        out += bias
    return out


def ref_resize_bilinear(x, size):
    """Bilinear resize with half-pixel centres and no antialiasing."""
    def axis_weights(n_in, n_out):
        src = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
        src = np.clip(src, 0, n_in - 1)
        lo = np.floor(src).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        frac = src - lo
        m = np.zeros((n_out, n_in))
        m[np.arange(n_out), lo] += 1 - frac
        m[np.arange(n_out), hi] += frac
        return m

    mh = axis_weights(x.shape[1], size[0])
    mw = axis_weights(x.shape[2], size[1])
    return np.einsum("yh,bhwc,xw->byxc", mh, x.astype("float64"), mw)


# ------------------------------------------------------------------ losses


def ref_weighted_squared_error(target, prediction, weights=None, channel_reduction="mean"):
    squared = (prediction.astype("float64") - target) ** 2
    error = squared.mean(axis=-1) if channel_reduction == "mean" else squared.sum(axis=-1)
    if weights is None:
        return error.mean()
    return (weights * error).sum(axis=(1, 2)).mean()


def ref_segmentation_loss(labels, logits, ignore=255, ce_weight=1.0, dice_weight=1.0, smooth=1.0,
                          pixel_weights=None):
    """Per-pixel loops over valid pixels, float64."""
    labels = np.asarray(labels)
    logits = np.asarray(logits, dtype="float64")
    valid = labels != ignore
    w = valid.astype("float64") if pixel_weights is None else valid * pixel_weights
    k = logits.shape[-1]
    if k == 1:
        z = logits[..., 0]
        y = np.where(valid, labels, 0).astype("float64")
        p = 1 / (1 + np.exp(-z))
        ce = -(y * np.log(p) + (1 - y) * np.log(1 - p))
        ce = (w * ce).sum() / w.sum()
        dice = 1 - (2 * (w * p * y).sum() + smooth) / ((w * p).sum() + (w * y).sum() + smooth)
        return ce_weight * ce + dice_weight * dice
    shifted = logits - logits.max(-1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(-1, keepdims=True)
    ce_total, dice_terms = 0.0, []
    for b, i, j in zip(*np.nonzero(valid)):
        ce_total += -w[b, i, j] * np.log(probs[b, i, j, labels[b, i, j]])
    ce = ce_total / w.sum()
    for c in range(k):
        g = (labels == c) & valid
        inter = (w * probs[..., c] * g).sum()
        total = (w * probs[..., c]).sum() + (w * g).sum()
        dice_terms.append(1 - (2 * inter + smooth) / (total + smooth))
    return ce_weight * ce + dice_weight * np.mean(dice_terms)


# ----------------------------------------------------------------- metrics


def ref_labels_from_logits(logits):
    logits = np.asarray(logits)
    if logits.shape[-1] == 1:
        return (logits[..., 0] > 0).astype(int)
    return logits.argmax(-1)


def ref_mean_iou(labels_list, preds_list, num_classes, ignore=255):
    cm = np.zeros((num_classes, num_classes))
    for labels, preds in zip(labels_list, preds_list):
        valid = labels != ignore
        for t, p in zip(labels[valid], preds[valid]):
            cm[t, p] += 1
    inter = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1), np.nan)
    return np.nanmean(iou)


def ref_band(mask, d):
    """mask AND NOT (mask eroded d times by a 3×3 square, zero padding)."""
    eroded = ndimage.binary_erosion(mask, structure=np.ones((3, 3)), iterations=d, border_value=0)
    return mask & ~eroded


def ref_boundary_iou(labels_list, preds_list, num_classes, ignore=255, ratio=0.02):
    """Brute force: one class at a time, one image at a time, summed over the set."""
    inter = np.zeros(num_classes)
    union = np.zeros(num_classes)
    for labels, preds in zip(labels_list, preds_list):
        for img_labels, img_preds in zip(labels, preds):
            h, w = img_labels.shape
            d = max(1, int(round(ratio * math.sqrt(h * h + w * w))))
            valid = img_labels != ignore
            for k in range(num_classes):
                g = ref_band(img_labels == k, d) & valid
                p = ref_band((img_preds == k) & valid, d) & valid
                inter[k] += (g & p).sum()
                union[k] += (g | p).sum()
    present = union > 0
    return (inter[present] / union[present]).mean() if present.any() else 0.0
