from llmclient.cli import main

raise SystemExit(main())
