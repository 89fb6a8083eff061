"""The ``ccdpixfix`` command: its parser (``ccdpixfix.cli.parser``) and its
commands (``ccdpixfix.cli.commands``).
"""

from .parser import main

__all__ = ["main"]
