from opusclip_lib.cli import main

raise SystemExit(main())
