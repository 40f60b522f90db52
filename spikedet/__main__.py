"""``python -m spikedet`` runs the command line."""

import sys

from spikedet.cli import main

sys.exit(main())
