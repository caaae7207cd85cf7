import sys

from .compat.cli.main import main

sys.exit(main())
