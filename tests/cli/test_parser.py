"""The command line: conventions (key=value, --key value, --flag, -o, --json), errors with exit code 2."""

import pytest

from spikedet.cli.main import load_commands, main
from spikedet.cli.parser import COMMANDS, UsageError, parse_args, parse_value


def test_parse_value_is_ultralytics_style():
    assert parse_value("true") is True and parse_value("False") is False and parse_value("none") is None
    assert parse_value("3") == 3 and parse_value("0.5") == 0.5 and parse_value("[320, 640]") == [320, 640]
    assert parse_value("coco8.yaml") == "coco8.yaml" and parse_value("0,1") == "0,1"


def test_all_spellings_set_the_same_setting():
    load_commands()

    forms = [
        ["info", "spikeyolo-s.yaml", "imgsz=320"],
        ["info", "spikeyolo-s.yaml", "--imgsz", "320"],
        ["info", "spikeyolo-s.yaml", "--imgsz=320"],
        ["info", "model=spikeyolo-s.yaml", "imgsz=320"],
        ["info", "--model", "spikeyolo-s.yaml", "--imgsz", "320"],
    ]
    parsed = [parse_args(f).settings for f in forms]
    assert all(p == parsed[0] for p in parsed)
    assert parsed[0]["imgsz"] == 320 and parsed[0]["model"] == "spikeyolo-s.yaml"
    assert parse_args(["info", "--json"]).json is True


def test_flags_and_ultralytics_settings_are_validated():
    load_commands()

    inv = parse_args(["train", "coco8.yaml", "--rect", "epochs=3", "--lr0", "0.02"])
    assert inv.settings["rect"] is True and inv.settings["epochs"] == 3 and inv.settings["lr0"] == 0.02
    assert inv.settings["data"] == "coco8.yaml"
    with pytest.raises(UsageError, match=r"unknown setting 'epoch' \(did you mean 'epochs'\?\)"):
        parse_args(["train", "coco8.yaml", "epoch=3"])
    with pytest.raises(UsageError, match="epochs"):
        parse_args(["train", "coco8.yaml", "epochs=abc"])
    with pytest.raises(UsageError, match="given twice"):
        parse_args(["info", "imgsz=320", "--imgsz", "640"])
    with pytest.raises(UsageError, match="unexpected argument"):
        parse_args(["info", "a.yaml", "b.yaml"])
    with pytest.raises(UsageError, match="unknown command"):
        parse_args(["detect"])
    with pytest.raises(UsageError, match="needs a value"):
        parse_args(["info", "--imgsz"])


@pytest.mark.parametrize(
    "args,message",
    [
        (["info", "nothere.yaml"], "model config 'nothere.yaml' not found"),
        (["info", "spikeyolo-q.yaml"], "unknown scale 'q'"),
        (["info", "spikeyolo-n.yaml", "imgsz=abc"], "imgsz must be an integer"),
        (["info", "spikeyolo-n.yaml", "imgsz=100"], "multiple of the model stride"),
        (["info", "spikeyolo-n.yaml", "colour=red"], "unknown setting 'colour'"),
        (["val", "coco8.yaml", "model=missing.pt"], "weights file 'missing.pt' not found"),
        (["predict", "model=missing.pt", "source=nope.jpg"], "source 'nope.jpg' not found"),
        (["train"], "give the data YAML"),
        (["train", "nothere.yaml", "model=spikeyolo-t.yaml"], "data 'nothere.yaml' not found; looked in: "),
        (["train", "coco8.yaml", "imgsz=abc"], "imgsz must be an integer"),
        (["val", "coco8.yaml", "model=yolov5n-a2s.safetensors", "batch=0"], "batch must be"),
        (["predict", "source=README.md"], "No images or videos found"),
        (["frobnicate"], "unknown command 'frobnicate'"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(args, message, capsys):
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and message in err and "Traceback" not in err


def test_help_lists_only_registered_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    listed = [line.split()[0] for line in out.split("commands:")[1].split("\n\n")[0].strip().splitlines()]
    assert listed == list(COMMANDS)
    for name in listed:
        assert main([name, "--help"]) == 0
        assert f"usage: spikedet {name}" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["predict", "energy", "analyze", "convert", "export", "demo", "webcam", "serve", "val"])
def test_model_and_weights_spell_the_same_setting_in_every_command_that_takes_weights(name):
    load_commands()
    cmd = COMMANDS[name]
    declared = "model" if "model" in cmd.settings else "weights"
    for spelling in ("model", "weights", "--model", "--weights"):
        args = [f"{spelling}=w.safetensors"] if not spelling.startswith("--") else [spelling, "w.safetensors"]
        assert parse_args([name, *args]).settings[declared] == "w.safetensors"
    with pytest.raises(UsageError, match=r"given twice \(weights= and model= are the same setting\)|"
                                         r"given twice \(model= and weights= are the same setting\)"):
        parse_args([name, "model=a.pt", "weights=b.pt"])


def test_image_size_has_one_rule_and_one_message_in_every_command(capsys):
    message = "imgsz must be a multiple of the model stride (here: a multiple of 32), got 33"
    for name in ("info", "energy", "predict", "export", "train", "val"):
        args = [name, "imgsz=33"] + (["coco8.yaml"] if name in ("train", "val") else [])
        assert main(args) == 2
        assert capsys.readouterr().err.strip() == f"spikedet {name}: error: {message}"


def test_a_missing_dataset_says_where_it_looked_and_leaves_no_run_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.yaml").write_text("train: nowhere/images\nval: nowhere/images\nnames: {0: a}\n")
    assert main(["train", "nothere.yaml", "model=spikeyolo-t.yaml"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(tmp_path / "nothere.yaml") in err and "Ultralytics' dataset names" in err
    assert main(["train", "d.yaml", "model=spikeyolo-t.yaml"]) == 2  # the YAML exists, its images do not
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"missing path '{tmp_path / 'nowhere' / 'images'}'" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.yaml"]  # no runs/detect/train left behind


def test_a_corrupt_checkpoint_is_one_flat_line_in_every_command(tmp_path, capsys):
    import zipfile

    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(b"PK\x03\x04 cut short")
    foreign = tmp_path / "foreign.pt"
    with zipfile.ZipFile(foreign, "w") as z:
        z.writestr("foreign/data.txt", "not a checkpoint")
    for name in ("predict", "info", "energy", "convert"):
        for path, message in ((truncated, "not a PyTorch checkpoint (not a zip archive"), (foreign, "cannot load")):
            assert main([name, f"model={path}"]) == 2
            err = capsys.readouterr().err.strip()
            assert len(err.splitlines()) == 1 and message in err, err
            assert "\u274c" not in err and "ERROR" not in err and err.count("(") <= 2, err
