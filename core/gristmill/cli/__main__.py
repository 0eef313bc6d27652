"""``python -m gristmill.cli``: the ``gristmill`` command."""

from gristmill.cli import main

raise SystemExit(main())
