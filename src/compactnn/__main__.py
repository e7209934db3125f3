"""``python -m compactnn …`` (and ``torchrun … -m compactnn train …``): the command line."""

import sys

from .cli import main

sys.exit(main())
