from node.server.main import main

raise SystemExit(main())
