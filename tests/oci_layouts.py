"""OCI image layouts for tests: a ``docker save`` archive converted, or one built from parts.

The Engine here (20.10) saves only the legacy ``docker save`` form, so a layout
is written as ``skopeo copy docker-archive:... oci:...`` would write it: every
document and layer a blob named by the sha256 of its bytes, ``index.json`` the root.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'
INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


class Layout:
    """The files of one layout, by path inside it."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {"oci-layout": LAYOUT}

    def blob(self, data: bytes, media_type: str, **extra: Any) -> dict[str, Any]:
        """Stores ``data`` as a blob; its descriptor."""
        digest = hashlib.sha256(data).hexdigest()
        self.files[f"blobs/sha256/{digest}"] = data
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data),
                **extra}

    def document(self, value: Any, media_type: str, **extra: Any) -> dict[str, Any]:
        return self.blob(json.dumps(value).encode(), media_type, **extra)

    def image(self, config: bytes, layers: list[bytes], *, gzip_layers: bool = False,
              **extra: Any) -> dict[str, Any]:
        """Stores an image's config, layers and manifest; the manifest's descriptor."""
        layer_descriptors = [
            self.blob(gzip.compress(layer, mtime=0) if gzip_layers else layer,
                      LAYER_GZIP if gzip_layers else LAYER)
            for layer in layers]
        manifest = {"schemaVersion": 2, "mediaType": MANIFEST,
                    "config": self.blob(config, CONFIG), "layers": layer_descriptors}
        return self.document(manifest, MANIFEST, **extra)

    def index(self, manifests: list[dict[str, Any]]) -> None:
        self.files["index.json"] = json.dumps(
            {"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests}).encode()

    def write(self, root: Path) -> Path:
        for name, data in self.files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return root

    def tar(self, path: Path) -> Path:
        with tarfile.open(path, "w") as archive:
            for name, data in sorted(self.files.items()):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
        return path


def from_docker_save(archive: Path, *, gzip_layers: bool = False,
                     name: str | None = None) -> Layout:
    """The layout of the (first) image of a ``docker save`` archive."""
    with tarfile.open(archive) as saved:
        def member(path: str) -> bytes:
            extracted = saved.extractfile(path)
            assert extracted is not None, path
            return extracted.read()

        entry = json.loads(member("manifest.json"))[0]
        layout = Layout()
        annotations = {"org.opencontainers.image.ref.name": name} if name else {}
        manifest = layout.image(member(entry["Config"]),
                                [member(layer) for layer in entry["Layers"]],
                                gzip_layers=gzip_layers,
                                **({"annotations": annotations} if annotations else {}))
    layout.index([manifest])
    return layout
