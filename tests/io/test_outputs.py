"""The output rule (spikedet/io/outputs.py): where commands may write."""

import pytest


def test_an_output_under_a_file_is_refused_before_any_work(tmp_path):
    from spikedet.errors import SpikedetError
    from spikedet.io.outputs import output_file, output_folder

    afile = tmp_path / "photo.jpg"
    afile.write_text("x")
    with pytest.raises(SpikedetError, match="is a file, not a folder"):
        output_file(afile / "m.onnx", (".onnx",))
    with pytest.raises(SpikedetError, match="is a file, not a folder"):
        output_folder(afile / "analysis")
    assert output_folder(tmp_path / "new" / "analysis") == tmp_path / "new" / "analysis"
