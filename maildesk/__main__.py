import sys

from maildesk.cli import main

if __name__ == "__main__":  # worker processes (jobs/prepare.py) import this module again
    sys.exit(main())
