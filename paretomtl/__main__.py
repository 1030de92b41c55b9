"""``python -m paretomtl``: the command line of :mod:`paretomtl.cli` (also ``paretomtl``)."""

import sys

from paretomtl.cli import main

if __name__ == "__main__":
    sys.exit(main())
