"""An MLServer runtime that opens the bench's model file with skops, so MLServer serves the very file flask-svc does
(mlserver-sklearn opens only joblib/pickle; prediction and encoding stay its own). Runs in .tools/mlserver-venv only."""

from __future__ import annotations

import skops.io
from mlserver.utils import get_model_uri
from mlserver_sklearn import SKLearnModel


class SkopsSKLearnModel(SKLearnModel):  # type: ignore[misc]
    async def load(self) -> bool:
        uri = await get_model_uri(self._settings)
        self._model = skops.io.load(uri)  # skops' own trusted types only, as flask-svc without extra names
        return True
