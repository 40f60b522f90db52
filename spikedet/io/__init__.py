"""What goes in and out of spikedet: model files (the one loader), YOLOv5 checkpoints, images, datasets.

- :mod:`~spikedet.io.weights`: :func:`load_model` for every model format, :func:`save_model` (safetensors);
- :mod:`~spikedet.io.restricted_pickle` and :mod:`~spikedet.io.yolov5`: YOLOv5 checkpoints without their code;
- :mod:`~spikedet.io.spikeyolo` (with ``spikeyolo_names``, ``spikeyolo_check``, ``spikeyolo_import``): SpikeYOLO
  checkpoints without their code, and the check that they compute what SpikeYOLO's code computes;
- :mod:`~spikedet.io.images`: image files, reading, the letterbox and the image-size rule;
- :mod:`~spikedet.io.datasets`: an image folder with YOLO labels as a temporary data YAML.
"""
