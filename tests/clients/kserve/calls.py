"""KServe's Python client against a running flask-svc, every call of its REST client as its docs show them.

Run by tests/integration/test_inference_api.py in KServe's own virtualenv (.tools/kserve-venv), never in the
project's: ``calls.py BASE_URL MODEL_NAME ROWS_JSON`` (rows of four features) prints one JSON object, each call's
name → ``{"value": …}`` or ``{"error": "<type>: <the message the client's user sees>"}``. The REST client offers no
model-metadata call.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
from kserve.protocol.infer_type import RequestedOutput


def _tensor(rows: list[list[float]], datatype: str, binary: bool) -> InferInput:
    array = np.array(rows, dtype=np.float32 if datatype == "FP32" else np.float64)
    tensor = InferInput("input-0", list(array.shape), datatype)
    tensor.set_data_from_numpy(array, binary_data=binary)
    return tensor


async def main(base_url: str, model: str, rows: list[list[float]]) -> dict[str, Any]:
    results: dict[str, Any] = {}

    async def call(name: str, action: Callable[[], Awaitable[Any]]) -> None:
        try:
            results[name] = {"value": await action()}
        except Exception as error:  # the point: what the client's user sees
            results[name] = {"error": f"{type(error).__name__}: {error}"}

    async def infer(request: InferRequest, name: str = model) -> Any:
        response = await v2.infer(base_url, request, model_name=name)
        return {output.name: output.as_numpy().tolist() for output in response.outputs}

    v2 = InferenceRESTClient(RESTConfig(protocol="v2", timeout=30))
    v1 = InferenceRESTClient(RESTConfig(protocol="v1", timeout=30))
    try:
        await call("v2_server_live", lambda: v2.is_server_live(base_url))
        await call("v2_server_ready", lambda: v2.is_server_ready(base_url))
        await call("v2_model_ready", lambda: v2.is_model_ready(base_url, model))
        await call("v2_unknown_model_ready", lambda: v2.is_model_ready(base_url, "other"))
        await call("v2_infer_json", lambda: infer(InferRequest(model, [_tensor(rows, "FP64", binary=False)])))
        await call("v2_infer_binary", lambda: infer(InferRequest(model, [_tensor(rows, "FP32", binary=True)])))
        binary_out = InferRequest(
            model,
            [_tensor(rows, "FP32", binary=True)],
            request_outputs=[RequestedOutput("predict", parameters={"binary_data": True})],
        )
        await call("v2_infer_binary_output", lambda: infer(binary_out))
        await call("v2_unknown_model", lambda: infer(InferRequest("other", [_tensor(rows, "FP64", False)]), "other"))
        await call("v2_wrong_shape", lambda: infer(InferRequest(model, [_tensor([[1.0, 2.0, 3.0]], "FP32", True)])))
        await call("v1_server_live", lambda: v1.is_server_live(base_url))
        await call("v1_model_ready", lambda: v1.is_model_ready(base_url, model))
        await call("v1_unknown_model_ready", lambda: v1.is_model_ready(base_url, "other"))
        await call("v1_predict", lambda: v1.infer(base_url, {"instances": rows}, model_name=model))
        await call("v1_unknown_model", lambda: v1.infer(base_url, {"instances": rows}, model_name="other"))
        await call("v1_wrong_shape", lambda: v1.infer(base_url, {"instances": [[1.0, 2.0, 3.0]]}, model_name=model))
    finally:
        await v2.close()
        await v1.close()
    return results


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3])))))
