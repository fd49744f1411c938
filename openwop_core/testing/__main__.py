"""``python -m openwop_core.testing``: same as the ``openwop-devhost`` command."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
