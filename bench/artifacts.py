"""Artifacts bench: a 1 GiB file uploaded and downloaded through the registry's API, against the
same S3 endpoint written and read directly with boto3 in the same run.

    python bench/artifacts.py [--size-mib 1024]

S3: $S3_ENDPOINT_URL (+ $S3_BUCKET) if set, else a moto server started here (moto is itself
Python, so it is the slower side of both paths; both paths pay it equally; see common.MOTO_MALLOC).
The registry runs under gunicorn (1 gthread worker) on SQLite, or $DATABASE_URL. Uploads go
through the API twice, as a multipart form and as a raw body (``curl -T``). Prints throughputs,
their ratio, and the server worker's peak resident memory per transfer and its growth.

The anchor for proxied downloads is socat, a proxy written in C, between boto3 and the same S3
endpoint in the same run (Debian's package `socat`; without it that row says so): no proxy on
these cores can go much faster, so the registry's proxied download is compared with it too.
"""

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests
from boto3.s3.transfer import TransferConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    CpuMeter,
    RssSampler,
    admin_token,
    children,
    free_port,
    multipart_body,
    remove_tree,
    s3_client,
    s3_env,
    s3_target,
    start_gunicorn,
    stop,
    table,
    wait_for,
)

MiB = 1024 * 1024


def file_chunks(path):
    with open(path, "rb") as handle:
        while chunk := handle.read(4 * MiB):
            yield chunk


def make_file(path, size):
    block = os.urandom(MiB)
    with open(path, "wb") as handle:
        for i in range(size // MiB):
            handle.write(block[i % 256 :] + block[: i % 256])  # not one repeated block
    return path


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def start_socat(endpoint):
    """socat relaying a loopback port to the S3 endpoint: the C proxy downloads are compared with."""
    from urllib.parse import urlparse

    if not shutil.which("socat"):
        return None, None
    target, port = urlparse(endpoint), free_port()
    proc = subprocess.Popen(
        [
            "socat",
            "-b",
            "1048576",
            f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork",
            f"TCP:{target.hostname}:{target.port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_for(url)
    return proc, url


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=int(os.environ.get("BENCH_SIZE_MIB", 1024)))
    parser.add_argument("--repeat", type=int, default=int(os.environ.get("BENCH_REPEAT", 3)))
    parser.add_argument(
        "--moto-default-malloc", action="store_true", help="run moto without the malloc settings of common.MOTO_MALLOC"
    )
    args = parser.parse_args()
    size = args.size_mib * MiB

    moto, endpoint, bucket = s3_target(tuned=not args.moto_default_malloc)
    work = Path(tempfile.mkdtemp(prefix="registry-bench-"))
    env = s3_env(endpoint, bucket, work, REGISTRY_MAX_UPLOAD_BYTES=size * 2)
    s3 = s3_client(env)
    server = socat = None
    try:
        socat, socat_url = start_socat(endpoint)
        s3_via_socat = s3_client({**env, "S3_ENDPOINT_URL": socat_url}) if socat else None
        source = make_file(work / "model.bin", size)
        digest = hashlib.sha256(source.read_bytes()).hexdigest() if size <= 2048 * MiB else None
        token = admin_token(env)
        server, base = start_gunicorn(env, workers=1, threads=4)
        workers = children(server.pid)
        auth = {"Authorization": f"Token {token}"}
        # Warm the worker up (imports, clients, connections) so the samples show what a transfer costs.
        warm = requests.post(
            f"{base}/api/v1/artifacts/",
            headers=auth,
            timeout=60,
            files={"file": ("warm.bin", os.urandom(MiB))},
            data={"registered_model": "warm-up", "version": "1"},
        )
        assert warm.status_code == 201, warm.text
        for mode in ("proxy", "redirect"):
            _ = requests.get(f"{base}/api/v1/artifacts/{warm.json()['id']}/download/?mode={mode}", timeout=60).content

        config = TransferConfig()  # boto3's defaults: 8 MiB parts, 10 threads

        def direct_upload():
            s3.upload_file(str(source), bucket, "direct/model.bin", Config=config)

        def direct_download():
            s3.download_file(bucket, "direct/model.bin", str(work / "direct.out"), Config=config)
            (work / "direct.out").unlink()

        def direct_stream(client=s3):
            body, received = client.get_object(Bucket=bucket, Key="direct/model.bin")["Body"], 0
            for chunk in body.iter_chunks(4 * MiB):
                received += len(chunk)
            assert received == size

        boundary = uuid.uuid4().hex

        def api_upload():
            fields = {"registered_model": "bench", "version": uuid.uuid4().hex[:8], "precision": "FP16"}
            body = multipart_body(file_chunks(source), size, source.name, fields, boundary)
            response = requests.post(
                f"{base}/api/v1/artifacts/",
                data=body,
                timeout=3600,
                headers={**auth, "Content-Type": f"multipart/form-data; boundary={boundary}"},
            )
            assert response.status_code == 201, response.text
            artifact = response.json()
            assert artifact["size"] == size and (digest is None or artifact["sha256"] == digest)
            return artifact

        def api_upload_raw():
            # The file as the request body (curl -T), the metadata in the query string.
            with open(source, "rb") as handle:
                response = requests.put(
                    f"{base}/api/v1/artifacts/upload/{source.name}",
                    data=handle,
                    timeout=3600,
                    params={"registered_model": "bench", "version": uuid.uuid4().hex[:8], "precision": "INT8"},
                    headers=auth,
                )
            assert response.status_code == 201, response.text
            artifact = response.json()
            assert artifact["size"] == size and (digest is None or artifact["sha256"] == digest)
            return artifact

        def api_download(artifact, mode):
            received = 0
            with requests.get(
                f"{base}/api/v1/artifacts/{artifact['id']}/download/?mode={mode}", stream=True, timeout=3600
            ) as r:
                r.raise_for_status()
                while chunk := r.raw.read(4 * MiB):
                    received += len(chunk)
            assert received == size, received

        # The machine is shared: each transfer runs `repeat` times and the fastest counts, for
        # both paths alike. Memory is the largest peak and growth seen in any run.
        best = {
            name: float("inf")
            for name in ("up_direct", "down_direct", "up_api", "up_raw", "down_api", "down_redirect", "down_socat")
        }
        growth = {"up_api": 0, "up_raw": 0, "down_api": 0}
        peak = dict(growth)
        moto_pid = moto.pid if moto else None
        # CPU seconds of the registry worker, the S3 server and this script (the client), last run.
        # Everything shares two cores, so their sum bounds the throughput of each path.
        cpu = {}

        def measure(name, fn):
            """Time ``fn``, keep its best time, its CPU use and (for the API) the worker's growth."""
            with RssSampler(workers) as memory, CpuMeter([*workers, moto_pid, os.getpid()]) as meter:
                seconds, result = timed(fn)
            cpu[name] = (sum(meter.used[w] for w in workers), meter.used.get(moto_pid, 0), meter.used[os.getpid()])
            best[name] = min(best[name], seconds)
            if name in growth:
                growth[name] = max(growth[name], memory.growth)
                peak[name] = max(peak[name], memory.peak)
            return result

        for _ in range(args.repeat):
            measure("up_direct", direct_upload)
            best["down_direct"] = min(best["down_direct"], timed(direct_download)[0])
            measure("down_direct", direct_stream)
            if s3_via_socat:
                measure("down_socat", lambda: direct_stream(s3_via_socat))
            s3.delete_object(Bucket=bucket, Key="direct/model.bin")
            artifact = measure("up_api", api_upload)
            measure("down_api", lambda a=artifact: api_download(a, "proxy"))
            best["down_redirect"] = min(best["down_redirect"], timed(lambda a=artifact: api_download(a, "redirect"))[0])
            requests.delete(f"{base}/api/v1/artifacts/{artifact['id']}/", headers=auth, timeout=60)
            artifact = measure("up_raw", api_upload_raw)
            requests.delete(f"{base}/api/v1/artifacts/{artifact['id']}/", headers=auth, timeout=60)
        up_direct, down_direct, up_api, up_raw, down_api, down_redirect = (
            best[k] for k in ("up_direct", "down_direct", "up_api", "up_raw", "down_api", "down_redirect")
        )
        rows = []

        def mbps(seconds):
            return f"{size / MiB / seconds:.0f}"

        rows.append(
            [
                "upload (multipart form)",
                mbps(up_direct),
                mbps(up_api),
                f"{up_direct / up_api:.0%}",
                f"{peak['up_api'] / MiB:.1f}",
                f"{growth['up_api'] / MiB:.1f}",
                "70%",
            ]
        )
        rows.append(
            [
                "upload (raw body)",
                mbps(up_direct),
                mbps(up_raw),
                f"{up_direct / up_raw:.0%}",
                f"{peak['up_raw'] / MiB:.1f}",
                f"{growth['up_raw'] / MiB:.1f}",
                "70%",
            ]
        )
        rows.append(
            [
                "download (proxy)",
                mbps(down_direct),
                mbps(down_api),
                f"{down_direct / down_api:.0%}",
                f"{peak['down_api'] / MiB:.1f}",
                f"{growth['down_api'] / MiB:.1f}",
                "85%",
            ]
        )
        down_socat = best["down_socat"]
        rows.append(
            [
                "download (proxy) vs socat",
                mbps(down_socat) if socat else "no socat",
                mbps(down_api),
                f"{down_socat / down_api:.0%}" if socat else "-",
                "-",
                "-",
                "95% of socat",
            ]
        )
        rows.append(
            [
                "download (redirect)",
                mbps(down_direct),
                mbps(down_redirect),
                f"{down_direct / down_redirect:.0%}",
                "-",
                "-",
                "100% by design",
            ]
        )
        print(
            f"\nArtifacts: one {size // MiB} MiB file, best of {args.repeat} runs, "
            f"S3 at {endpoint}"
            f"{'' if not moto else ' (moto, default malloc)' if args.moto_default_malloc else ' (moto)'}\n"
        )
        print(
            table(
                [
                    "transfer",
                    "boto3 MiB/s",
                    "API MiB/s",
                    "API/boto3",
                    "worker peak RSS MiB",
                    "RSS growth MiB",
                    "target",
                ],
                rows,
            )
        )
        print(f"\nCPU seconds per transfer of {size // MiB} MiB (last run):\n")
        print(
            table(
                ["transfer", "registry worker", "S3 server", "client", "all"],
                [[name, f"{w:.2f}", f"{m:.2f}", f"{c:.2f}", f"{w + m + c:.2f}"] for name, (w, m, c) in cpu.items()],
            )
        )
        print()
    finally:
        stop(server)
        stop(socat)
        stop(moto)
        remove_tree(work)


if __name__ == "__main__":
    main()
