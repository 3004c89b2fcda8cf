import sys

from sop_xl.cli import main

sys.exit(main())
