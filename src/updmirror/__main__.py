from updmirror.cli import main

raise SystemExit(main())
