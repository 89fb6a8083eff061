"""Raw frames with a map: transients that the map predicts (issue 15).

On a simulated camera (``prnu_tail=0.004``: the response tail of real
sensors), with a
map from five 300 s darks and five flats:

- two raw flats of the night, fixed with the map: pixels flagged
  ``TRANSIENT_*`` per Mpix in each, and in both (the same pixels);
- two raw darks and two raw spectra (not dark-subtracted): map-``WARM``
  pixels named ``TRANSIENT_*``.

With ``--kast FOLDER`` (``shared/realdata/kast_blue``), the Lick Kast dome
flat b11 fixed with a map from the biases b21-b23 and b11 itself.

Run with::

    python benchmarks/bench_raw_frames.py [--size 1024] [--seed 0]
        [--prnu-tail 0.004] [--kast DIR]
"""

import argparse
import warnings
from pathlib import Path

import numpy as np
from _stamp import stamp
from astropy.nddata import CCDData
from astropy.utils.exceptions import AstropyUserWarning

from ccdpixfix import PixelFlag, fix_pixels, make_bad_pixel_map
from ccdpixfix.datasets import SimulatedCamera

TRANSIENT = np.uint16(PixelFlag.TRANSIENT_HOT | PixelFlag.TRANSIENT_COLD)
WARM = np.uint16(PixelFlag.WARM)


def _transients(frame, bpm):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyUserWarning)
        fixed = fix_pixels(frame, bpm, replace=False)
    return (fixed.flags & TRANSIENT) != 0


def simulated(size, seed, prnu_tail):
    camera = SimulatedCamera((size, size), seed=seed, prnu_tail=prnu_tail)
    darks = [camera.dark(300.0, seed=s) for s in range(5)]
    flats = [camera.flat(seed=s) for s in range(5)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyUserWarning)
        bpm = make_bad_pixel_map(darks, flats)
    mpix = size * size / 1e6
    warm = (bpm.flags & WARM) != 0
    print(
        f"Simulated camera {size} x {size}, seed {seed}, prnu_tail {prnu_tail}; "
        f"map: {bpm!r}"
    )
    first, second = (_transients(flat, bpm) for flat in flats[:2])
    print(
        f"  raw flats: transients per Mpix {first.sum() / mpix:.1f} and "
        f"{second.sum() / mpix:.1f}; in both {np.sum(first & second) / mpix:.1f}"
    )
    nothing = np.zeros(warm.shape, bool)
    spectra = [camera.spectrum(seed=s) for s in (60, 61)]
    for name, frames in (
        ("raw darks", [(camera.dark(300.0, seed=s), nothing) for s in (50, 51)]),
        ("raw spectra", [(f, t["transient_hot"]) for f, t in spectra]),
    ):
        # A cosmic ray that lands on a warm pixel is rightly a transient.
        named = [
            int(np.sum(_transients(frame, bpm) & warm & ~hit)) for frame, hit in frames
        ]
        print(f"  {name}: map-WARM pixels named TRANSIENT_* {named} of {warm.sum()}")


def kast(folder):
    folder = Path(folder)
    biases = [
        CCDData.read(folder / f"kast_b2{i}.fits.gz", unit="adu") for i in (1, 2, 3)
    ]
    flat = CCDData.read(folder / "kast_b11.fits.gz", unit="adu")
    # The 64 overscan columns are not image pixels: the data section only.
    biases = [b[:, :2048] for b in biases]
    flat = flat[:, :2048]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyUserWarning)
        bpm = make_bad_pixel_map(biases, [flat])
    hits = _transients(flat, bpm)
    print(f"Kast dome flat b11 (data section), map from b21-b23 + b11: {bpm!r}")
    print(f"  transients per Mpix {hits.sum() / (flat.data.size / 1e6):.1f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    # The response tail of the SBIG STL-1001 flats of issue 15.
    parser.add_argument("--prnu-tail", type=float, default=0.004)
    parser.add_argument("--kast", default=None)
    args = parser.parse_args(argv)
    print(stamp(__file__), end="\n\n", flush=True)
    simulated(args.size, args.seed, args.prnu_tail)
    if args.kast:
        kast(args.kast)


if __name__ == "__main__":
    main()
