import sys

from interact.cli import main

sys.exit(main())
