"""Train the default model: ``python -m service.inference.train OUTPUT.skops``.

A standard scaler and a logistic regression, fitted on the Iris data that ships inside scikit-learn (no download).
Both steps are deterministic; skops names objects and stored arrays after their ``id()`` and stamps the archive with
the time, so ``reproducible`` renumbers them by order of appearance and fixes the timestamps: every build writes the
same bytes, hence the same sha256 and the same model version, wherever the image is built.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry


def train() -> Any:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features, labels = load_iris(return_X_y=True)
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(features, labels)


def _renumber(node: Any, names: dict[str, str], ids: dict[int, int]) -> None:
    """Replace memory addresses (stored file names, object ids) by order of appearance in the schema, in place."""
    if isinstance(node, dict):
        stored = node.get("file")
        if isinstance(stored, str):
            node["file"] = names.setdefault(stored, f"{len(names)}{Path(stored).suffix}")
        if isinstance(node.get("__id__"), int):
            node["__id__"] = ids.setdefault(node["__id__"], len(ids))
        for value in node.values():
            _renumber(value, names, ids)
    elif isinstance(node, list):
        for value in node:
            _renumber(value, names, ids)


def reproducible(archive: bytes) -> bytes:
    """The same skops archive with stable entry names and fixed timestamps."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(archive)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        schema = json.loads(source.read("schema.json"))
        names: dict[str, str] = {}
        _renumber(schema, names, {})
        entries = [("schema.json", json.dumps(schema, sort_keys=True).encode())]
        entries += sorted((new, source.read(old)) for old, new in names.items())
        for name, content in entries:
            entry = zipfile.ZipInfo(name, date_time=_EPOCH)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            target.writestr(entry, content)
    return out.getvalue()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("output", type=Path, help="where to write the skops file")
    output = parser.parse_args(argv).output
    from skops.io import dumps

    data = reproducible(dumps(train()))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(data)
    print(f"{output}: {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main()
