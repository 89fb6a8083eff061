"""One-exposure events: `flag_transients` and its star, line and step tests.

``_sharpness`` tells a hit from a star, a line from a track; ``colour_stars``
looks at the hot groups of a colour mosaic in the full mosaic. ``__all__``
is the user's API; the names re-exported below it serve the other steps
(`ccdpixfix.replace`, `ccdpixfix.pipeline`) and are not part of it.
"""

from . import _sharpness
from .colour_stars import unflag_stars as unflag_stars
from .core import dark_level as dark_level
from .core import flag_transients, saturation_level
from .core import flag_transients_planes as flag_transients_planes
from .options import TransientOptions
from .options import check_grow as check_grow

__all__ = ["TransientOptions", "flag_transients", "saturation_level"]

# The background a bright pixel sees, from the sides of its window
# (`ccdpixfix.replace` leaves a hit's unflagged wings out with it).
local_background = _sharpness._local_background
