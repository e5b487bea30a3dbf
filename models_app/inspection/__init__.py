"""What a model file is, read from the file itself: OpenVINO IR, ONNX, a zip holding either, or a
pickle-based file that is labelled and never opened.

Pure functions over a binary file object; nothing here touches the database or the storage (the
runner in ``models_app.inspection.service`` does). Nothing is executed or unpickled, every read is
bounded: a hostile or oversized file raises ``InspectionError`` with a reason a user can read.
"""

from .common import InspectionError, Limits, NotApplicable
from .detect import inspect_file

__all__ = ["InspectionError", "Limits", "NotApplicable", "inspect_file"]
