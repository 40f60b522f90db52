"""The base install (no extras) runs the shipped default weights: ONNX and ONNX Runtime are the ``export`` extra,
so nothing on the PyTorch path may import them (the container found this: the default integer model failed to
load in an image built with a plain ``pip install .``)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

BLOCKED = textwrap.dedent("""
    import sys

    sys.modules.update(onnx=None, onnxruntime=None)  # as if neither package were installed: importing fails
""")


def run_without_onnx(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKED + textwrap.dedent(code)], capture_output=True, text=True, check=False,
                          timeout=300)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX subprocess test")
def test_the_default_weights_detect_and_serve_without_onnx_installed():
    done = run_without_onnx("""
        from spikedet.detector import Detector
        from spikedet.io.images import default_image, read_image
        import spikedet.service.app  # the service's module tree too

        result = Detector(imgsz=320).detect(read_image(default_image()))
        print(len(result.detections), result.energy.snn_mJ > 0)
    """)
    assert done.returncode == 0, done.stderr[-2000:]
    count, energy = done.stdout.split()[-2:]
    assert int(count) > 0 and energy == "True"


def test_the_onnxruntime_backend_without_onnx_says_which_extra_to_install():
    done = run_without_onnx("""
        from spikedet.detector import Detector
        from spikedet.errors import SpikedetError
        try:
            Detector(imgsz=320, backend="onnxruntime")
        except SpikedetError as e:
            print(e)
    """)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "backend=onnxruntime needs onnx and onnxruntime: pip install 'spikedet[export]'" in done.stdout
