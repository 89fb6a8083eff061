"""The learned engines (ccdpixfix.transients.learned): checks that need no PyTorch, the
combination of a model's proposals with ccdpixfix's confirmation (with a
stand-in model), and, where the extra is installed, deepCR itself."""

import subprocess
import sys

import numpy as np
import pytest
from astropy.nddata import CCDData, StdDevUncertainty
from scipy import ndimage

from ccdpixfix import PixelFlag, fix_pixels, flag_transients
from ccdpixfix.datasets import SimulatedCamera
from ccdpixfix.kernels.medians import RESIDUAL_FACTOR
from ccdpixfix.transients import learned

HOT = np.uint16(PixelFlag.TRANSIENT_HOT)
DEEPCR_MISSING = 'needs the deepcr extra: pip install "ccdpixfix[deepcr]"'


@pytest.fixture(scope="module")
def scene():
    camera = SimulatedCamera((160, 160), seed=21, cosmic_rays="realistic")
    return camera.science(seed=22)


@pytest.fixture
def no_deepcr(monkeypatch):
    """deepCR made unimportable, whether or not it is installed."""
    monkeypatch.setitem(sys.modules, "deepCR", None)


def test_unknown_detector_names_the_accepted_ones(scene):
    frame, _ = scene
    accepted = "'classical', 'deepcr', 'cosmic-conn'"
    with pytest.raises(ValueError, match=f"detector must be one of {accepted}"):
        flag_transients(frame, detector="bogus")
    with pytest.raises(ValueError, match="got 'deepCR'"):
        fix_pixels(frame, detector="deepCR")


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"modle": "ACS-WFC"}, "unknown detector_options 'modle'.*accepted: device"),
        ({"model": "HST"}, "must be one of ACS-WFC, WFC3-UVIS, decam or the path"),
        ({"threshold": 1.5}, "probability between 0 and 1"),
        ({"tile": 32}, "tile must be >= 64"),
        ({"tile": 128, "overlap": 64}, "overlap must be under half the tile"),
        ({"device": "tpu"}, "'cpu', 'cuda' or 'cuda:N'"),
        ({"gain": -1.0}, "gain must be > 0"),
    ],
)
def test_detector_options_are_checked(options, match):
    with pytest.raises(ValueError, match=match):
        learned.check_detector("deepcr", options)


def test_classical_takes_no_detector_options(scene):
    frame, _ = scene
    with pytest.raises(ValueError, match="apply to the learned detectors only"):
        flag_transients(frame, detector_options={"model": "ACS-WFC"})


def test_missing_extra_names_it(scene, no_deepcr):
    frame, _ = scene
    message = r'needs deepCR and PyTorch.*pip install "ccdpixfix\[deepcr\]"'
    with pytest.raises(ImportError, match=message):
        flag_transients(frame, detector="deepcr")
    with pytest.raises(ImportError, match=message):
        fix_pixels(frame, detector="deepcr")


def test_colour_frames_are_refused():
    mosaic = CCDData(np.ones((32, 32)), unit="adu", meta={"BAYERPAT": "RGGB"})
    with pytest.raises(ValueError, match="grey frames, not on colour cubes or Bayer"):
        flag_transients(mosaic, detector="deepcr")
    cube = CCDData(np.ones((3, 32, 32)), unit="adu")
    with pytest.raises(ValueError, match="grey frames"):
        fix_pixels(cube, detector="deepcr")


def test_classical_is_the_default_and_records_no_engine(scene):
    frame, _ = scene
    default = flag_transients(frame)
    named = flag_transients(frame, detector="classical")
    assert np.array_equal(default.flags, named.flags)
    assert "detector" not in " ".join(map(str, default.meta["HISTORY"]))


def _cli(*args, block="deepCR"):
    """The real command line, with ``block`` unimportable (a missing extra)."""
    code = (
        f"import sys; sys.modules[{block!r}] = None; "
        "from ccdpixfix.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    command = [sys.executable, "-c", code, *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_cli_detector_usage_errors(tmp_path, scene):
    frame, _ = scene
    frame.write(tmp_path / "light.fits")
    common = ("fix", tmp_path / "light.fits", "-o", tmp_path / "out")
    bogus = _cli(*common, "--detector", "bogus")
    assert bogus.returncode == 2
    assert "invalid choice: 'bogus'" in bogus.stderr
    assert "classical" in bogus.stderr and "cosmic-conn" in bogus.stderr
    missing = _cli(*common, "--detector", "deepcr")
    assert missing.returncode == 2
    assert 'pip install "ccdpixfix[deepcr]"' in missing.stderr
    model = _cli(*common, "--detector-model", "ACS-WFC")
    assert model.returncode == 2
    assert "--detector-model needs a learned --detector" in model.stderr
    assert not (tmp_path / "out").exists()


def test_stack_truth_bits():
    rng = np.random.default_rng(1)
    frames = rng.normal(50.0, 1.0, (6, 40, 40))
    frames[3, 20, 5:15] += 100.0  # a track: core
    frames[3, 21, 5:15] += 4.0  # its wing: footprint only
    frames[3, 30, 30] += 4.0  # a lone 4-sigma pixel: nothing
    skip = np.zeros((40, 40), bool)
    skip[:, :2] = True
    truth = learned.stack_truth(frames, skip=skip)
    assert ((truth[3] & 1) != 0).sum() == 10
    assert ((truth[3] & 2) != 0)[21, 5:15].all()
    assert truth[3][30, 30] == 0
    assert ((truth[0] & 4) != 0)[:, :2].all()


def test_threshold_table_and_calibration_choice(monkeypatch):
    truth = np.zeros((50, 50), np.uint8)
    truth[10, 10:20] = 3
    probability = np.zeros((50, 50), np.float32)
    probability[10, 10:15] = 0.9
    probability[10, 15:20] = 0.3
    probability[40, 40] = 0.4  # far from any event: a false flag
    table = learned.threshold_table([probability], [truth], [0.2, 0.35, 0.5])
    assert [row["core"] for row in table] == [1.0, 0.5, 0.5]
    assert table[0]["false_per_mpx"] == pytest.approx(1e6 / 2500)
    assert table[2]["false_per_mpx"] == 0
    monkeypatch.setattr(learned, "probability_map", lambda *a, **k: probability)
    result = learned.calibrate_threshold(
        [probability], [truth], thresholds=(0.2, 0.35, 0.5), max_false_per_mpx=0
    )
    assert result.threshold == 0.5
    assert result.options["model"] == "ACS-WFC"


def test_tiles_cover_the_frame_once():
    """Each pixel comes from exactly one tile, whatever the sizes."""
    image = np.arange(150 * 230, dtype=np.float32).reshape(150, 230)
    out = learned._tiled(image, lambda tile: tile.copy(), 64, 8, 16)
    assert np.array_equal(out, image)


@pytest.fixture
def stand_in_model(monkeypatch):
    """A 'model' proposing the pixels of a given mask, to test the combination."""
    proposal = {}

    def network(detector, model, device):
        return lambda tile: proposal["tile"](tile)

    monkeypatch.setattr(learned, "require", lambda detector, model=None: None)
    monkeypatch.setattr(learned, "_device", lambda requested, model=None: "cpu")
    monkeypatch.setattr(learned, "_network", network)

    def propose(mask):
        # The stand-in sees the whole frame as one tile.
        proposal["tile"] = lambda tile: np.pad(
            mask,
            ((0, tile.shape[0] - mask.shape[0]), (0, tile.shape[1] - mask.shape[1])),
        ).astype(np.float32)

    return propose


def test_proposals_are_confirmed_by_the_noise_model_and_star_test(
    scene, stand_in_model
):
    frame, truth = scene
    options = {"tile": 1024}
    stars = truth["stars"]
    bright = stars[np.argmax(stars["peak_adu"])]
    peak = (round(float(bright["y"])), round(float(bright["x"])))
    # Plain sky, three pixels or more from any event or defect.
    events = ndimage.binary_dilation(
        truth["transient_hot"] | truth["defect"], iterations=3
    )
    sky = np.argwhere((truth["expected"] < np.median(truth["expected"])) & ~events)
    noise_pixels = tuple(sky[::97][:20].T)
    mask = truth["transient_hot"].copy()
    mask[peak] = True
    mask[noise_pixels] = True
    stand_in_model(mask)
    combined = flag_transients(frame, detector="deepcr", detector_options=options)
    classical = flag_transients(frame)
    hot = (combined.flags & HOT) != 0
    assert not hot[peak], "a star's peak the model proposes is refused"
    assert not hot[noise_pixels].any(), "proposals in the noise are refused"
    strong = truth["transient_amplitude"] > 5 * truth["sigma"]
    found = hot[strong].mean()
    assert found >= ((classical.flags & HOT) != 0)[strong].mean()
    assert found > 0.9
    history = " ".join(map(str, combined.meta["HISTORY"]))
    assert "detector=deepcr" in history and "detector_model=ACS-WFC" in history
    fixed = fix_pixels(frame, detector="deepcr", detector_options=options)
    assert np.array_equal((fixed.flags & HOT) != 0, hot)
    assert "detector=deepcr" in " ".join(map(str, fixed.meta["HISTORY"]))


def _lone_spikes(spikes):
    """Sky with read noise (its sigma given as uncertainty), and one-pixel spikes.

    ``spikes`` maps (row, col) to (height, neighbour): the spike stands
    ``height`` sigma above its local level, on a noiseless 5 x 5 patch of
    sky (so that the level is exact), its right neighbour ``neighbour``
    sigma above the sky.
    """
    sky, sigma = 100.0, 2.0
    data = np.random.default_rng(41).normal(sky, sigma, (96, 96))
    for (y, x), (height, neighbour) in spikes.items():
        data[y - 2 : y + 3, x - 2 : x + 3] = sky
        data[y, x + 1] = sky + neighbour * sigma
        # The local level: the median of the opposite pairs, all at the sky
        # but one (the right neighbour's pair takes its mean).
        level = np.median([sky, sky, sky, sky + neighbour * sigma / 2])
        data[y, x] = level + height * sigma * RESIDUAL_FACTOR[4]
    uncertainty = StdDevUncertainty(np.full(data.shape, sigma))
    return CCDData(data, unit="electron", uncertainty=uncertainty)


def test_lone_faint_spikes_need_more_where_the_model_is_quiet(stand_in_model):
    """Where the model sees nothing, a lone one-pixel seed just above
    ``threshold`` (as Gaussian noise gives 0.29 per megapixel at 5 sigma) is
    dropped; a stronger one, one whose charge spread to a neighbour, or one
    where the model sees a faint sign of a hit stays, as in the classical
    engine."""
    spikes = {
        (20, 20): (5.2, 0.0),  # lone, faint, model quiet: dropped
        (20, 60): (6.0, 0.0),  # lone but 6 sigma: stays
        (50, 20): (5.2, 3.0),  # a neighbour 3 sigma up: charge spread, stays
        (50, 60): (5.2, 0.0),  # the model at 0.1 beside it: stays
        (80, 40): (5.2, 0.0),  # the model at 0.04 beside it: quiet, dropped
    }
    frame = _lone_spikes(spikes)
    probability = np.zeros(frame.shape, np.float32)
    probability[49, 61] = 0.1
    probability[79, 41] = 0.04
    # The model sees the charge that spread: a little, not silent (`_heard`).
    probability[50, 21] = 1e-3
    stand_in_model(probability)
    classical = (flag_transients(frame).flags & HOT) != 0
    assert all(classical[point] for point in spikes)
    combined = flag_transients(frame, detector="deepcr", detector_options={})
    hot = (combined.flags & HOT) != 0
    kept = {point: bool(hot[point]) for point in spikes}
    assert kept == {
        (20, 20): False,
        (20, 60): True,
        (50, 20): True,
        (50, 60): True,
        (80, 40): False,
    }
    # Nothing else changes: the classical engine's other flags stay.
    dropped = np.zeros(frame.shape, bool)
    dropped[20, 20] = dropped[80, 40] = True
    assert np.array_equal(hot, classical & ~dropped)
    # The quiet share follows the threshold the model is cut at.
    options = {"threshold": 0.3}
    lower = flag_transients(frame, detector="deepcr", detector_options=options)
    assert ((lower.flags & HOT) != 0)[80, 40]


def test_rim_pixels_need_more_where_the_model_sees_no_charge(stand_in_model):
    """Beside a one-pixel hit, a 2.7-sigma neighbour that the spill growth
    takes (noise passes 2.5 sigma once in 160 pixels) is dropped where the
    model sees no charge at it (probability under 1e-5), as on ESIS frame 7;
    a 3.6-sigma one, or one where the model sees a little charge, stays."""
    sky, sigma = 100.0, 2.0
    data = np.random.default_rng(43).normal(sky, sigma, (96, 96))
    hits = {(20, 20): 3.0, (20, 60): 4.0, (60, 40): 3.0}
    for y, x in hits:
        data[y - 3 : y + 4, x - 3 : x + 4] = sky
        data[y, x] = sky + 40 * sigma
        data[y, x + 1] = sky + hits[(y, x)] * sigma
    uncertainty = StdDevUncertainty(np.full(data.shape, sigma))
    frame = CCDData(data, unit="electron", uncertainty=uncertainty)
    probability = np.zeros(frame.shape, np.float32)
    probability[60, 41] = 1e-3
    stand_in_model(probability)
    classical = (flag_transients(frame).flags & HOT) != 0
    rims = [(y, x + 1) for y, x in hits]
    assert all(classical[hit] for hit in hits) and all(classical[r] for r in rims)
    combined = flag_transients(frame, detector="deepcr", detector_options={})
    hot = (combined.flags & HOT) != 0
    assert {rim: bool(hot[rim]) for rim in rims} == {
        (20, 21): False,
        (20, 61): True,
        (60, 41): True,
    }
    dropped = np.zeros(frame.shape, bool)
    dropped[20, 21] = True
    assert np.array_equal(hot, classical & ~dropped)


def test_deepcr_engine_runs():
    pytest.importorskip("deepCR", reason=DEEPCR_MISSING)
    pytest.importorskip("torch", reason=DEEPCR_MISSING)
    camera = SimulatedCamera((256, 256), seed=31, cosmic_rays="realistic")
    frame, truth = camera.science(seed=32)
    options = {"device": "cpu"}
    fixed = flag_transients(frame, detector="deepcr", detector_options=options)
    hot = (fixed.flags & HOT) != 0
    classical = (flag_transients(frame).flags & HOT) != 0
    strong = truth["transient_amplitude"] > 20 * truth["sigma"]
    # (a 3 x 2 blob on the frame's edge escapes both)
    assert hot[strong].mean() >= max(classical[strong].mean(), 0.75)
    # Tiles with overlap give the whole-frame answer, nearly pixel for pixel.
    whole = learned.probability_map(frame.data, "deepcr", options)
    tiled = learned.probability_map(
        frame.data, "deepcr", {**options, "tile": 128, "overlap": 32}
    )
    assert np.mean((whole >= 0.5) != (tiled >= 0.5)) < 1e-3
    repaired = fix_pixels(frame, detector="deepcr", detector_options=options)
    assert "detector_model=ACS-WFC" in " ".join(map(str, repaired.meta["HISTORY"]))


def test_deepcr_is_quiet_around_a_lone_noise_spike():
    """The premise of the agreement rule, with the real model: a lone
    5.2 sigma spike of read noise gets no probability from deepCR, and the
    combined engine drops the seed the classical engine keeps."""
    pytest.importorskip("deepCR", reason=DEEPCR_MISSING)
    pytest.importorskip("torch", reason=DEEPCR_MISSING)
    frame = _lone_spikes({(40, 40): (5.2, 0.0)})
    options = {"device": "cpu"}
    probability = learned.probability_map(frame.data, "deepcr", options)
    assert probability[39:42, 39:42].max() < learned.QUIET_SHARE * 0.5
    assert ((flag_transients(frame).flags & HOT) != 0)[40, 40]
    combined = flag_transients(frame, detector="deepcr", detector_options=options)
    assert not ((combined.flags & HOT) != 0)[40, 40]


def test_cosmic_conn_engine_runs():
    missing = 'needs the cosmic-conn extra: pip install "ccdpixfix[cosmic-conn]"'
    pytest.importorskip("cosmic_conn", reason=missing)
    camera = SimulatedCamera((128, 128), seed=33, cosmic_rays="realistic")
    frame, _ = camera.science(seed=34)
    fixed = flag_transients(
        frame, detector="cosmic-conn", detector_options={"device": "cpu"}
    )
    assert "detector=cosmic-conn" in " ".join(map(str, fixed.meta["HISTORY"]))


def test_onnx_model_needs_onnxruntime_only(scene, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    frame, _ = scene
    options = {"model": "deepcr_acs_wfc.onnx"}
    assert learned.check_detector("deepcr", options)["model"].endswith(".onnx")
    with pytest.raises(ImportError, match=r'pip install "ccdpixfix\[onnx\]"'):
        flag_transients(frame, detector="deepcr", detector_options=options)
    with pytest.raises(ValueError, match=r"or the path of a \.pth or \.tar file"):
        learned.check_detector("cosmic-conn", options)


def test_deepcr_exported_to_onnx_gives_the_same_mask(tmp_path):
    pytest.importorskip("deepCR", reason=DEEPCR_MISSING)
    pytest.importorskip("onnx", reason="needs onnx to export")
    pytest.importorskip("onnxruntime", reason='needs pip install "ccdpixfix[onnx]"')
    path = learned.export_onnx(tmp_path / "deepcr.onnx")
    camera = SimulatedCamera((192, 192), seed=35, cosmic_rays="realistic")
    frame, _ = camera.science(seed=36)
    original = learned.model_mask(frame.data, "deepcr", {"device": "cpu"})
    exported = learned.model_mask(frame.data, "deepcr", {"model": path})
    assert original.any()
    assert np.array_equal(original, exported)
