"""Which kind of model file this is, from its first bytes and name, and the inspector for it."""

import posixpath
import zipfile

from .common import InspectionError, Limits, NotApplicable
from .onnx_model import inspect_onnx
from .openvino_ir import NotAnIR, inspect_ir

# Formats whose loading runs a pickle (arbitrary code): labelled, never opened.
PICKLE_SUFFIXES = (".pkl", ".pickle", ".pt", ".pth", ".ckpt", ".joblib")
PICKLE_REASON = "A pickle-based file is never opened: loading a pickle can run arbitrary code."


def _is_pickle_stream(head):
    # Pickle protocols 2 to 5 start with PROTO (0x80) and the protocol number.
    return len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def _looks_like_onnx(head):
    # Serialisers write ModelProto fields in field order, so a model starts with ir_version (field
    # 1, a varint): the byte 0x08 and a small number.
    return len(head) >= 2 and head[0] == 0x08 and 1 <= head[1] <= 30


def _is_xml(head):
    return head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<")


def inspect_file(fileobj, filename, size, limits=None):
    """Inspect one model file. ``fileobj`` is a seekable binary file of ``size`` bytes.

    Returns the report (a JSON-able dict whose ``format`` is ``openvino`` or ``onnx``); raises
    NotApplicable for files that are not inspected (pickles, other formats) and InspectionError
    for files that are malformed, hostile or over a limit.
    """
    limits = limits or Limits()
    name = (filename or "").lower()
    if name.endswith(PICKLE_SUFFIXES):
        raise NotApplicable(PICKLE_REASON, kind="pickle")
    head = fileobj.read(64)
    fileobj.seek(0)
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _inspect_zip(fileobj, limits)
    if _is_pickle_stream(head):
        raise NotApplicable(PICKLE_REASON, kind="pickle")
    if _is_xml(head):
        try:
            return inspect_ir(fileobj, limits)
        except NotAnIR as exc:
            raise NotApplicable(str(exc)) from exc
    if name.endswith(".onnx"):
        return inspect_onnx(fileobj, size, limits)
    if _looks_like_onnx(head):
        try:
            return inspect_onnx(fileobj, size, limits)
        except InspectionError:
            pass  # not named .onnx and not parseable as ONNX: some other format
    raise NotApplicable("Not an OpenVINO IR, an ONNX model or a zip holding one; nothing to inspect.")


def _inspect_zip(fileobj, limits):
    try:
        archive = zipfile.ZipFile(fileobj)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        raise InspectionError(f"The zip file is corrupt: {exc}") from exc
    with archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        if len(infos) > limits.zip_members:
            raise InspectionError(f"The zip holds {len(infos)} files, more than the {limits.zip_members} inspected.")
        listing = {
            "container": "zip",
            "file_count": len(infos),
            "files": [{"name": i.filename, "size": i.file_size} for i in infos[: limits.listed_files]],
        }
        names = {i.filename for i in infos}
        if any(posixpath.basename(n) == "data.pkl" or n.lower().endswith(PICKLE_SUFFIXES) for n in names):
            raise NotApplicable(PICKLE_REASON, kind="pickle", details=listing)
        irs = [i for i in infos if i.filename.lower().endswith(".xml")]
        # An .xml beside its .bin is a model graph; other .xml files (configs) come after.
        irs.sort(key=lambda i: (i.filename[:-4] + ".bin" not in names, i.filename))
        onnxs = [i for i in infos if i.filename.lower().endswith(".onnx")]
        models = [i.filename for i in irs + onnxs]
        for info in irs + onnxs:
            try:
                report = _inspect_member(archive, info, names, limits)
            except NotAnIR:
                continue  # an .xml that is some other file (a configuration): try the next one
            except InspectionError as exc:
                raise InspectionError(f"{info.filename}: {exc}") from exc
            return {**report, **listing, "model_file": info.filename, "model_files": models[:100]}
        raise NotApplicable("The zip holds no OpenVINO IR (.xml) or ONNX model.", details=listing)


def _inspect_member(archive, info, names, limits):
    """Inspect one member, after checking what the zip declares about it (a zip bomb declares a
    huge size or an extreme ratio); the reads themselves are bounded too, whatever it declares."""
    is_onnx = info.filename.lower().endswith(".onnx")
    limit = limits.file_bytes if is_onnx else limits.graph_bytes
    if info.file_size > limit:
        raise InspectionError(f"It is {info.file_size} bytes uncompressed, over the inspection limit of {limit}.")
    if info.file_size > 1024 * 1024 and info.file_size > limits.zip_ratio * max(info.compress_size, 1):
        raise InspectionError(
            f"It declares a compression ratio over {limits.zip_ratio}:1 ({info.compress_size} -> "
            f"{info.file_size} bytes); refused as a possible zip bomb."
        )
    try:
        with archive.open(info) as member:
            if not is_onnx:
                return inspect_ir(member, limits)
            report = inspect_onnx(member, info.file_size, limits)
    except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, EOFError) as exc:
        raise InspectionError(f"It could not be read from the zip: {exc}") from exc
    folder = posixpath.dirname(info.filename)
    missing = [loc for loc in report["external_data"] if posixpath.join(folder, loc) not in names]
    if missing:
        report["external_data_missing"] = missing
    return report
