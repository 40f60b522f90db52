"""spikedet on Ultralytics' engine, by subclassing only: :mod:`.yolo` (:class:`SpikeYOLO`, the ``Model`` API),
:mod:`.train` (the trainer), :mod:`.val` (the validator with pycocotools), :mod:`.coco` (COCO evaluation),
:mod:`.amp` (the AMP self-check without a download), :mod:`.device` (device selection).
"""
