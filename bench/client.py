"""Client bench: a 1 GiB file pushed and pulled through the Python client (``registry_client``),
against the same S3 endpoint written and read directly with boto3 in the same run.

    python bench/client.py [--size-mib 1024] [--repeat 3]

The push is a direct upload (presigned parts straight to S3, then ``complete``, where the
registry reads the object back once to check its sha256); the pull resolves the variant, follows
the registry's redirect to a presigned URL, and hashes the bytes as they arrive. boto3 uses its
defaults (8 MiB parts, 10 threads). S3 is $S3_ENDPOINT_URL (+ $S3_BUCKET) if set, else a moto
server started here. Prints both throughputs, their ratio, and how much of the push is its parts.
"""

import argparse
import hashlib
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

from boto3.s3.transfer import TransferConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from artifacts import make_file, timed  # noqa: E402
from common import issue_token, manage, s3_client, s3_env, s3_target, start_gunicorn, stop, table  # noqa: E402

MiB = 1024 * 1024


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=int(os.environ.get("BENCH_SIZE_MIB", 1024)))
    parser.add_argument("--repeat", type=int, default=int(os.environ.get("BENCH_REPEAT", 3)))
    args = parser.parse_args()
    size = args.size_mib * MiB

    from registry_client import Registry

    moto, endpoint, bucket = s3_target()
    work = Path(tempfile.mkdtemp(prefix="registry-client-bench-"))
    env = s3_env(endpoint, bucket, work, REGISTRY_MAX_UPLOAD_BYTES=size * 2)
    os.environ["REGISTRY_CACHE_DIR"] = str(work / "cache")
    s3 = s3_client(env)
    server = None
    try:
        source = make_file(work / "model.bin", size)
        manage(env, "migrate", "--noinput")
        manage(env, "ensure_admin", "--url", "http://127.0.0.1")
        token = issue_token(env)
        server, base = start_gunicorn(env, workers=1, threads=4)
        registry = Registry(base, token)
        warm = make_file(work / "warm.bin", MiB)
        registry.push(warm, model="warm-up", version="1")
        registry.pull("warm-up", version="1", dest=work / "warm-out")

        config = TransferConfig()  # boto3's defaults: 8 MiB parts, 10 threads
        names = ("up_boto3", "up_client", "up_parts", "down_boto3", "down_boto3_sha", "down_client")
        best = dict.fromkeys(names, float("inf"))

        def boto3_upload():
            s3.upload_file(str(source), bucket, "direct/model.bin", Config=config)

        def boto3_download():
            s3.download_file(bucket, "direct/model.bin", str(work / "direct.out"), Config=config)
            (work / "direct.out").unlink()

        def boto3_stream(check=False):
            # One streamed GET into a file: faster than download_file's ranged GETs against moto.
            body, digest = s3.get_object(Bucket=bucket, Key="direct/model.bin")["Body"], hashlib.sha256()
            with open(work / "direct.out", "wb") as handle:
                for chunk in body.iter_chunks(4 * MiB):
                    handle.write(chunk)
                    if check:
                        digest.update(chunk)
            (work / "direct.out").unlink()

        def client_push(version):
            marks = {}

            def progress(done, total):
                if done == total and "parts" not in marks:
                    marks["parts"] = time.perf_counter()

            start = time.perf_counter()
            artifact = registry.push(source, model="bench", version=version, precision="INT8", progress=progress)
            best["up_parts"] = min(best["up_parts"], marks["parts"] - start)
            assert artifact["size"] == size
            return artifact

        def client_pull(version):
            result = registry.pull("bench", version=version, dest=work / "pulled")
            assert result.downloaded and result.transferred == size
            result.path.unlink()

        for run in range(args.repeat):
            version = f"{run}-{uuid.uuid4().hex[:6]}"
            best["up_boto3"] = min(best["up_boto3"], timed(boto3_upload)[0])
            best["down_boto3"] = min(best["down_boto3"], timed(boto3_download)[0], timed(boto3_stream)[0])
            best["down_boto3_sha"] = min(best["down_boto3_sha"], timed(lambda: boto3_stream(check=True))[0])
            s3.delete_object(Bucket=bucket, Key="direct/model.bin")
            seconds, artifact = timed(lambda v=version: client_push(v))
            best["up_client"] = min(best["up_client"], seconds)
            best["down_client"] = min(best["down_client"], timed(lambda v=version: client_pull(v))[0])
            registry.delete_artifact(artifact["id"])

        def row(name, boto3_key, client_key, target=""):
            boto3_seconds, client_seconds = best[boto3_key], best[client_key]
            return [
                name,
                f"{size / MiB / boto3_seconds:.0f}",
                f"{size / MiB / client_seconds:.0f}",
                f"{boto3_seconds / client_seconds:.0%}",
                target,
            ]

        rows = [
            row("push (direct upload)", "up_boto3", "up_client", "85%"),
            row("  of which hash + parts", "up_boto3", "up_parts"),
            row("pull (redirect download)", "down_boto3", "down_client", "85%"),
            row("  vs boto3 + sha256", "down_boto3_sha", "down_client"),
        ]
        print(
            f"\nClient: one {size // MiB} MiB file, best of {args.repeat} runs, S3 at {endpoint}"
            f"{' (moto)' if moto else ''}\n"
        )
        print(table(["transfer", "boto3 MiB/s", "client MiB/s", "client/boto3", "target"], rows))
        print(
            "\nA push ends with `complete`, where the registry reads the object back once for its sha256;"
            " the second row stops the clock when the last part is acknowledged."
            "\nboto3's download is the faster of download_file (ranged GETs) and one streamed get_object;"
            " the last row hashes that stream too, as the client does to verify what it received."
        )
    finally:
        stop(server)
        stop(moto)


if __name__ == "__main__":
    main()
