"""OCI bench: a 1 GiB blob pushed and pulled over the distribution API (/v2/), with the registry
worker's memory, to show that pushes and pulls stream.

    python bench/oci.py [--size-mib 1024]

S3: $S3_ENDPOINT_URL (+ $S3_BUCKET) if set, else a moto server started here. The registry runs
under gunicorn (1 gthread worker) on SQLite, or $DATABASE_URL. Pushes: one monolithic upload
(``POST ?digest=`` with the whole body) and one chunked upload (PATCH in 256 MiB chunks, then
PUT; the chunks are joined and hashed on the server) and one upload in a single PATCH (as
skopeo pushes), each then registered by a manifest PUT;
pulls: the variant's manifest by tag, then its blob streamed. Prints throughput, the worker's
peak resident memory and its growth per transfer.
"""

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    RssSampler,
    admin_token,
    children,
    remove_tree,
    s3_client,
    s3_env,
    s3_target,
    start_gunicorn,
    stop,
    table,
)

MiB = 1024 * 1024
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def make_file(path, size):
    block = os.urandom(MiB)
    digest = hashlib.sha256()
    with open(path, "wb") as handle:
        for i in range(size // MiB):
            chunk = block[i % 256 :] + block[: i % 256]  # not one repeated block
            digest.update(chunk)
            handle.write(chunk)
    return "sha256:" + digest.hexdigest()


class FileSlice:
    """``length`` bytes of a file from ``start``, read as requests sends a body (with a known
    length, so the request has a Content-Length and the file is never loaded)."""

    def __init__(self, path, start, length):
        self.handle = open(path, "rb")
        self.handle.seek(start)
        self.left = length

    def __len__(self):
        return self.left

    def read(self, n=-1):
        n = self.left if n is None or n < 0 else min(n, self.left)
        data = self.handle.read(n)
        self.left -= len(data)
        return data

    def close(self):
        self.handle.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=int(os.environ.get("BENCH_SIZE_MIB", 1024)))
    parser.add_argument("--chunk-mib", type=int, default=256)
    args = parser.parse_args()
    size, chunk = args.size_mib * MiB, args.chunk_mib * MiB

    moto, endpoint, bucket = s3_target()
    work = Path(tempfile.mkdtemp(prefix="registry-bench-oci-"))
    env = s3_env(endpoint, bucket, work, REGISTRY_MAX_UPLOAD_BYTES=size * 2)
    server = None
    try:
        s3_client(env)
        source = work / "model.bin"
        digest = make_file(source, size)
        token = admin_token(env)
        server, base = start_gunicorn(env, workers=1, threads=4)
        workers = children(server.pid)
        session = requests.Session()
        session.auth = ("admin", token)
        repo = f"{base}/v2/models/bench"
        # Warm the worker up (imports, clients, connections) so the samples show what a transfer costs.
        small = b"warm-up"
        warm = session.post(
            f"{repo}/blobs/uploads/", params={"digest": "sha256:" + hashlib.sha256(small).hexdigest()}, data=small
        )
        assert warm.status_code == 201, warm.text

        def register(device):
            """The manifest that makes the pushed blob the INT8 ``device`` variant of version 1."""
            manifest = {
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.empty.v1+json",
                    "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest(),
                    "size": 2,
                },
                "layers": [{"mediaType": "application/octet-stream", "digest": digest, "size": size}],
                "annotations": {"org.model-registry.precision": "INT8", "org.model-registry.target-device": device},
            }
            response = session.put(f"{repo}/manifests/1", data=json.dumps(manifest), headers={"Content-Type": MANIFEST})
            assert response.status_code == 201, response.text

        def push_monolithic():
            with open(source, "rb") as handle:
                response = session.post(f"{repo}/blobs/uploads/", params={"digest": digest}, data=handle, timeout=3600)
            assert response.status_code == 201, response.text
            register("NPU")

        def push_chunked(chunk_size, device):
            location = session.post(f"{repo}/blobs/uploads/").headers["Location"]
            for start in range(0, size, chunk_size):
                length = min(chunk_size, size - start)
                body = FileSlice(source, start, length)
                try:
                    response = session.patch(
                        base + location,
                        data=body,
                        headers={"Content-Range": f"{start}-{start + length - 1}"},
                        timeout=3600,
                    )
                finally:
                    body.close()
                assert response.status_code == 202, response.text
                location = response.headers["Location"]
            response = session.put(base + location, params={"digest": digest}, timeout=3600)
            assert response.status_code == 201, response.text
            register(device)

        def pull():
            manifest = session.get(f"{repo}/manifests/1-int8-npu", headers={"Accept": MANIFEST}).json()
            layer = manifest["layers"][0]["digest"]
            received, hashed = 0, hashlib.sha256()
            with session.get(f"{repo}/blobs/{layer}", stream=True, timeout=3600) as response:
                response.raise_for_status()
                while data := response.raw.read(4 * MiB):
                    received += len(data)
                    hashed.update(data)
            assert received == size and "sha256:" + hashed.hexdigest() == digest

        rows = []
        transfers = (
            ("push, monolithic (POST ?digest=)", push_monolithic),
            ("push, one PATCH then PUT", lambda: push_chunked(size, "CPU")),
            (f"push, {-(-size // chunk)} PATCHes then PUT", lambda: push_chunked(chunk, "GPU")),
            ("pull (proxy)", pull),
        )
        for name, fn in transfers:
            with RssSampler(workers) as memory:
                start = time.perf_counter()
                fn()
                seconds = time.perf_counter() - start
            rows.append([name, f"{size / MiB / seconds:.0f}", f"{memory.peak / MiB:.1f}", f"{memory.growth / MiB:.1f}"])
        print(f"\nOCI distribution API: one {size // MiB} MiB blob, S3 at {endpoint}{' (moto)' if moto else ''}\n")
        print(table(["transfer", "MiB/s", "worker peak RSS MiB", "RSS growth MiB"], rows))
        print()
    finally:
        stop(server)
        stop(moto)
        remove_tree(work)


if __name__ == "__main__":
    main()
