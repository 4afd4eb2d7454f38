"""``python -m deltadb_dialect``: the store's command-line tools."""

from deltadb_dialect.cli import main

raise SystemExit(main())
