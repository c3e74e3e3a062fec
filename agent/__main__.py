"""``python -m edge_agent.agent`` runs the CLI."""

import sys

from edge_agent.agent.cli import main

sys.exit(main())
