"""``python -m footprint`` is the ``footprint`` command."""

import sys

from footprint.cli import main

sys.exit(main())
