"""`fix_pixels` and its steps, chunked (Dask) frames, batches of files and
the sorting of a night's folder.
"""

from .batch import fix_file as fix_file
from .batch import fix_files
from .core import fix_pixels
from .steps import fix_steps

__all__ = ["fix_files", "fix_pixels", "fix_steps"]
