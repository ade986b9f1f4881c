"""ADE20K SceneParsing (150 classes, 512x512 crops).

Distil Swin-L -> Swin-T ("swin_l->swin_t") on ade20k with a method (SARD by default):
train the teacher (or load --teacher), distil the student, print both models'
mIoU and bIoU, export the student (TFLite by default).

    python examples/ade20k.py --data-dir /path/to/ade20k --epochs 40
    python examples/ade20k.py --data-dir /path/to/ade20k --teacher teacher.keras --method cwd
    python examples/ade20k.py   # no data: where to get it; synthetic fragments meanwhile

`--help` lists every option (schedule, recipe, seed, export formats, --backend).
"""

import sys

from keras_sard.cli import run_script

if __name__ == "__main__":
    sys.exit(run_script("run", dataset="ade20k", real_data_recipe="swin_l->swin_t",
                        description=__doc__))
