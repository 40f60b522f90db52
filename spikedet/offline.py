"""Make Ultralytics safe to use without a network, before or after it was imported.

Ultralytics reaches for the network in several places that have nothing to do with the files a user
asked it to work on: a DNS probe when it is imported (``is_online``), analytics events, a ``pip install``
of any missing requirement (``check_requirements``), a plot-font download, and an AMP self-check that
downloads a model on CUDA. spikedet turns each of these off while keeping every feature: dataset and
weight downloads that the user explicitly asks for still run when a network is there.

What :func:`make_offline_safe` does (idempotent, called when ``spikedet`` is imported):

- ``YOLO_AUTOINSTALL=0`` always: spikedet never installs packages at run time.
- ``YOLO_OFFLINE=1`` unless the user set it: no DNS probe on import, no analytics, no update checks.
- ``NO_ALBUMENTATIONS_UPDATE=1``: albumentations checks PyPI for a newer version on import otherwise.
- ``YOLO_CONFIG_DIR`` defaults to spikedet's own config directory (``$SPIKEDET_CONFIG_DIR``, else
  ``$XDG_CONFIG_HOME/spikedet``, else ``~/.config/spikedet``) so Ultralytics' settings file and fonts live
  in a predictable place; a ``YOLO_CONFIG_DIR`` set by the user wins. A new settings file there starts with
  runs, datasets and weights folders relative to the current folder (as for a pip install of Ultralytics),
  not inside whatever git checkout holds the virtual environment.
- When Ultralytics was imported first, the same switches are applied to the values it keeps in memory.
- The fonts Ultralytics' plots ask for (``Arial.ttf``, ``Arial.Unicode.ttf``) are provided from the
  DejaVu Sans copy that ships with matplotlib, so plotting never downloads a font.
- Ultralytics' ``PIL.Image.open`` patch, which would ``pip install pi-heif`` on the first unidentified image,
  is undone unless ``pi-heif`` is already installed.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

_PLOT_FONTS = ("Arial.ttf", "Arial.Unicode.ttf")


def spikedet_config_dir() -> Path:
    """Return spikedet's per-user configuration directory (not created here)."""
    if env := os.environ.get("SPIKEDET_CONFIG_DIR"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "spikedet"


def _set_environment() -> None:
    os.environ["YOLO_AUTOINSTALL"] = "0"
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    if "YOLO_CONFIG_DIR" not in os.environ:
        os.environ["YOLO_CONFIG_DIR"] = str(spikedet_config_dir())
        if "ultralytics.utils" not in sys.modules:
            _seed_settings(spikedet_config_dir() / "Ultralytics" / "settings.json")


def _seed_settings(path: Path) -> None:
    """Write Ultralytics' settings file in spikedet's own config dir before Ultralytics creates it.

    Ultralytics derives its run, dataset and weight folders from the git repository it finds above its own
    install path. When spikedet's virtual environment lives inside a git checkout (``make demo`` puts it in
    the clone), that repository is spikedet's, and every run would land in the checkout and downloads in
    ``weights/``. The seed gives the folders a pip install has (``runs``, ``datasets``, ``weights``,
    relative to the current folder) and ``sync`` off; every other value is Ultralytics' default.
    """
    if path.exists():
        return
    import hashlib
    import json
    import uuid

    settings = {
        "settings_version": "0.0.8",
        "datasets_dir": "datasets",
        "weights_dir": "weights",
        "runs_dir": "runs",
        "uuid": hashlib.sha256(str(uuid.getnode()).encode()).hexdigest(),
        "sync": False,
        "api_key": "",
        "openai_api_key": "",
        "clearml": True,
        "comet": True,
        "dvc": True,
        "mlflow": True,
        "raytune": True,
        "tensorboard": False,
        "wandb": False,
        "vscode_msg": True,
        "openvino_msg": True,
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings, indent=2), encoding="utf-8")
    except OSError:  # an unwritable config dir: Ultralytics falls back to its own defaults
        pass


def _patch_loaded_ultralytics() -> None:
    """Apply the switches to an Ultralytics that was imported before spikedet."""
    utils = sys.modules.get("ultralytics.utils")
    if utils is None:
        return
    offline = os.environ.get("YOLO_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on", "y", "t"}
    for name in ("ultralytics.utils", "ultralytics.utils.checks", "ultralytics.utils.export.tensorflow"):
        module = sys.modules.get(name)
        if module is not None and hasattr(module, "AUTOINSTALL"):
            module.AUTOINSTALL = False
        if offline and module is not None and hasattr(module, "ONLINE"):
            module.ONLINE = False
    settings = getattr(utils, "SETTINGS", None)
    if settings is not None:
        # dict.__setitem__ changes the value in memory only: the user's settings file is left alone.
        dict.__setitem__(settings, "sync", False)
    _restore_pil_open()
    events = sys.modules.get("ultralytics.utils.events")
    if events is not None:
        if offline and hasattr(events, "ONLINE"):
            events.ONLINE = False
        if hasattr(events, "events"):
            events.events.enabled = False


def _restore_pil_open() -> None:
    """Undo Ultralytics' ``PIL.Image.open`` patch when its HEIF plugin is not installed.

    The patch installs ``pi-heif`` at run time the first time Pillow cannot identify a file; offline (or with
    installs off) that surfaces as an import error instead of Pillow's ``UnidentifiedImageError``. With the
    plugin installed by the user, the patch stays and HEIF images keep working.
    """
    import importlib.util

    patches = sys.modules.get("ultralytics.utils.patches")
    if patches is None or importlib.util.find_spec("pi_heif") is not None:
        return
    from PIL import Image

    original = getattr(patches, "_image_open", None)
    if original is not None and Image.open is getattr(patches, "image_open", None):
        Image.open = original


def _provide_plot_fonts() -> None:
    """Copy matplotlib's DejaVu Sans to the names Ultralytics' plotting looks for."""
    utils = sys.modules.get("ultralytics.utils")
    config_dir = getattr(utils, "USER_CONFIG_DIR", None) if utils else None
    if config_dir is None:
        return
    try:
        import matplotlib

        source = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    except Exception:  # matplotlib missing or broken: Ultralytics then has no plots either
        return
    for name in _PLOT_FONTS:
        target = Path(config_dir) / name
        if target.exists() or not source.exists():
            continue
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        except OSError:  # read-only config dir: plots fall back to matplotlib's default font
            pass


def make_offline_safe() -> None:
    """Configure Ultralytics for offline use; safe to call any number of times."""
    _set_environment()
    _patch_loaded_ultralytics()


def import_ultralytics():
    """Import Ultralytics with the offline switches applied and return its ``utils`` module."""
    make_offline_safe()
    import ultralytics.utils as utils  # noqa: F401  (import has side effects we want once)

    _patch_loaded_ultralytics()
    _provide_plot_fonts()
    return utils
