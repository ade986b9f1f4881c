"""MoNuSeg: crowded nuclei in H&E tissue (binary, 256x256 crops).

Distil Swin-L -> Swin-T ("swin_l->swin_t") on monuseg with a method (SARD by default):
train the teacher (or load --teacher), distil the student, print both models'
mIoU and bIoU, export the student (TFLite by default).

    python examples/monuseg.py --data-dir /path/to/monuseg --epochs 40
    python examples/monuseg.py --data-dir /path/to/monuseg --teacher teacher.keras --method cwd
    python examples/monuseg.py   # no data: where to get it; synthetic nuclei meanwhile

`--help` lists every option (schedule, recipe, seed, export formats, --backend).
"""

import sys

from keras_sard.cli import run_script

if __name__ == "__main__":
    sys.exit(run_script("run", dataset="monuseg", real_data_recipe="swin_l->swin_t",
                        description=__doc__))
