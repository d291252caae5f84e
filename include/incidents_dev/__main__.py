"""``python -m incidents_dev``."""

import sys

from incidents_dev.cli import main

sys.exit(main())
