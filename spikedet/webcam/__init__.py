"""The live demo (``spikedet webcam``): capture, detection with energy, overlay, browser view, video file.

- :mod:`~spikedet.webcam.capture`: sources and the output video;
- :mod:`~spikedet.webcam.overlay`: boxes, FPS and energy drawn on a frame;
- :mod:`~spikedet.webcam.run`: the loop, :func:`run`; its browser view (MJPEG) is the FastAPI app of
  :mod:`spikedet.service.live`, served in a thread.
"""

from spikedet.service.live import BOUNDARY
from spikedet.webcam.capture import check_output, open_capture, parse_source
from spikedet.webcam.overlay import annotate
from spikedet.webcam.run import WebcamStats, run

__all__ = ["BOUNDARY", "WebcamStats", "annotate", "check_output", "open_capture", "parse_source", "run"]
