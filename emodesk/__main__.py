from emodesk.cli import main

raise SystemExit(main())
