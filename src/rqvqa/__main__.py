import sys

from rqvqa.cli import main

sys.exit(main())
