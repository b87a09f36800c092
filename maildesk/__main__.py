import sys

from maildesk.cli import main

sys.exit(main())
