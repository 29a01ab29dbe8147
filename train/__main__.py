"""`python -m train ...` is SARCLIP's command line (`python -m train.sarclip ...`); SAR-KnowLIP's is
`python -m train.knowlip ...`."""

import sys

from train.sarclip.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
