"""``python -m decoding_core``: see `decoding_core.cli`."""

import sys

from decoding_core import prefetch

if __name__ == "__main__":
    # Before the command line's imports (about 2 s), which the read overlaps.
    prefetch.start(sys.argv[1:])

from decoding_core.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
