"""``python -m decoding_core``: see `decoding_core.cli`."""

import sys

from decoding_core.cli import main

if __name__ == "__main__":
    sys.exit(main())
