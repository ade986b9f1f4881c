"""Reproduce the layout of the paper's Tables 6-7: methods x datasets x seeds.

One teacher per dataset, one student per method and seed, each scored on the
validation split; writes table.md, table.csv and runs.csv (every run) into
--output-dir and prints the Markdown table (mIoU, bIoU in %, mean ± std over
seeds, and Δ vs CWD).

    python examples/reproduce_tables.py --quick     # the plumbing, in minutes
    python examples/reproduce_tables.py             # synthetic data, 3 seeds (< 25 min, 2 CPUs)
    python examples/reproduce_tables.py --datasets monuseg isaid cellbin loveda \\
        --data-dir monuseg=data/MoNuSeg --data-dir isaid=data/iSAID \\
        --data-dir cellbin=data/CellBinDB --data-dir loveda=data/LoveDA \\
        --recipe "swin_l->swin_t" --epochs 40       # Table 6

Same as `keras-sard tables`.
"""

import sys

from keras_sard.cli import run_script

if __name__ == "__main__":
    sys.exit(run_script("tables", description=__doc__))
