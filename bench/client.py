"""Client bench: a 1 GiB file pushed and pulled through the Python client (``registry_client``),
against the same S3 endpoint written and read directly with boto3 in the same run.

    python bench/client.py [--size-mib 1024] [--repeat 3]

Each side does the same work where the client's promises allow it:

- push: boto3 ``upload_file`` (its defaults: 8 MiB parts, 10 threads) against the client's push
  (presigned parts with their CRC32 straight to S3, the file's sha256 computed meanwhile, then
  ``complete``, where the registry reads the object back once to compute its sha256). A second
  row stops the client's clock when the last part is acknowledged.
- pull: both read the same object (the one the client pushed) into a file beside the target,
  hash it while it arrives, check the sha256 and rename it into place. boto3 streams one
  ``get_object`` in 4 MiB reads; the client resolves the variant, follows the registry's
  redirect to a presigned URL and reads from there.

The two sides take turns going first, round after round (the first read of a freshly written
object is not the second), and the table gives the median and the best of ``--repeat`` rounds per
side, with the ratio of the medians. S3 is $S3_ENDPOINT_URL (+ $S3_BUCKET) if set, else a moto
server started here.
"""

import argparse
import hashlib
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

from boto3.s3.transfer import TransferConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from artifacts import make_file, timed  # noqa: E402
from common import (  # noqa: E402
    issue_token,
    manage,
    median,
    s3_client,
    s3_env,
    s3_target,
    start_gunicorn,
    stop,
    table,
)

MiB = 1024 * 1024
READ_CHUNK = 4 * MiB


def object_key(registry, artifact, bucket):
    """The S3 key the registry redirects ``artifact``'s download to, so boto3 reads that object."""
    url = urljoin(registry.api, artifact["download_url"])
    response = registry.request("GET", url, params={"mode": "redirect"}, allow_redirects=False, ok=(302, 303, 307))
    location = urlparse(response.headers["Location"])
    path = unquote(location.path).lstrip("/")
    return path if location.hostname.startswith(f"{bucket}.") else path.removeprefix(f"{bucket}/")


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
        warm_version = uuid.uuid4().hex[:8]  # the database may hold an earlier run's
        registry.push(warm, model="warm-up", version=warm_version)
        registry.pull("warm-up", version=warm_version, dest=work / "warm-out")

        config = TransferConfig()  # boto3's defaults: 8 MiB parts, 10 threads
        names = ("up_boto3", "up_client", "up_parts", "down_boto3", "down_client")
        seconds = {name: [] for name in names}
        rounds = []  # (client first?, boto3 pull MiB/s, client pull MiB/s)

        def boto3_upload():
            s3.upload_file(str(source), bucket, "direct/model.bin", Config=config)

        def boto3_pull(key, sha256):
            # What the client does with what it receives: a file beside the target, hashed while
            # it arrives, checked, then renamed into place.
            target, partial = work / "direct.out", work / ".direct.out.part"
            body, digest = s3.get_object(Bucket=bucket, Key=key)["Body"], hashlib.sha256()
            with open(partial, "wb") as handle:
                for chunk in body.iter_chunks(READ_CHUNK):
                    handle.write(chunk)
                    digest.update(chunk)
            assert digest.hexdigest() == sha256
            os.replace(partial, target)
            target.unlink()

        def client_push(version):
            marks = {}

            def progress(done, total):
                if done == total and "parts" not in marks:
                    marks["parts"] = time.perf_counter()

            start = time.perf_counter()
            artifact = registry.push(source, model="bench", version=version, precision="INT8", progress=progress)
            seconds["up_parts"].append(marks["parts"] - start)
            assert artifact["size"] == size
            return artifact

        def client_pull(version):
            result = registry.pull("bench", version=version, dest=work / "pulled")
            assert result.downloaded and result.transferred == size
            result.path.unlink()

        for run in range(args.repeat):
            version = f"{run}-{uuid.uuid4().hex[:6]}"
            client_first = run % 2 == 1
            if client_first:
                elapsed, artifact = timed(lambda v=version: client_push(v))
                seconds["up_boto3"].append(timed(boto3_upload)[0])
            else:
                seconds["up_boto3"].append(timed(boto3_upload)[0])
                elapsed, artifact = timed(lambda v=version: client_push(v))
            seconds["up_client"].append(elapsed)
            s3.delete_object(Bucket=bucket, Key="direct/model.bin")

            key = object_key(registry, artifact, bucket)
            pulls = [
                ("down_boto3", lambda k=key, s=artifact["sha256"]: boto3_pull(k, s)),
                ("down_client", lambda v=version: client_pull(v)),
            ]
            for name, pull in reversed(pulls) if client_first else pulls:
                seconds[name].append(timed(pull)[0])
            boto3_rate, client_rate = (size / MiB / seconds[name][-1] for name in ("down_boto3", "down_client"))
            rounds.append((client_first, boto3_rate, client_rate))
            registry.delete_artifact(artifact["id"])

        def rate(values, pick):
            return f"{size / MiB / pick(values):.0f}"

        def row(name, boto3_key, client_key, target=""):
            boto3_times, client_times = seconds[boto3_key], seconds[client_key]
            return [
                name,
                rate(boto3_times, median),
                rate(boto3_times, min),
                rate(client_times, median),
                rate(client_times, min),
                f"{median(boto3_times) / median(client_times):.0%}",
                target,
            ]

        rows = [
            row("push", "up_boto3", "up_client", "85%"),
            row("  client up to its last part", "up_boto3", "up_parts"),
            row("pull", "down_boto3", "down_client", "85%"),
        ]
        print(
            f"\nClient: one {size // MiB} MiB file, {args.repeat} rounds (sides alternate going first),"
            f" S3 at {endpoint}{' (moto)' if moto else ''}\n"
        )
        headers = ["transfer", "boto3 median", "boto3 best", "client median", "client best", "client/boto3", "target"]
        print(table(headers, rows))
        print(
            "\nMiB/s; client/boto3 is the ratio of the medians."
            "\npush: boto3 upload_file (8 MiB parts, 10 threads) against the client's parts with their CRC32"
            " (the file's sha256 computed meanwhile) and `complete`, where the registry reads the object"
            " back for its sha256."
            "\npull: the same object each round; both write a file beside the target while hashing it,"
            " check the sha256 and rename it into place (boto3: one streamed get_object;"
            " client: resolve, the registry's redirect, then the presigned URL)."
            "\npull by round: "
            + ", ".join(
                f"{'client' if first else 'boto3'} first: boto3 {b:.0f} / client {c:.0f}" for first, b, c in rounds
            )
            + "\npush by round, seconds (boto3 / client, of which the client's `complete`): "
            + ", ".join(
                f"{b:.1f} / {c:.1f} ({c - p:.1f})"
                for b, c, p in zip(seconds["up_boto3"], seconds["up_client"], seconds["up_parts"], strict=True)
            )
        )
    finally:
        stop(server)
        stop(moto)


if __name__ == "__main__":
    main()
