"""Cityscapes: urban street scenes (19 classes, 512x1024 crops).

Distil Swin-L -> Swin-T ("swin_l->swin_t") on cityscapes with a method (SARD by default):
train the teacher (or load --teacher), distil the student, print both models'
mIoU and bIoU, export the student (TFLite by default).

    python examples/cityscapes.py --data-dir /path/to/cityscapes --epochs 40
    python examples/cityscapes.py --data-dir /path/to/cityscapes --teacher teacher.keras --method cwd
    python examples/cityscapes.py   # no data: where to get it; synthetic fragments meanwhile

`--help` lists every option (schedule, recipe, seed, export formats, --backend).
"""

import sys

from keras_sard.cli import run_script

if __name__ == "__main__":
    sys.exit(run_script("run", dataset="cityscapes", real_data_recipe="swin_l->swin_t",
                        description=__doc__))
