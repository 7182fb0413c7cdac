"""``python -m orchestrator`` is the ``orchestrator`` command."""

from ops.cli import main

main()
