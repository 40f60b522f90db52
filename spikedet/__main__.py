"""``python -m spikedet`` runs the command line."""

import sys

from spikedet.cli.main import main

sys.exit(main())
