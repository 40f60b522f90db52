"""spikedet on Ultralytics' engine, by subclassing only: :mod:`.yolo` (:class:`SpikeYOLO`, the ``Model`` API),
:mod:`.train` (the trainer), :mod:`.val` (the validator with pycocotools), :mod:`.coco` (COCO evaluation),
:mod:`.amp` (precision: metrics of spiking networks in float32, the AMP self-check without a download),
:mod:`.distributed` (several nodes under torchrun, DDP on CPU over gloo), :mod:`.device` (device selection).
"""
