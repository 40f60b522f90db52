"""Progress bars: Ultralytics' TQDM on stderr, stdout left to results; none for a single step."""

from spikedet.progress import progress


def test_progress_shows_ultralytics_bar_on_stderr_and_passes_items_through(capsys):
    assert list(progress(range(3), "energy")) == [0, 1, 2]
    captured = capsys.readouterr()
    assert captured.out == "" and "energy" in captured.err and "3/3" in captured.err
    assert list(progress([7], "energy")) == [7]
    assert capsys.readouterr().err == ""  # one image: no bar
    assert list(progress(iter("ab"), "reading images", total=2)) == ["a", "b"]
    assert "2/2" in capsys.readouterr().err
