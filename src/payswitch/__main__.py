import sys

from payswitch.cli.main import main

sys.exit(main())
