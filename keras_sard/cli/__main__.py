"""``python -m keras_sard.cli``: the ``keras-sard`` command."""

import sys

from keras_sard.cli.runner import main

sys.exit(main())
