"""RockFrag: rock fragments in a pile (binary; not public, any images/ + masks/ folder).

Distil Swin-L -> Swin-T ("swin_l->swin_t") on rockfrag with a method (SARD by default):
train the teacher (or load --teacher), distil the student, print both models'
mIoU and bIoU, export the student (TFLite by default).

    python examples/rockfrag.py --data-dir /path/to/rockfrag --epochs 40
    python examples/rockfrag.py --data-dir /path/to/rockfrag --teacher teacher.keras --method cwd
    python examples/rockfrag.py   # no data: where to get it; synthetic fragments meanwhile

`--help` lists every option (schedule, recipe, seed, export formats, --backend).
"""

import sys

from keras_sard.cli import run_script

if __name__ == "__main__":
    sys.exit(run_script("run", dataset="rockfrag", real_data_recipe="swin_l->swin_t",
                        description=__doc__))
