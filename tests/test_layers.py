"""The layers stay apart: the core knows no Geti, object storage is reached through one module,
and nothing below the faces imports the API face."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imports(package):
    """(module path, imported module name) for every import under ``package``, relative imports
    resolved to absolute names."""
    for path in sorted((ROOT / package).rglob("*.py")):
        if "migrations" in path.parts:
            continue
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        if path.name == "__init__.py":
            module = module.rsplit(".", 1)[0] + "._"
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield path.relative_to(ROOT).as_posix(), alias.name
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = module.rsplit(".", node.level)[0]
                    base = f"{parent}.{base}" if base else parent
                for alias in node.names:
                    yield path.relative_to(ROOT).as_posix(), f"{base}.{alias.name}" if base else alias.name


def test_the_core_imports_nothing_of_the_geti_integration():
    assert [(path, name) for path, name in imports("models_app") if name.startswith("geti_integration")] == []


def test_only_the_storage_module_imports_boto3_or_botocore():
    offenders = [
        (path, name)
        for package in ("models_app", "geti_integration", "registry_project")
        for path, name in imports(package)
        if name.split(".")[0] in ("boto3", "botocore")
        and not path.startswith("models_app/storage/")
        and path != "registry_project/settings.py"  # builds the storage's OPTIONS (its botocore Config)
    ]
    assert offenders == []


def test_nothing_below_the_faces_imports_the_api():
    offenders = [
        (path, name)
        for path, name in imports("models_app")
        if name.startswith("models_app.api") and not path.startswith("models_app/api/")
    ]
    assert offenders == []


def test_no_call_site_uses_private_django_storages_methods():
    offenders = [
        path.relative_to(ROOT).as_posix()
        for package in ("models_app", "geti_integration")
        for path in (ROOT / package).rglob("*.py")
        if "_normalize_name" in path.read_text() or "_create_session" in path.read_text()
    ]
    assert offenders == []


def test_the_core_below_the_faces_does_not_depend_on_drf():
    core = [
        "models_app/errors.py",
        "models_app/services.py",
        "models_app/reads.py",
        "models_app/downloads.py",
        "models_app/direct_uploads.py",
        "models_app/entries.py",
        "models_app/models.py",
        "models_app/storage/__init__.py",
        "models_app/storage/multipart.py",
    ]
    offenders = [
        (path, name) for path, name in imports("models_app") if path in core and name.startswith("rest_framework")
    ]
    assert offenders == []
