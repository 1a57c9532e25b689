"""``python -m ovstop``."""

from ovstop.cli import main

raise SystemExit(main())
