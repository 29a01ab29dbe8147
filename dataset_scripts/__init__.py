"""SAR image-text data for `datasets`: readers, SARCLIP-1M captions, synthetic SAR, builders, parquet/Hub export.

Quick start::

    from dataset_scripts import synthetic_dataset, build_dataset
    ds = synthetic_dataset(num_train=1000, num_test=200)             # in memory, no files
    build_dataset("mstar", "data/mstar_soc", "out/mstar")             # then datasets.load_dataset("out/mstar")
"""

from sar_utils import __version__

from .builders import BUILDERS
from .errors import DatasetBuildError
from .export import build_dataset, push_dataset_to_hub
from .features import array_from_example
from .report import BuildReport
from .synthetic import CLASSES as SYNTHETIC_CLASSES
from .synthetic import SyntheticSarGenerator, synthetic_dataset

__all__ = [
    "__version__",
    "BUILDERS", "BuildReport", "DatasetBuildError", "SYNTHETIC_CLASSES", "SyntheticSarGenerator", "array_from_example",
    "build_dataset", "push_dataset_to_hub", "synthetic_dataset",
]
