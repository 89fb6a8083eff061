"""The header record of a step: one HISTORY entry naming it and its parameters."""

from astropy.io import fits

from ._version import __version__

__all__ = ["record_step"]


def _format_value(value):
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_format_value(v) for v in value) + "]"
    return str(value)


def record_step(ccd, step, **parameters):
    """Add a HISTORY line naming ``step``, its parameters and our version.

    ``ccd`` is modified in place: call it only on the new object a step
    returns. A `~astropy.io.fits.Header` gains a HISTORY card (astropy wraps
    long lines over several cards); any other mapping gains or extends a
    ``HISTORY`` list, so a dict header converts cleanly when written.
    """
    params = ", ".join(f"{k}={_format_value(v)}" for k, v in parameters.items())
    line = f"ccdpixfix {__version__} {step}({params})"
    meta = ccd.meta
    if isinstance(meta, fits.Header):
        meta.add_history(line)
    else:
        history = meta.get("HISTORY", [])
        history = [history] if isinstance(history, str) else list(history)
        meta["HISTORY"] = [*history, line]
    return ccd
