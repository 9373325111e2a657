"""``python -m hgcmlab``: the ``hgcmlab`` console command."""

import sys

from hgcmlab.machine.entry import main

if __name__ == "__main__":
    sys.exit(main())
