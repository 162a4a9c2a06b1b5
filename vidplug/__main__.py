import sys

from vidplug.cli import main

sys.exit(main())
