"""`python -m cli` runs the speechqa command."""

import sys

from cli.main import main

sys.exit(main())
