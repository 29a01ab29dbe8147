"""`fit_scio` with the caller's own default `Accelerator()` (launched by test_scio_distributed.py)."""

import sys

from accelerate import Accelerator

from train.knowlip import ScioRunConfig, fit_scio

if __name__ == "__main__":
    fit_scio(ScioRunConfig.from_cli(sys.argv[1], sys.argv[2:]), Accelerator())
