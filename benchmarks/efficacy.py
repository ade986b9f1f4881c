"""Efficacy benchmark: what SARD does for a student, as a paired experiment (issue 14 item 5).

Pre-registered protocol (fixed on 2026-12-02, before any result of this benchmark was seen;
only the step counts were sized from timings of the models, never from scores)

Question
    In a CPU regime where W concentrates on object boundaries at the tapped strides, does SARD's
    structure weighting help a student beyond uniform feature distillation (SARD − sard_uniform,
    the primary comparison), and how does SARD compare with CWD and with training from scratch?
    With --unlabelled: does adding unlabelled images help scratch (a control: nothing to gain),
    CWD and SARD?

Regime
    Data      synthetic nuclei (keras_sard.data.synthetic, kind="nuclei", 2 classes),
              object_scale=OBJECT_SCALE_LARGE (objects about 15-40 px), 128x128 images.
              Teacher set: train split images 0..255 (256, labelled).
              Student labelled set: train images 0..23 (24).
              Unlabelled set (--unlabelled only): train images 24..255, labels dropped,
              mixed into every student batch at ratio 0.5 (4 labelled + 4 unlabelled images).
              Validation: val split images 0..63 at full resolution.
    Models    recipe "small" (random initial weights): teacher widths 32-64-128-256,
              student widths 16-32-64-128, UPerNet decoders; feature methods tap the four
              levels (strides 4, 8, 16, 32).
    Teacher   trained once (seed 0) on its 256 images: 1200 steps of batch 8, AdamW lr 1e-3,
              weight decay 0.01, cosine decay, the paper's augmentation (flip, ±15° rotation,
              colour jitter); then its BatchNorm statistics re-estimated as below.
    Students  methods scratch, cwd, sard_uniform, sard with the library's defaults
              (keras_sard.methods; SARD: edge-repeating padding, multi-scale E, r = 7,
              β = (2, 1, 1), λf = 1, λd = 0.5). Equal budget: 300 steps of batch 8, AdamW
              lr 1e-3, weight decay 0.01, cosine decay, no accumulation, same augmentation.
              Seeds 0, 1, 2: for seed s every method starts from the same initial student
              weights (keras.utils.set_random_seed(s) before building) and sees the same
              batches (pipeline seed s). With --unlabelled, scratch, cwd and sard are trained
              again on the mixed batches (same seeds, same step budget: the labelled images
              per step are halved, as a user who adds unlabelled images at ratio 0.5 gets).
    Fair BN   every model's BatchNorm statistics are re-estimated before scoring
              (keras_sard.batchnorm.recalibrate_batchnorm) on 16 batches of 8 from the
              labelled training pipeline of its own training set (teacher: its 256 images;
              students: the 24 labelled images, augmented, pipeline seed 1000 + s), the same
              batches for every method of a seed, whatever the arm.
    Scoring   mIoU and Boundary IoU (keras_sard.training.evaluate) on the 64 val images.

Printed, in this order
    1. keras_sard.diagnostics.structure_report of the trained teacher, levels 1-4, on the 64
       val images with labels, using the exact StructureWeights SARD trains with. The regime
       qualifies when level 1's boundary concentration is >= 1.3; the benchmark reports it
       either way and is not re-run with another regime after seeing method scores.
    2. Per seed: every method's mIoU and bIoU.
    3. Paired differences per seed and their mean ± 95 % interval (Student's t,
       t(0.975, n-1)·sd/sqrt(n), n = number of seeds), in mIoU and bIoU points:
       SARD − sard_uniform (primary), SARD − CWD, SARD − scratch; with --unlabelled also
       (method + unlabelled) − (method) for scratch, CWD and SARD.
    Conclusions are drawn from these intervals only (an interval that contains 0 is "no
    measurable difference at this n"). Nothing is tuned after seeing them.

Budget: <= 30 min on 2 CPU cores for the labelled-only comparison (measured per-step:
teacher 0.21 s, scratch 0.14 s, CWD 0.28 s, sard_uniform 0.18 s, SARD 0.52 s on TensorFlow,
2 shared cores); --unlabelled adds 9 student runs. --quick runs the same code on tiny
settings for the tests (numbers meaningless).
"""

import sys

if __name__ == "__main__":
    sys.exit("benchmarks/efficacy.py: the protocol above is fixed; the runner is being written.")
