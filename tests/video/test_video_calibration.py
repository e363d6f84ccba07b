"""The calibration decode stops as soon as its output has decided how frames are positioned,
and no sooner: at the first frame out of order, or once enough frames came out in order
(a frame the packets carried out of order, a B-frame, among them when there is one)."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from chronicon.video.frame_index import (
    CALIBRATION_FRAMES,
    CALIBRATION_PACKETS,
    Calibration,
    Calibrator,
    scan_packets,
)
from support.media import write_video

SIZE = (160, 120)
OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")


def calibrate(path: Path) -> Calibration:
    """The calibration of a file as the probe runs it (here after the demux pass rather than
    beside it: the same packets, the same decisions)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        calibrator = Calibrator(stream)
        scan_packets(container, stream, None, calibrator)
        return calibrator.run()


def test_an_ordinary_stream_stops_once_enough_frames_came_out_in_order(tmp_path: Path) -> None:
    path = write_video(tmp_path / "b.mp4", n_frames=200, size=SIZE,
                       options={"g": "100", "bf": "3"})
    calibration = calibrate(path)
    outputs = calibration.outputs
    assert len(outputs) == CALIBRATION_FRAMES
    assert outputs == sorted(outputs)
    assert len(calibration.fed) < CALIBRATION_PACKETS // 2
    fed_order = calibration.fed
    reordered = {p for i, p in enumerate(fed_order) if p < max(fed_order[:i] or [p])}
    assert reordered & set(outputs), "a B-frame came out before the decode stopped"
    assert calibration.first_rotation is not None and calibration.first_error is None


@pytest.mark.skipif(not (OPENCV_DATA / "Megamind.avi").exists(), reason="needs opencv-doc")
def test_packed_b_frames_stop_at_the_first_frame_out_of_order() -> None:
    calibration = calibrate(OPENCV_DATA / "Megamind.avi")
    outputs = calibration.outputs
    assert outputs[-1] is not None and outputs[-1] < max(o for o in outputs[:-1] if o)
    assert len(calibration.fed) < CALIBRATION_FRAMES
