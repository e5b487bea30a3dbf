"""Moving bytes: direct multipart uploads to S3 that resume, streamed uploads through the API,
and downloads that resume, verify and skip what is already current.

Upload state. A direct upload keeps its session (id, part size) in ``<cache>/uploads/<key>.json``,
where the key hashes the registry, the file's path, size and modification time and the
registration's metadata: the same push run again finds the session. Without that record (deleted,
another machine), the session is found by its Idempotency-Key, derived from the file's name and
size and the metadata. Either way the registry lists the parts S3 has received; those whose CRC32
(or ETag) matches the local part's are kept, and only the others are sent. The registry verifies
the whole file's sha256 at ``complete``, whatever the parts' checksums said.

Downloads. Bytes go to ``.<name>.<sha256 prefix>.part`` beside the target, so a partial file is
tied to the content it belongs to; a later pull continues it with ``Range`` (and ``If-Range``
with the registry's ETag, its sha256), then checks the whole file's sha256 and renames it over
the target. Nothing half-written or unverified ever carries the target's name.
"""

import base64
import hashlib
import itertools
import json
import os
import threading
import time
import zlib
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urljoin

import requests

from . import config
from .errors import (
    ChecksumMismatch,
    DirectUploadUnavailable,
    RegistryError,
    ServerUnavailable,
    ValidationError,
    from_response,
)

CHUNK = 1024 * 1024
HASH_CHUNK = 4 * 1024 * 1024
# requests (urllib3) receives a stream at half the speed in 1 MiB reads than in 4 MiB ones.
DOWNLOAD_CHUNK = 4 * 1024 * 1024
PART_ATTEMPTS = 3
SIGN_BATCH = 16  # parts whose URLs one request to the registry signs
COMPLETE_TIMEOUT = (10, 3600)  # the registry reads the whole object back to hash it


def file_sha256(path, progress=None):
    """The file's sha256, read into one reused buffer: no new bytes object per read."""
    digest = hashlib.sha256()
    buffer = bytearray(HASH_CHUNK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as handle:
        while count := handle.readinto(buffer):
            digest.update(view[:count])
            if progress:
                progress(count)
    return digest.hexdigest()


# --- uploads ---------------------------------------------------------------------------------


def push(registry, path, metadata, *, sha256=None, direct=None, progress=None):
    path = Path(path)
    size = path.stat().st_size
    if direct is not False and size > 0:
        try:
            return DirectUpload(registry, path, metadata, sha256=sha256, progress=progress).run()
        except DirectUploadUnavailable:
            if direct:
                raise
    return stream_upload(registry, path, metadata, sha256=sha256, progress=progress)


class _ProgressReader:
    """A file object that reports what has been read, with a length so requests sends
    Content-Length (the registry refuses a too-large file before reading it)."""

    def __init__(self, handle, size, progress):
        self.handle, self.size, self.progress, self.done = handle, size, progress, 0

    def __len__(self):
        return self.size

    def read(self, n=-1):
        data = self.handle.read(CHUNK if n is None or n < 0 else max(n, CHUNK))
        self.done += len(data)
        if self.progress and data:
            self.progress(self.done, self.size)
        return data


def stream_upload(registry, path, metadata, *, sha256=None, progress=None):
    """PUT the file as the body of ``/artifacts/upload/{filename}``: the registry hashes it on
    the way; a given ``sha256`` is compared after, and a mismatching artifact deleted."""
    query = {k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in metadata.items()}
    size = path.stat().st_size
    with open(path, "rb") as handle:
        artifact = registry._json(
            "PUT",
            f"artifacts/upload/{quote(path.name, safe='')}",
            params=query,
            data=_ProgressReader(handle, size, progress),
            headers={"Content-Type": "application/octet-stream"},
            timeout=COMPLETE_TIMEOUT,
        )
    if sha256 and artifact["sha256"] != sha256.lower():
        registry.delete_artifact(artifact["id"])
        raise ChecksumMismatch(
            f"The file that arrived has sha256 {artifact['sha256']}, not {sha256}; it was deleted.",
            code="checksum_mismatch",
        )
    return artifact


class DirectUpload:
    """One file sent straight to S3 through the registry's ``/uploads/`` sessions.

    Each part goes with its CRC32, which S3 checks as the part arrives; the registry signs each
    part's URL for it (``part-urls``), a batch of parts at a time. The file's sha256 is computed in
    a thread of its own while the parts go out, and given at ``complete``, where the registry
    compares it with the one it computes from what arrived.
    """

    def __init__(self, registry, path, metadata, *, sha256=None, progress=None):
        self.registry, self.path, self.metadata = registry, path, metadata
        self.expected_sha256 = sha256.lower() if sha256 else None
        self.progress = progress
        stat = path.stat()
        self.size = stat.st_size
        key = json.dumps([registry.url, str(path.resolve()), stat.st_size, stat.st_mtime_ns, metadata], sort_keys=True)
        self.state_path = config.cache_dir() / "uploads" / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".json")
        self.state = None  # {"session": the session as created; "sha256": the sha256 it was opened with}
        self.held = {}  # part number -> the part S3 holds, as listed: to check against the local bytes
        self.etags = {}  # part number -> ETag of the parts S3 holds with this file's bytes
        self.checksums = {}  # part number -> CRC32 of the parts sent or checked
        self.hasher = None

    # state file
    def load_state(self):
        try:
            return json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return None

    def save_state(self):
        self.state_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        config.write_private(self.state_path, json.dumps(self.state))

    def forget(self):
        self.state_path.unlink(missing_ok=True)

    def resume_or_start(self):
        """Take up the session this file was being sent to, or open one. Returns the artifact
        instead when that session has completed (before the client heard about it)."""
        state = self.load_state()
        if state and self.expected_sha256 and state.get("sha256") != self.expected_sha256:
            self.abort(state)  # the caller now expects other bytes: that session is of no use
            state = None
        if state:
            artifact = self.adopt(state["session"], ours=True)
            if artifact is not None or self.state is not None:
                return artifact
        self.forget()
        body = {**self.metadata, "filename": self.path.name, "size": self.size, "checksum_algorithm": "CRC32"}
        if self.expected_sha256:
            body["sha256"] = self.expected_sha256
        data = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        for attempt in itertools.count():
            session, replayed = self.open_session(data, attempt)
            if not replayed:
                self.state = {"session": session, "sha256": self.expected_sha256 or ""}
                break
            if session is None:
                continue  # an earlier try of this push was refused: try again under the next key
            self.adopt(session)
            if self.state is not None:
                break
            # That session has ended: the next key opens a new one.
        self.save_state()
        return None

    def open_session(self, data, attempt):
        """``POST /uploads/`` with ``data`` (the file's size, name and metadata as canonical
        JSON) under an Idempotency-Key derived from it and ``attempt``, so the same push from any
        machine, with or without a local record, gets the same session back. Which of the parts
        S3 holds are this file's is checked part by part (``check_held``).

        Returns the session and whether the registry replayed it; a replayed refusal returns
        no session, and the caller moves on to the next attempt's key: the refusal was an
        earlier try's, the registry may accept this one.
        """
        key = hashlib.sha256(data + f"\0{attempt}".encode()).hexdigest()
        headers = {"Content-Type": "application/json", "Idempotency-Key": f"push-{key}"}
        for retry in range(1, PART_ATTEMPTS + 1):
            response = self.registry.request("POST", "uploads/", ok=range(200, 600), data=data, headers=headers)
            replayed = response.headers.get("Idempotent-Replayed") == "true"
            if response.status_code < 300:
                return response.json(), replayed
            if replayed and response.status_code < 500:
                return None, True
            error = from_response(response)
            # The same push, elsewhere, is opening this session right now.
            if error.code != "idempotency_key_in_progress" or retry == PART_ATTEMPTS:
                raise error
            time.sleep(retry)
        raise AssertionError("unreachable")

    def adopt(self, session, *, ours=False):
        """Look ``session`` up: when it is still pending, make it this upload's (``self.state``)
        with the parts S3 already holds. When it completed and is ``ours`` (this machine's
        record: the answer to ``complete`` was lost), return its artifact; a session found by its
        key that completed was another push of the same file, and pushing again is refused
        as any push to a taken variant is."""
        try:
            current = self.registry._json("GET", f"uploads/{session['id']}/")
        except RegistryError as exc:
            if exc.status not in (403, 404):
                raise
            return None
        if ours and current["state"] == "completed" and current.get("artifact"):
            return self.registry.artifact(current["artifact"])
        if current["state"] != "pending":
            return None
        self.state = {"session": session, "sha256": current.get("sha256") or ""}
        try:
            self.held = self.received_parts()
        except RegistryError as exc:
            if exc.status != 409:  # S3 no longer has the upload: open another
                raise
            self.state = None
        return None

    def received_parts(self):
        """The parts S3 holds whole, as the registry lists them: what was sent before, from this
        machine or another, whatever a local record says. Whether they hold this file's bytes is
        for ``check_held``."""
        listed = self.registry._json("GET", f"uploads/{self.state['session']['id']}/parts/")["parts"]
        count = len(self.state["session"]["parts"])
        return {
            p["part_number"]: p
            for p in listed
            if 1 <= p["part_number"] <= count and p["size"] == self.part_range(p["part_number"])[1]
        }

    def check_held(self, fd):
        """Keep the parts S3 holds that have this file's bytes: the CRC32 S3 lists for the part,
        or else its ETag (the MD5 of the part for unencrypted and SSE-S3 objects), against the local
        part's. A part that differs, or that cannot be checked, is sent again."""
        for number, part in sorted(self.held.items()):
            start, length = self.part_range(number)
            data = os.pread(fd, length, start)
            checksum = crc32(data)
            if part.get("checksum_crc32"):
                same = part["checksum_crc32"] == checksum
            else:
                same = part["etag"].strip('"') == hashlib.md5(data, usedforsecurity=False).hexdigest()
            if same:
                self.etags[number], self.checksums[number] = part["etag"], checksum
        self.held = {}

    def abort(self, state):
        try:
            self.registry.request("DELETE", f"uploads/{state['session']['id']}/")
        except RegistryError:
            pass  # prune_uploads aborts what is left

    def run(self):
        if not self.expected_sha256:
            self.hasher = Hasher(self.path)
        try:
            artifact = self.resume_or_start()
            if artifact is not None:
                self.forget()
                return artifact
            self.send_parts()
            try:
                return self.complete()
            except ValidationError as exc:
                if "parts" not in exc.fields:
                    raise
            # S3 refused the list: ask the registry what S3 holds, send the rest, once more.
            self.etags, self.held = {}, self.received_parts()
            self.send_parts()
            return self.complete()
        finally:
            if self.hasher:
                self.hasher.stop()

    @property
    def with_checksums(self):
        """Whether the session takes parts with their CRC32 (a registry that does not know part
        checksums opens sessions without, their URLs given with them)."""
        return self.state["session"].get("checksum_algorithm") == "CRC32"

    def part_range(self, number):
        part_size = self.state["session"]["part_size"]
        start = (number - 1) * part_size
        return start, min(part_size, self.size - start)

    def send_parts(self):
        fd = os.open(self.path, os.O_RDONLY)
        try:
            self.check_held(fd)
            self._send_parts(fd)
        finally:
            os.close(fd)

    def _send_parts(self, fd):
        etags, parallel = self.etags, self.registry.parallel
        todo = [p for p in self.state["session"]["parts"] if p["part_number"] not in etags]
        done = sum(self.part_range(number)[1] for number in etags)
        if self.progress:
            self.progress(done, self.size)
        if not todo:
            return
        pool = ThreadPoolExecutor(max_workers=max(1, min(parallel, len(todo))))
        pending, ready, queue = set(), deque(), iter(todo)
        try:
            # Keep at most `parallel` parts in flight (memory stays at that many parts), and the
            # URLs of the next ones signed while they go, a batch a request.
            batch = max(parallel, SIGN_BATCH)
            while True:
                if len(ready) < parallel:
                    ready.extend(self.sign(fd, list(itertools.islice(queue, batch))))
                while ready and len(pending) < parallel:
                    pending.add(pool.submit(self.send_part, fd, *ready.popleft()))
                if not pending:
                    break
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    number, length, etag = future.result()
                    etags[number] = etag
                    done += length
                    if self.progress:
                        self.progress(done, self.size)
        finally:
            for future in pending:  # interrupted: what is not running yet is not sent
                future.cancel()
            pool.shutdown(wait=True)

    def sign(self, fd, parts):
        """``(part, url, checksum)`` for each of ``parts``: in a session with part checksums, the
        CRC32 of each and the URL the registry signs for it, in one request."""
        if not parts:
            return []
        if not self.with_checksums:
            return [(part, part["url"], None) for part in parts]
        numbers = [part["part_number"] for part in parts]
        for number in numbers:
            start, length = self.part_range(number)
            self.checksums[number] = crc32(os.pread(fd, length, start))
        body = {"parts": [{"part_number": n, "checksum_crc32": self.checksums[n]} for n in numbers]}
        signed = self.registry._json("POST", f"uploads/{self.state['session']['id']}/part-urls/", json=body)["parts"]
        urls = {p["part_number"]: p["url"] for p in signed}
        return [(part, urls[n], self.checksums[n]) for part, n in zip(parts, numbers, strict=True)]

    def send_part(self, fd, part, url, checksum):
        number = part["part_number"]
        start, length = self.part_range(number)
        data = os.pread(fd, length, start)
        headers = {"x-amz-checksum-crc32": checksum} if checksum else None
        for attempt in range(1, PART_ATTEMPTS + 1):
            try:
                response = self.registry.storage_session.put(
                    url, data=data, headers=headers, timeout=self.registry.timeout
                )
            except requests.RequestException as exc:
                if attempt == PART_ATTEMPTS:
                    raise ServerUnavailable(f"Could not send part {number} to storage: {exc}") from exc
            else:
                if response.status_code == 200 and response.headers.get("ETag"):
                    return number, length, response.headers["ETag"]
                if response.status_code < 500 or attempt == PART_ATTEMPTS:
                    raise RegistryError(
                        f"Storage refused part {number}: {response.status_code} {response.text[:200]}",
                        status=response.status_code,
                        code="storage_error",
                    )
            time.sleep(attempt)
        raise AssertionError("unreachable")

    def complete(self):
        session_id = self.state["session"]["id"]
        parts = []
        for number, etag in sorted(self.etags.items()):
            part = {"part_number": number, "etag": etag}
            if self.with_checksums:
                part["checksum_crc32"] = self.checksums[number]
            parts.append(part)
        sha256 = self.expected_sha256 or self.hasher.result()
        try:
            artifact = self.registry._json(
                "POST",
                f"uploads/{session_id}/complete/",
                json={"parts": parts, "sha256": sha256},
                timeout=COMPLETE_TIMEOUT,
            )
        except ValidationError as exc:
            if "parts" in exc.fields:
                raise  # the upload stays open: run() sends the parts again
            self.forget()  # size or sha256 refused: the registry deleted the object
            if "sha256" in exc.fields:
                raise ChecksumMismatch(
                    exc.message, status=exc.status, code=exc.code, fields=exc.fields, extra=exc.extra
                ) from exc
            raise
        except RegistryError as exc:
            if exc.status in (404, 409):
                self.forget()
            raise
        self.forget()
        if artifact["sha256"] != sha256:  # a registry that does not compare the sha256 given at complete
            self.registry.delete_artifact(artifact["id"])
            raise ChecksumMismatch(
                f"The file that arrived has sha256 {artifact['sha256']}, not {sha256}; it was deleted.",
                code="checksum_mismatch",
            )
        return artifact


def crc32(data):
    """The CRC32 of ``data`` as S3 writes it: its 4 bytes, big-endian, in base64."""
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


class Hasher:
    """The sha256 of a file, computed in a thread of its own (reading and hashing release the
    GIL), so it overlaps with sending the parts instead of being a pass of its own before them."""

    class Stopped(Exception):
        pass

    def __init__(self, path):
        self.path, self.stopped = path, threading.Event()
        self.sha256, self.error = None, None
        self.thread = threading.Thread(target=self._run, name="sha256", daemon=True)
        self.thread.start()

    def _run(self):
        try:
            self.sha256 = file_sha256(self.path, progress=self._unless_stopped)
        except (OSError, self.Stopped) as exc:
            self.error = exc

    def _unless_stopped(self, count):
        if self.stopped.is_set():
            raise self.Stopped()

    def result(self):
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.sha256

    def stop(self):
        self.stopped.set()


# --- downloads -------------------------------------------------------------------------------


@dataclass
class PullResult:
    path: Path
    artifact: dict
    downloaded: bool  # False when the local copy was already current
    transferred: int  # bytes received in this call
    resumed_from: int  # bytes a partial file already had


def safe_filename(artifact):
    name = Path(artifact.get("original_filename") or "").name
    if name in ("", ".", ".."):
        name = f"{artifact['registered_model']}-{artifact['version']}.bin"
    return name


def download(registry, artifact, dest, *, filename=None, progress=None, mode="redirect"):
    try:
        return _download(registry, artifact, dest, filename=filename, progress=progress, mode=mode)
    except ChecksumMismatch as exc:
        if not exc.extra.get("resumed"):
            raise
    # The partial file kept from before was not what the server has now: start over once.
    return _download(registry, artifact, dest, filename=filename, progress=progress, mode=mode)


def _download(registry, artifact, dest, *, filename=None, progress=None, mode="redirect"):
    target = Path(dest) / (filename or safe_filename(artifact))
    target.parent.mkdir(parents=True, exist_ok=True)
    size, sha256 = artifact["size"], artifact["sha256"]
    if target.is_file() and target.stat().st_size == size and file_sha256(target) == sha256:
        if progress:
            progress(size, size)
        return PullResult(target, artifact, downloaded=False, transferred=0, resumed_from=0)

    partial = target.with_name(f".{target.name}.{sha256[:16]}.part")
    offset = partial.stat().st_size if partial.exists() else 0
    if offset > size:
        partial.unlink()
        offset = 0
    digest = hashlib.sha256()
    if offset:
        with open(partial, "rb") as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
    resumed_from, transferred = offset, 0
    if offset < size:
        response = _open_download(registry, artifact, offset, mode)
        with response:
            if response.status_code == 200 and offset:  # the server sent the whole file again
                offset, digest = 0, hashlib.sha256()
            with open(partial, "r+b" if offset else "wb") as handle, ThreadPoolExecutor(1) as writer:
                if offset:
                    # Only when continuing: truncating a fresh file makes ext4 (auto_da_alloc)
                    # flush it to disk when it is closed, which the pull would wait for.
                    handle.seek(offset)
                    handle.truncate()
                if progress:
                    progress(offset, size)

                def store(chunk):
                    handle.write(chunk)
                    digest.update(chunk)

                # One thread writes and hashes chunk n while this one receives chunk n+1 (both
                # release the GIL); waiting for n before handing over n+1 keeps the order and
                # holds at most two chunks. No fsync: a file torn by a crash fails the sha256
                # check the next pull makes before trusting it.
                stored = None
                for chunk in response.iter_content(DOWNLOAD_CHUNK):
                    if stored is not None:
                        stored.result()
                    stored = writer.submit(store, chunk)
                    offset += len(chunk)
                    transferred += len(chunk)
                    if progress:
                        progress(offset, size)
                if stored is not None:
                    stored.result()
    if offset != size or digest.hexdigest() != sha256:
        partial.unlink(missing_ok=True)
        raise ChecksumMismatch(
            f"The downloaded file has {offset} bytes and sha256 {digest.hexdigest()}, "
            f"not {size} bytes and {sha256}; it was not kept.",
            code="checksum_mismatch",
            extra={"resumed": resumed_from > 0},
        )
    os.replace(partial, target)
    return PullResult(target, artifact, downloaded=True, transferred=transferred, resumed_from=resumed_from)


def _open_download(registry, artifact, offset, mode):
    """The streamed response for the artifact's bytes from ``offset``: from the registry, or
    from S3 when the registry redirects (the token is not sent there)."""
    url = urljoin(registry.api, artifact["download_url"])
    headers = {"Accept": "*/*"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        headers["If-Range"] = f'"{artifact["sha256"]}"'
    response = registry.request(
        "GET",
        url,
        params={"mode": mode},
        headers=headers,
        stream=True,
        allow_redirects=False,
        ok=(200, 206, 301, 302, 303, 307, 308),
    )
    if response.is_redirect:
        location = urljoin(url, response.headers["Location"])
        response.close()
        headers.pop("If-Range", None)  # S3's ETag is its own, not the sha256; the key never changes
        try:
            response = registry.storage_session.get(location, headers=headers, stream=True, timeout=registry.timeout)
        except requests.RequestException as exc:
            raise ServerUnavailable(f"Could not reach storage: {exc}") from exc
        if response.status_code not in (200, 206):
            raise from_response(response)
    if response.status_code == 206 and not response.headers.get("Content-Range", "").startswith(f"bytes {offset}-"):
        response.close()
        raise RegistryError("The server answered a different range than asked for.", status=206, code="bad_range")
    return response
