"""``python -m evaluation``: see ``evaluation.accuracy``."""

import sys

from evaluation.accuracy import main

sys.exit(main())
