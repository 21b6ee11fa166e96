"""``python -m prerec`` is the ``prerec`` command."""

import sys

from prerec.cli import main

sys.exit(main())
