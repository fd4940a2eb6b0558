"""`python -m devorch_tui` is the same as the `devorch-tui` console script."""

from devorch_tui.cli import main

raise SystemExit(main())
