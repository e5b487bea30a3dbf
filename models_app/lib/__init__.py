"""Helpers without models, shared by the registry's faces and core."""
