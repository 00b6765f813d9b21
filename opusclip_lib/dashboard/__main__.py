"""``python -m opusclip_lib.dashboard``: the same as ``opusclip dashboard``."""

from opusclip_lib.dashboard.serve import main

raise SystemExit(main())
