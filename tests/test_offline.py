"""Importing spikedet makes Ultralytics safe offline: no network, no installs, no telemetry.

The network check runs in a fresh interpreter (not under pytest, which Ultralytics itself treats as a
reason to disable analytics) with an audit hook installed before anything is imported.
"""

import json
import os
import subprocess
import sys
import textwrap

AUDITED_SCRIPT = textwrap.dedent(
    r"""
    import json, sys
    events = []
    NETWORK = {"socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr",
               "socket.sendto", "socket.sendmsg", "urllib.Request", "http.client.connect", "subprocess.Popen"}

    def audit(event, args):
        if event == "subprocess.Popen":
            # only a package install counts here (ctypes' library lookup runs ldconfig, harmlessly)
            if any(word in repr(args) for word in ("pip", "install", "uv ")):
                events.append([event, repr(args)[:200]])
        elif event in NETWORK:
            events.append([event, repr(args)[:200]])

    sys.addaudithook(audit)

    import spikedet  # noqa: F401
    from spikedet.engine.yolo import SpikeYOLO
    from ultralytics.utils import SETTINGS
    from ultralytics.utils.checks import check_font
    import ultralytics.utils.checks as checks
    import ultralytics.utils.events as ultra_events

    data, image, project = sys.argv[1], sys.argv[2], sys.argv[3]
    model = SpikeYOLO("spikeyolo-t.yaml")
    model.train(data=data, epochs=1, imgsz=64, batch=4, workers=0, project=project, name="a",
                plots=True, verbose=False, val=True)
    metrics = model.val(data=data, imgsz=64, batch=4, workers=0, project=project, name="v", plots=True)
    results = model.predict(image, imgsz=64, save=True, project=project, name="p")
    font = check_font("Arial.ttf")
    print(json.dumps({
        "events": events,
        "autoinstall": checks.AUTOINSTALL,
        "sync": SETTINGS["sync"],
        "analytics": ultra_events.events.enabled,
        "font": str(font),
        "boxes": len(results[0].boxes),
    }))
    """
)


def test_build_train_val_predict_open_no_network(tmp_path, coco8_yaml, coco8_val_images):
    script = tmp_path / "audited.py"
    script.write_text(AUDITED_SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YOLO_", "PYTEST"))}
    env["SPIKEDET_CONFIG_DIR"] = str(tmp_path / "config")
    image = str(next(coco8_val_images.glob("*.jpg")))
    proc = subprocess.run(
        [sys.executable, str(script), coco8_yaml, image, str(tmp_path / "runs")],
        env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["events"] == []
    assert report["autoinstall"] is False
    assert report["sync"] is False and report["analytics"] is False
    assert report["font"].startswith(str(tmp_path / "config"))  # the local copy, not a download
    assert (tmp_path / "config" / "Ultralytics" / "settings.json").is_file()


def test_switches_apply_when_ultralytics_was_imported_first(tmp_path):
    code = textwrap.dedent(
        """
        import json, os
        import ultralytics.utils as u
        import ultralytics.utils.checks as checks
        import ultralytics.utils.events as ev
        before = [checks.AUTOINSTALL, ev.events.enabled]
        import spikedet
        print(json.dumps({"before_autoinstall": before[0], "autoinstall": checks.AUTOINSTALL,
                          "utils_autoinstall": u.AUTOINSTALL, "online": checks.ONLINE,
                          "analytics": ev.events.enabled, "sync": u.SETTINGS["sync"],
                          "env": os.environ["YOLO_AUTOINSTALL"]}))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YOLO_", "PYTEST"))}
    env["YOLO_CONFIG_DIR"] = str(tmp_path)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["before_autoinstall"] is True  # Ultralytics' own default, so the switch really acts
    assert report["autoinstall"] is False and report["utils_autoinstall"] is False
    assert report["online"] is False and report["analytics"] is False and report["sync"] is False
    assert report["env"] == "0"


def test_new_settings_keep_runs_and_datasets_relative_to_the_current_folder(tmp_path):
    """Not inside whatever git checkout holds the virtual environment (Ultralytics' default for git installs)."""
    code = "import spikedet, ultralytics.utils as u; print(u.SETTINGS['runs_dir'], u.SETTINGS['datasets_dir'], u.SETTINGS['sync'])"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YOLO_", "PYTEST", "SPIKEDET"))}
    env["SPIKEDET_CONFIG_DIR"] = str(tmp_path / "cfg")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.stdout.strip().splitlines()[-1] == "runs datasets False"


def test_config_dir_is_spikedets_own_and_overridable(tmp_path):
    code = "import spikedet, ultralytics.utils as u; print(u.USER_CONFIG_DIR)"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YOLO_", "PYTEST", "SPIKEDET"))}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.stdout.strip().splitlines()[-1] == str(tmp_path / "xdg" / "spikedet" / "Ultralytics")
    env["YOLO_CONFIG_DIR"] = str(tmp_path / "mine")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.stdout.strip().splitlines()[-1] == str(tmp_path / "mine" / "Ultralytics")
