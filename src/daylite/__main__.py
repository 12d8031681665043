"""Allow ``python -m daylite`` as a synonym for the ``daylite`` command."""

from daylite.cli.main import main

raise SystemExit(main())
