"""Diagnostic figures: what was flagged, where, and why.

matplotlib is an optional dependency (``pip install "ccdpixfix[plot]"``); it
is imported only when a figure is made.
"""

import numpy as np
from astropy.visualization import AsinhStretch, ImageNormalize, ZScaleInterval
from scipy import ndimage

from .flags import PixelFlag

__all__ = ["FLAG_COLOURS", "plot_bad_pixel_map", "plot_frame"]

#: Colour of each kind of flag in the figures. The seven kinds of the map
#: take the Okabe-Ito palette (Okabe & Ito 2008, "Color Universal Design"),
#: whose colours stay apart for the common kinds of colour blindness; the
#: kinds found in one exposure take white, black, wine and grey, which differ
#: from those and from each other in lightness, and are drawn as circles
#: where the map's kinds are squares, so no two kinds share colour and shape.
#: Warm colours mean too much signal, blues too little.
FLAG_COLOURS = {
    PixelFlag.HOT: "#D55E00",  # vermillion
    PixelFlag.WARM: "#E69F00",  # orange
    PixelFlag.HIGH_RESPONSE: "#F0E442",  # yellow
    PixelFlag.DEAD: "#0072B2",  # blue
    PixelFlag.LOW_RESPONSE: "#56B4E9",  # sky blue
    PixelFlag.STUCK: "#CC79A7",  # reddish purple
    PixelFlag.BAD_COLUMN: "#009E73",  # bluish green
    PixelFlag.TRANSIENT_HOT: "#FFFFFF",  # white
    PixelFlag.TRANSIENT_COLD: "#000000",  # black
    PixelFlag.SATURATED: "#882255",  # wine (Paul Tol's muted palette)
    PixelFlag.DO_NOT_USE: "#BBBBBB",  # pale grey, Tol's colour for bad data
}
# The kinds one exposure brings are circles, the map's squares.
_FRAME_KINDS = (
    PixelFlag.TRANSIENT_HOT
    | PixelFlag.TRANSIENT_COLD
    | PixelFlag.SATURATED
    | PixelFlag.DO_NOT_USE
)
# Side, in pixels, of each zoom on the worst-hit windows.
_ZOOM = 32
# A colour cube (planes, rows, columns) is drawn as the mean of its planes.
_RGB_NDIM = 3
# The residual histogram spans at least +-10 sigma (twice the threshold when
# that is wider), so that the tails beyond the threshold show.
_HISTOGRAM_MIN_RANGE = 10
_MARKER_SIZE = 6
# Above this many pixels of one kind, open squares merge into a blot that
# hides the image: they are drawn as small filled dots instead.
_MANY_MARKERS = 2000


def _figure(**options):
    """A matplotlib Figure outside pyplot: no backend switched, nothing kept."""
    try:
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - depends on the installation
        raise ImportError(
            "plots need matplotlib: pip install 'ccdpixfix[plot]'"
        ) from None
    return Figure(**options)


def _rectangle(*args, **kwargs):
    from matplotlib.patches import Rectangle

    return Rectangle(*args, **kwargs)


def _mark_flags(ax, flags, offset=(0, 0), size=_MARKER_SIZE):
    """Scatter the flagged pixels of each kind in its colour."""
    for flag, colour in FLAG_COLOURS.items():
        rows, cols = np.nonzero((flags & np.uint16(flag)) != 0)
        if not rows.size:
            continue
        many = rows.size > _MANY_MARKERS
        ax.scatter(
            cols + offset[1],
            rows + offset[0],
            s=0.5 if many else size,
            marker="o" if flag & _FRAME_KINDS else "s",
            facecolors=colour if many else "none",
            edgecolors="none" if many else colour,
            linewidths=0 if many else 1.0,
            label=f"{flag.name} ({rows.size})",
        )


def _worst_windows(flags, count=3, size=_ZOOM):
    """Corners of the ``count`` windows holding the most transient flags."""
    interesting = (
        flags & np.uint16(PixelFlag.TRANSIENT_HOT | PixelFlag.TRANSIENT_COLD)
    ) != 0
    if not interesting.any():
        interesting = flags != 0
    ny, nx = flags.shape
    size_y, size_x = min(size, ny), min(size, nx)
    windows = []
    taken = np.zeros_like(interesting)
    for _ in range(count):
        if not (interesting & ~taken).any():
            break
        # The window around the densest point. A smooth kernel, not a box:
        # every box holding a lone event counts the same, and the first of
        # them would put the event in a corner of the zoom.
        density = ndimage.gaussian_filter(
            (interesting & ~taken).astype(float), sigma=size / 6, mode="constant"
        )
        y, x = np.unravel_index(np.argmax(density), density.shape)
        y0 = int(np.clip(y - size_y // 2, 0, ny - size_y))
        x0 = int(np.clip(x - size_x // 2, 0, nx - size_x))
        windows.append((y0, x0, size_y, size_x))
        taken[y0 : y0 + size_y, x0 : x0 + size_x] = True
    return windows


def _residuals(ccd, flags):
    """Noise-normalised residuals of the unflagged pixels."""
    from .kernels.medians import RESIDUAL_FACTOR, local_level
    from .noise.core import frame_noise

    data = np.asarray(ccd.data, dtype=np.float64)
    known = (flags != 0) | ~np.isfinite(data)
    level, n_pairs = local_level(data, known)
    rows, cols = np.nonzero(np.ones(data.shape, bool))
    sigma = frame_noise(ccd, data, known).at(rows, cols)
    with np.errstate(invalid="ignore", divide="ignore"):
        residual = (data - level) / (
            sigma.reshape(data.shape) * RESIDUAL_FACTOR[n_pairs]
        )
    return residual[~known & np.isfinite(residual)]


def _grey(ccd):
    """A frame to draw: a colour cube becomes the mean of its planes.

    The flags of a cube's pixel are those of any of its planes.
    """
    from astropy.nddata import CCDData

    data = np.asarray(ccd.data)
    if data.ndim == 2:
        return ccd, "frame and flagged pixels"
    if data.ndim != 3:
        raise ValueError(f"cannot draw an image of shape {data.shape}")
    flags = getattr(ccd, "flags", None)
    grey = CCDData(
        np.nanmean(np.asarray(data, dtype=np.float64), axis=0),
        unit=ccd.unit,
        meta=ccd.meta,
        flags=None if flags is None else np.bitwise_or.reduce(flags, axis=0),
    )
    return grey, f"mean of {data.shape[0]} colour planes; flags of any plane"


def plot_frame(
    ccd, *, original=None, threshold=5.0, figsize=(13.0, 8.0), dpi=100, figure=None
):
    """A figure of a frame and what was flagged in it.

    The image with an astronomical stretch (z-scale, asinh) and the flagged
    pixels marked by kind; zooms on the three regions with the most
    transient flags; and the histogram of the residuals of the unflagged
    pixels, in units of their noise, with the detection threshold.

    Parameters
    ----------
    ccd : `~astropy.nddata.CCDData`
        A frame, usually the output of `fix_pixels` (its ``flags`` are
        marked; a frame without flags is shown as it is).
    original : `~astropy.nddata.CCDData` or array, optional
        The frame before it was fixed: the zooms then show it beside the
        fixed one ("before" and "after").
    threshold : float, optional
        Detection threshold drawn on the histogram, in sigma.
    figsize : tuple of float, optional
        Size in inches.
    dpi : int, optional
        Resolution; the PNG is ``figsize * dpi`` pixels.
    figure : `matplotlib.figure.Figure`, optional
        Draw into this (empty) figure, e.g. one from ``pyplot.figure()``;
        by default a new figure outside pyplot, which nothing keeps alive.

    Returns
    -------
    `matplotlib.figure.Figure`

    Examples
    --------
    >>> from ccdpixfix import fix_pixels
    >>> from ccdpixfix.datasets import SimulatedCamera
    >>> from ccdpixfix.visualization import plot_frame
    >>> frame, _ = SimulatedCamera((96, 96), seed=1).science(seed=2)
    >>> figure = plot_frame(fix_pixels(frame))
    >>> len(figure.axes)
    5
    """
    ccd, title = _grey(ccd)
    data = np.asarray(ccd.data, dtype=np.float64)
    if not np.isfinite(data).any():
        raise ValueError("the image holds no finite pixel: nothing to draw")
    flags = getattr(ccd, "flags", None)
    flags = np.zeros(data.shape, np.uint16) if flags is None else np.asarray(flags)
    norm = ImageNormalize(
        data[np.isfinite(data)], interval=ZScaleInterval(), stretch=AsinhStretch(0.5)
    )
    if figure is None:
        figure = _figure(figsize=figsize, dpi=dpi)
    before = None if original is None else _original_data(original, data.shape)
    ratios = [2.2, 1, 1] if before is None else [2.2, 1, 1, 1]
    grid = figure.add_gridspec(3, len(ratios), width_ratios=ratios)
    main = figure.add_subplot(grid[:, 0])
    main.imshow(data, origin="lower", cmap="gray", norm=norm, interpolation="nearest")
    _mark_flags(main, flags)
    main.set_title(title)
    if flags.any():
        # A grey like the sky's, on which every flag colour shows (the white
        # and black circles too), as it does on the image.
        main.legend(
            loc="upper right",
            fontsize=7,
            framealpha=0.85,
            facecolor="0.55",
            markerscale=2,
        )
    panels = [(data, "")] if before is None else [(before, "before "), (data, "after ")]
    for position, window in enumerate(_worst_windows(flags)):
        _zoom_row(figure, grid, position, window, panels, flags)
        y0, x0, h, w = window
        main.add_patch(
            _rectangle((x0, y0), w, h, fill=False, edgecolor="white", linewidth=0.8)
        )
    _residual_histogram(
        figure.add_subplot(grid[:, len(ratios) - 1]), ccd, flags, threshold
    )
    figure.tight_layout()
    return figure


def _original_data(original, shape):
    """The frame before fixing, as a grey float image of ``shape``."""
    before = np.asarray(getattr(original, "data", original), dtype=np.float64)
    if before.ndim == _RGB_NDIM:
        before = np.nanmean(before, axis=0)
    if before.shape != shape:
        raise ValueError(
            f"the original frame's shape {before.shape} is not the fixed "
            f"frame's {shape}"
        )
    return before


def _zoom_row(figure, grid, position, window, panels, flags):
    """One row of zooms on ``window`` (y0, x0, height, width), one per panel."""
    y0, x0, h, w = window
    # Each zoom is stretched on its own (fixed) pixels: one stretch for the
    # frame flattens a zoom where the level differs (read taps).
    data = panels[-1][0]
    patch = data[y0 : y0 + h, x0 : x0 + w]
    zoom_norm = ImageNormalize(
        patch[np.isfinite(patch)],
        interval=ZScaleInterval(),
        stretch=AsinhStretch(0.5),
    )
    for column, (image, label) in enumerate(panels, start=1):
        ax = figure.add_subplot(grid[position, column])
        ax.imshow(
            image[y0 : y0 + h, x0 : x0 + w],
            origin="lower",
            cmap="gray",
            norm=zoom_norm,
            interpolation="nearest",
            extent=(x0 - 0.5, x0 + w - 0.5, y0 - 0.5, y0 + h - 0.5),
        )
        window_flags = flags[y0 : y0 + h, x0 : x0 + w]
        _mark_flags(ax, window_flags, offset=(y0, x0), size=40)
        ax.set_title(f"{label}zoom x={x0}, y={y0}", fontsize=8)
        ax.tick_params(labelsize=6)


def _residual_histogram(histogram, ccd, flags, threshold):
    """Histogram of the unflagged pixels' residuals, the threshold marked."""
    residual = _residuals(ccd, flags)
    if residual.size:
        limit = max(threshold * 2, _HISTOGRAM_MIN_RANGE)
        histogram.hist(
            np.clip(residual, -limit, limit), bins=120, log=True, color="0.3"
        )
    for sign in (-1, 1):
        histogram.axvline(sign * threshold, color="red", linestyle="--")
    histogram.set_xlabel("residual / noise (unflagged pixels)")
    histogram.set_title(f"threshold ±{threshold:g} sigma", fontsize=9)


def _dark_current_panel(rates, meta):
    """The distribution of the darks' excess current, with the map's limits."""
    history = meta.get("dark_histogram")
    if history and history.get("counts"):
        edges = np.asarray(history["edges"])
        rates.stairs(np.maximum(history["counts"], 0.5), edges, fill=True, color="0.4")
        rates.set_xscale("log")
        rates.set_yscale("log")
        unit = history.get("unit", "e-/s")
        parameters = meta.get("parameters", {})
        if unit == "e-/s":
            limit = _detection_limit(meta)
            if limit is not None:
                rates.axvline(
                    limit,
                    color="black",
                    linestyle=":",
                    label=f"detection limit {limit:.2g} {unit}",
                )
            for key, colour in (
                ("warm_rate", FLAG_COLOURS[PixelFlag.WARM]),
                ("hot_rate", FLAG_COLOURS[PixelFlag.HOT]),
            ):
                if key in parameters:
                    rates.axvline(
                        parameters[key],
                        color=colour,
                        linestyle="--",
                        label=f"{key} {parameters[key]:g} {unit}",
                    )
            rates.legend(fontsize=8)
        rates.set_xlabel(f"excess dark current ({unit})")
        rates.set_title("dark-current distribution")
    else:
        rates.text(
            0.5,
            0.5,
            "no dark-current record in this map",
            ha="center",
            va="center",
            transform=rates.transAxes,
        )
        rates.set_axis_off()


def _detection_limit(meta):
    """Smallest excess dark current (e-/s) the darks could tell from noise."""
    noise, gain = meta.get("dark_noise"), meta.get("gain")
    significance = meta.get("parameters", {}).get("significance")
    if None in (noise, gain, significance) or meta.get("dark_noise_unit") != "ADU/s":
        return None
    return float(significance) * float(noise) * float(gain)


def plot_bad_pixel_map(bpm, *, figsize=(13.0, 5.0), dpi=100, figure=None):
    """A figure of a bad-pixel map: where, how many, and from which rates.

    The detector with each kind of defect marked, the counts per kind, and
    the distribution of the excess dark current recorded when the map was
    made, with the warm and hot thresholds.

    Parameters
    ----------
    bpm : BadPixelMap
        The map.
    figsize : tuple of float, optional
        Size in inches.
    dpi : int, optional
        Resolution; the PNG is ``figsize * dpi`` pixels.
    figure : `matplotlib.figure.Figure`, optional
        Draw into this (empty) figure; by default a new one outside pyplot.

    Returns
    -------
    `matplotlib.figure.Figure`

    Examples
    --------
    >>> import numpy as np
    >>> from ccdpixfix import BadPixelMap, PixelFlag
    >>> from ccdpixfix.visualization import plot_bad_pixel_map
    >>> flags = np.zeros((50, 50), np.uint16); flags[5, 5] = PixelFlag.HOT
    >>> len(plot_bad_pixel_map(BadPixelMap(flags)).axes)
    3
    """
    if figure is None:
        figure = _figure(figsize=figsize, dpi=dpi)
    where, counts_ax, rates = figure.subplots(
        1, 3, gridspec_kw={"width_ratios": [1.3, 1, 1.2]}
    )
    ny, nx = bpm.shape
    where.imshow(
        np.zeros(bpm.shape),
        origin="lower",
        cmap="gray",
        # A mid grey detector (zeros between -1 and 1): the blues and the
        # yellow both show on it, as on a frame's sky; black hid the blues.
        vmin=-1,
        vmax=1,
        extent=(-0.5, nx - 0.5, -0.5, ny - 0.5),
    )
    _mark_flags(where, bpm.flags, size=4)
    where.set_xlim(-0.5, nx - 0.5)
    where.set_ylim(-0.5, ny - 0.5)
    where.set_title(f"defects on the {nx} x {ny} detector")
    counts = bpm.counts()
    names = list(counts)
    colours = [FLAG_COLOURS[PixelFlag[name]] for name in names]
    counts_ax.barh(
        names, [counts[name] for name in names], color=colours, edgecolor="black"
    )
    counts_ax.set_xlabel("pixels")
    counts_ax.set_title("pixels per kind")
    _dark_current_panel(rates, bpm.meta)
    figure.tight_layout()
    return figure
