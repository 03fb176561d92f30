"""`python -m edge`: the same command line as `pos-edge`."""

from edge.cli import main

raise SystemExit(main())
