"""Drop-in compatibility with clients of Intel's (removed) Model Registry microservice.

Intel's REST API is served at the root paths it used (``/health``, ``/models``, ``/models/{id}``,
``/models/{id}/files``) over the same data as ``/api/v1/``. One Intel "model" entry is one
artifact (a variant) together with the shared fields of its version. docs/intel-compatibility.md
lists what matches Intel and what is deliberately different.
"""
