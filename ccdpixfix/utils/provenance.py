"""The header record of a step: one HISTORY entry naming it and its parameters."""

from astropy.io import fits

from .._version import __version__

__all__ = ["history_cards", "join_history", "log_keywords", "record_step"]


def _format_value(value):
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_format_value(v) for v in value) + "]"
    return str(value)


# A HISTORY card holds 72 characters; astropy would cut a longer line
# anywhere, even inside a word.
_CARD_TEXT = 72
#: Continuation cards of one record start with this, so that readers
#: (``ccdpixfix info``) can join them again.
CONTINUATION = "  "


def history_cards(step, **parameters):
    """The HISTORY record of a step as whole cards of at most 72 characters.

    The first card starts ``ccdpixfix VERSION step(``; each further one
    starts with two spaces and holds whole ``name=value`` items.

    Examples
    --------
    >>> from ccdpixfix.utils.provenance import history_cards
    >>> history_cards("fix_pixels", threshold=5.0, replace=True)[0].split()[-2:]
    ['fix_pixels(threshold=5,', 'replace=True)']
    """
    items = [f"{k}={_format_value(v)}" for k, v in parameters.items()]
    cards, card = [], f"ccdpixfix {__version__} {step}("
    for position, item in enumerate(items):
        item += ")" if position == len(items) - 1 else ","
        if len(card) + 1 + len(item) > _CARD_TEXT and not card.endswith("("):
            cards.append(card)
            card = CONTINUATION + item
        else:
            card += ("" if card.endswith("(") else " ") + item
    if not items:
        card += ")"
    return [*cards, card]


def join_history(lines):
    """The ccdpixfix records among HISTORY lines, continuation cards joined."""
    records = []
    for line in map(str, lines):
        if line.startswith("ccdpixfix"):
            records.append(line)
        elif records and line.startswith(CONTINUATION):
            records[-1] += " " + line.strip()
    return records


#: Short header keywords for the steps, as ccdproc shortens its own
#: (``subtract_bias`` is logged under ``subbias``).
SHORT_NAMES = {
    "fix_pixels": "fixpix",
    "fix_pixels_dask": "fixpix",
    "flag_bad_pixels": "flagbpm",
    "flag_transients": "flagcr",
    "replace_bad_pixels": "replbad",
}


def log_keywords(meta, step, add_keyword, text):
    """Add the step's keywords to ``meta`` as ccdproc's ``add_keyword`` does.

    With True the keyword is the step's name; FITS keywords have at most
    eight characters, so, exactly as ccdproc logs ``subtract_bias``, the
    name is a HIERARCH card pointing to a short keyword (`SHORT_NAMES`)
    that holds ``text``.
    """
    if add_keyword is None or add_keyword is False:
        return
    if add_keyword is True:
        short = SHORT_NAMES[step]
        comment = "Shortened name for ccdpixfix command"
        if isinstance(meta, fits.Header):
            meta[f"HIERARCH {step.upper()}"] = (short, comment)
        else:
            meta[step] = (short, comment)
        meta[short] = text
        return
    if isinstance(add_keyword, str):
        entries = {add_keyword: None}
    elif hasattr(add_keyword, "name") and hasattr(add_keyword, "value"):
        entries = {add_keyword.name: add_keyword.value}  # a ccdproc.Keyword
    elif isinstance(add_keyword, dict):
        entries = add_keyword
    else:
        raise TypeError(
            "add_keyword must be True, False, a keyword name, a ccdproc.Keyword "
            f"or a dict, not {type(add_keyword).__name__}"
        )
    for key, value in entries.items():
        meta[key] = value


def record_step(ccd, step, *, add_keyword=False, **parameters):
    """Add a HISTORY record naming ``step``, its parameters and our version.

    ``ccd`` is modified in place: call it only on the new object a step
    returns. A `~astropy.io.fits.Header` gains HISTORY cards of whole items
    (`history_cards`); any other mapping gains or extends a ``HISTORY``
    list, so a dict header converts cleanly when written. ``add_keyword``
    adds the step's keywords as well (`log_keywords`).
    """
    text = ", ".join(f"{k}={_format_value(v)}" for k, v in parameters.items())
    log_keywords(ccd.meta, step, add_keyword, text)
    cards = history_cards(step, **parameters)
    meta = ccd.meta
    if isinstance(meta, fits.Header):
        for card in cards:
            meta.add_history(card)
    else:
        history = meta.get("HISTORY", [])
        history = [history] if isinstance(history, str) else list(history)
        meta["HISTORY"] = [*history, *cards]
    return ccd
