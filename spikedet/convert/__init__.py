"""From a trained network to the deployed one: the bit-plane converter, its check, ANN-to-SNN conversion
and ONNX export.

- :mod:`~spikedet.convert.bitplane`: :func:`convert` (fold codes into the weights), :func:`spiking`;
- :mod:`~spikedet.convert.verify`: the equivalence check (codes, head outputs, detections);
- :mod:`~spikedet.convert.a2s`: calibration and neurons for a SiLU ANN (YOLOv5);
- :mod:`~spikedet.convert.onnx`: the integer spiking model as ONNX, checked with onnxruntime;
- :mod:`~spikedet.convert.integer`: the integer deployment model (int8/int16 weights, integer neurons);
- :mod:`~spikedet.convert.integer_onnx`: an integer graph (spec version 1) as ONNX integer ops, bit-exact;
- :mod:`~spikedet.convert.integer_verify`: every runtime against the NumPy reference (``spikedet verify``);
- :mod:`~spikedet.convert.pipelines`: the ``convert`` (``--integer``), ``a2s``, ``export`` and ``verify`` commands
  as functions.
"""

from spikedet import lazy_attributes

#: The pipelines are imported on first use, so importing this package does not import torch and Ultralytics.
__getattr__ = lazy_attributes(
    "spikedet.convert",
    dict.fromkeys(("a2s_weights", "convert_weights", "export_weights", "integer_weights", "verify_weights"),
                  "spikedet.convert.pipelines"),
)

__all__ = ["a2s_weights", "convert_weights", "export_weights", "integer_weights", "verify_weights"]
