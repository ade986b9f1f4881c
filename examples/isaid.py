"""iSAID: aerial scenes with many small vehicles (15 classes + background, 896x896 crops).

Distil Swin-L -> Swin-T ("swin_l->swin_t") on isaid with a method (SARD by default):
train the teacher (or load --teacher), distil the student, print both models'
mIoU and bIoU, export the student (TFLite by default).

    python examples/isaid.py --data-dir /path/to/isaid --epochs 40
    python examples/isaid.py --data-dir /path/to/isaid --teacher teacher.keras --method cwd
    python examples/isaid.py   # no data: where to get it; synthetic fragments meanwhile

`--help` lists every option (schedule, recipe, seed, export formats, --backend).
"""

import sys

from keras_sard.cli import run_script

if __name__ == "__main__":
    sys.exit(run_script("run", dataset="isaid", real_data_recipe="swin_l->swin_t",
                        description=__doc__))
