"""`python -m nfsvol`."""

import sys

from nfsvol.cli import main

sys.exit(main())
