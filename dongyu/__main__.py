import sys

from dongyu.cli.main import main

sys.exit(main())
