"""Run a frozen torch module through ONNX Runtime, for faster inference on CPUs.

PyTorch's eager CPU kernels are slow for the depthwise convolutions of mobile networks. On a
2-core machine, EfficientNet-Lite0's trunk took about 270 ms for a 768 x 576 photo on 1 thread in
torch, and 31 ms through ONNX Runtime, with the same output to 1e-4. ONNX Runtime folds batch norm
into the convolutions and fuses the activations.

The module is exported in memory when the engine starts (about 0.6 s), so no derived model file
needs to be shipped, kept in step with the weights, or trusted from disk.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import torch

RUNTIMES = ("onnxruntime", "torch")


class RuntimeUnavailable(RuntimeError):
    """ONNX Runtime or the ONNX exporter is missing. The message names the packages to install."""


class OnnxRunner:
    """Call `module` on NCHW float32 arrays of any height and width, through ONNX Runtime."""

    def __init__(self, module: torch.nn.Module, channels: int, threads: int) -> None:
        try:
            import onnx  # noqa: F401  (torch's exporter needs it)
            import onnxruntime
        except ImportError as exc:
            raise RuntimeUnavailable(
                "engine.runtime = 'onnxruntime' needs the packages onnx and onnxruntime: pip install them,"
                " or set engine.runtime to 'torch' (several times slower)"
            ) from exc

        graph = io.BytesIO()
        example = torch.zeros(1, channels, 224, 224)
        with warnings.catch_warnings():
            # The legacy exporter warns about its own deprecation and about shape inference; the
            # engine's tests compare the exported graph's output with the module's.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module.eval(),
                (example,),
                graph,
                dynamo=False,
                input_names=["image"],
                output_names=["features"],
                dynamic_axes={"image": {2: "height", 3: "width"}, "features": {2: "rows", 3: "columns"}},
                opset_version=17,
            )

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Photos differ in size, so memory plans made for one shape do not fit the next.
        options.enable_mem_pattern = False
        # Idle worker threads would otherwise spin, taking CPU from the other predictors.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = onnxruntime.InferenceSession(
            graph.getvalue(), options, providers=["CPUExecutionProvider"]
        )

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self._session.run(None, {"image": np.ascontiguousarray(batch, dtype=np.float32)})[0]
