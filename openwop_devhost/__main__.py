"""``python -m openwop_devhost``: same as the ``openwop-devhost`` command."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
