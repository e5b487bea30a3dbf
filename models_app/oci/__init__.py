"""The OCI distribution API at /v2/: registered models served as OCI artifacts (docs/oci.md)."""
