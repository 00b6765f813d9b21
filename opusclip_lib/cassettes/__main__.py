"""``python -m opusclip_lib.cassettes record [FOLDER ...]``: the recorder's command line.

It lives here, not in the package, so recording depends on replay and never the other way round.
"""

from opusclip_lib.record_cassettes import main

raise SystemExit(main())
