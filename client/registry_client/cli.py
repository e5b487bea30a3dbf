"""``registry``: the command line. Exit codes: 0 done, 1 failed (one line on stderr), 2 usage."""

import json
import sys

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from . import config
from .client import Registry
from .errors import RegistryError

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

ALIAS_COLUMNS = ["name", "version", "protected", "updated_by", "updated_at"]
ARTIFACT_COLUMNS = ["id", "registered_model", "version", "precision", "target_device", "format", "score", "size"]


class Context:
    def __init__(self, url, token, quiet):
        self.url, self.token, self.quiet = url, token, quiet
        self._registry = None

    @property
    def registry(self):
        if self._registry is None:
            self._registry = Registry(self.url, self.token)
        return self._registry

    def progress(self, transfer=True):
        """A rich progress bar on stderr, or a silent one when stderr is no terminal or --quiet."""
        columns = [TextColumn("{task.description}"), BarColumn(), TaskProgressColumn()]
        if transfer:
            columns += [DownloadColumn(), TransferSpeedColumn()]
        columns.append(TimeRemainingColumn())
        return Progress(*columns, console=err, disable=self.quiet or not err.is_terminal, transient=False)


pass_ctx = click.make_pass_decorator(Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--url", envvar="REGISTRY_URL", help="The registry, e.g. http://127.0.0.1:8000 (env REGISTRY_URL).")
@click.option("--token", envvar="REGISTRY_TOKEN", help="API token (env REGISTRY_TOKEN).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@click.version_option(package_name="model-registry-client")
@click.pass_context
def cli(ctx, url, token, quiet):
    """Push, find and pull models in a Model Registry."""
    ctx.obj = Context(url, token, quiet)


def main():
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        err.print("Aborted.")
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except RegistryError as exc:
        where = f" ({exc.status} {exc.code})" if exc.status else f" ({exc.code})" if exc.code else ""
        err.print(f"error: {exc}{where}".replace("\n", " "), markup=False, highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("Interrupted; run the same command again to resume.")
        sys.exit(1)
    except OSError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        sys.exit(1)
    sys.exit(0)


def emit_json(data):
    click.echo(json.dumps(data, indent=2, default=str))


def table(rows, columns, title=None):
    view = Table(title=title)
    for column in columns:
        view.add_column(column, overflow="fold")
    for row in rows:
        view.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    out.print(view)


def parse_ref(ref):
    """NAME, NAME:VERSION or NAME@ALIAS."""
    if "@" in ref:
        name, alias = ref.split("@", 1)
        return name, None, alias
    if ":" in ref:
        name, version = ref.split(":", 1)
        return name, version, None
    return ref, None, None


def parse_filters(pairs):
    filters = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE.", param_hint="--filter")
        filters.setdefault(key, []).append(value)
    return {k: v[0] if len(v) == 1 else v for k, v in filters.items()}


# --- login -----------------------------------------------------------------------------------


@cli.command()
@click.option("--url", "login_url", help="The registry's address.")
@click.option("--token", "login_token", help="An API token (asked for when missing).")
@pass_ctx
def login(ctx, login_url, login_token):
    """Check a token against the registry and store it in the user's config file (mode 0600)."""
    url = login_url or ctx.url or click.prompt("Registry URL", default=config.settings()[0])
    token = login_token or ctx.token or click.prompt("API token", hide_input=True)
    registry = Registry(url, token)
    next(registry.models(limit=1), None)  # a refused token raises AuthenticationError here
    path = config.save(registry.url, token)
    err.print(f"Logged in to {registry.url}; saved in {path}.")


# --- reads -----------------------------------------------------------------------------------


def artifact_filter_options(command):
    options = [
        click.option("--version", "version_label", help="Version label."),
        click.option("--precision", help="INT8, FP16, ..."),
        click.option("--device", "target_device", help="Target device: CPU, GPU, NPU, ..."),
        click.option("--format", "format_", help="openvino, onnx, ..."),
        click.option("--category"),
        click.option("--label", help="Has a label containing this."),
        click.option("--tag", multiple=True, help="key or key:value (repeatable)."),
        click.option("--ordering", help="e.g. -score, size, -created_at."),
        click.option("--filter", "extra", multiple=True, help="Any other API filter as KEY=VALUE."),
        click.option("--limit", type=int, help="At most this many rows."),
        click.option("--json", "as_json", is_flag=True, help="JSON instead of a table."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def artifact_filters(version_label, precision, target_device, format_, category, label, tag, ordering, extra):
    filters = {"version": version_label, "precision": precision, "target_device": target_device}
    filters.update(format=format_, category=category, label=label, tag=list(tag) or None, ordering=ordering)
    filters.update(parse_filters(extra))
    return {k: v for k, v in filters.items() if v is not None}


@cli.command("ls")
@click.argument("model", required=False)
@artifact_filter_options
@pass_ctx
def ls(ctx, model, limit, as_json, **options):
    """List registered models, or the variants of MODEL (with filters)."""
    filters = artifact_filters(**options)
    if model is None and not filters:
        rows = list(ctx.registry.models(limit=limit))
        columns = ["name", "version_count", "latest_version_at", "description"]
        return emit_json(rows) if as_json else table(rows, columns)
    if model is not None:
        filters["registered_model"] = model
    rows = list(ctx.registry.artifacts(limit=limit, **filters))
    return emit_json(rows) if as_json else table(rows, ARTIFACT_COLUMNS)


@cli.command()
@click.argument("text")
@artifact_filter_options
@pass_ctx
def search(ctx, text, limit, as_json, **options):
    """Variants whose model, version, description, architecture, ... contain TEXT."""
    rows = list(ctx.registry.search(text, limit=limit, **artifact_filters(**options)))
    return emit_json(rows) if as_json else table(rows, ARTIFACT_COLUMNS)


@cli.command()
@click.argument("ref", metavar="NAME[:VERSION]")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def show(ctx, ref, as_json):
    """A registered model (its versions and aliases) or one version (its variants)."""
    registry = ctx.registry
    name, version, alias = parse_ref(ref)
    if alias:
        version = registry.alias(name, alias)["version"]
    if version is None:
        data = {
            "model": registry.model(name),
            "versions": list(registry.versions(name, include_archived=True)),
            "aliases": list(registry.aliases(name)),
        }
        if as_json:
            return emit_json(data)
        model = data["model"]
        out.print(f"[bold]{model['name']}[/bold]  {model.get('description') or ''}", highlight=False)
        table(data["versions"], ["version", "status", "artifact_count", "total_size", "created_at"], title="Versions")
        table(data["aliases"], ALIAS_COLUMNS, title="Aliases")
        return None
    data = {"version": registry.version(name, version), "variants": registry.variants(name, version)}
    if as_json:
        return emit_json(data)
    info = data["version"]
    out.print(f"[bold]{name}:{info['version']}[/bold]  {info.get('status', '')}  {info.get('description') or ''}")
    table(data["variants"], ARTIFACT_COLUMNS + ["sha256"], title="Variants")
    return None


@cli.command()
@click.argument("refs", nargs=-1, required=True, metavar="NAME:VERSION...")
@pass_ctx
def compare(ctx, refs):
    """Compare 2 to 20 versions field by field (JSON)."""
    ids = []
    for ref in refs:
        name, version, alias = parse_ref(ref)
        if alias:
            version = ctx.registry.alias(name, alias)["version"]
        if version is None:
            raise click.BadParameter(f"{ref!r} names no version.", param_hint="REFS")
        ids.append(ctx.registry.version(name, version)["id"])
    emit_json(ctx.registry.compare(versions=ids))


# --- transfers -------------------------------------------------------------------------------


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--model", "-m", required=True, help="Registered model name (created when new).")
@click.option("--version", "-v", "version_label", required=True, help="Version label (created when new).")
@click.option("--precision", help="FP32 (default), FP16, INT8, ...")
@click.option("--device", "target_device", help="CPU (default), GPU, NPU, AUTO, ...")
@click.option("--format", "format_", help="openvino (default), onnx, ...")
@click.option("--score", type=float)
@click.option("--label", "labels", multiple=True, help="A label (repeatable).")
@click.option("--category")
@click.option("--architecture")
@click.option("--description")
@click.option("--field", "extra", multiple=True, help="Another registration field as KEY=VALUE.")
@click.option("--sha256", help="The sha256 the file must have; the registry refuses a mismatch.")
@click.option("--direct/--no-direct", default=None, help="Force or avoid the direct upload to S3.")
@click.option("--parallel", type=click.IntRange(1, 64), default=8, show_default=True, help="Parts in flight.")
@click.option("--json", "as_json", is_flag=True, help="Print the artifact as JSON.")
@pass_ctx
def push(
    ctx,
    file,
    model,
    version_label,
    precision,
    target_device,
    format_,
    score,
    labels,
    category,
    architecture,
    description,
    extra,
    sha256,
    direct,
    parallel,
    as_json,
):
    """Register FILE as a variant; an interrupted upload resumes when run again."""
    fields = {"category": category, "architecture": architecture, "description": description}
    fields.update(parse_filters(extra))
    registry = ctx.registry
    registry.parallel = parallel
    with ctx.progress() as bar:
        task = bar.add_task(f"push {click.format_filename(file, shorten=True)}", total=None)
        artifact = registry.push(
            file,
            model=model,
            version=version_label,
            precision=precision,
            target_device=target_device,
            format=format_,
            score=score,
            labels=list(labels) or None,
            sha256=sha256,
            direct=direct,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
            **{k: v for k, v in fields.items() if v is not None},
        )
    if as_json:
        return emit_json(artifact)
    click.echo(
        f"{artifact['registered_model']}:{artifact['version']} {artifact['precision']} "
        f"{artifact['target_device']} {artifact['format']} {artifact['id']} sha256:{artifact['sha256']}"
    )
    return None


@cli.command()
@click.argument("ref", metavar="NAME[@ALIAS|:VERSION]")
@click.option("--device", "target_device", help="The device it will run on.")
@click.option("--precision", help="Acceptable precisions, best first: INT8,FP16")
@click.option("--format", "format_")
@click.option("--max-size", type=int, help="Largest acceptable file, in bytes.")
@click.option("-o", "--output", default=".", type=click.Path(file_okay=False), help="Folder to write to.")
@click.option(
    "--mode",
    type=click.Choice(["redirect", "proxy"]),
    default="redirect",
    show_default=True,
    help="redirect: bytes straight from S3 when the registry offers it.",
)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def pull(ctx, ref, target_device, precision, format_, max_size, output, mode, as_json):
    """Download the best variant; skips a current copy, resumes a partial one, checks the sha256."""
    name, version, alias = parse_ref(ref)
    with ctx.progress() as bar:
        task = bar.add_task(f"pull {ref}", total=None)
        result = ctx.registry.pull(
            name,
            alias=alias,
            version=version,
            target_device=target_device,
            precision=precision,
            format=format_,
            max_size=max_size,
            dest=output,
            mode=mode,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    if as_json:
        return emit_json(
            {
                "path": str(result.path),
                "downloaded": result.downloaded,
                "transferred": result.transferred,
                "artifact": result.artifact,
            }
        )
    state = "downloaded" if result.downloaded else "up to date"
    click.echo(f"{result.path} ({state}, sha256:{result.artifact['sha256']})")
    return None


# --- aliases, deletes ------------------------------------------------------------------------


@cli.group()
def alias():
    """Set, roll back and read the history of aliases (production, staging, ...)."""


def echo_alias(model, alias):
    click.echo(f"{model}@{alias['name']} -> {alias['version']}")


@alias.command("set")
@click.argument("model")
@click.argument("name")
@click.argument("version")
@click.option("--reason", default="")
@pass_ctx
def alias_set(ctx, model, name, version, reason):
    """Point alias NAME of MODEL at VERSION (creates or moves it)."""
    echo_alias(model, ctx.registry.set_alias(model, name, version, reason=reason))


@alias.command("rollback")
@click.argument("model")
@click.argument("name")
@click.option("--reason", default="")
@pass_ctx
def alias_rollback(ctx, model, name, reason):
    """Move alias NAME back to its previous version."""
    echo_alias(model, ctx.registry.rollback_alias(model, name, reason=reason))


@alias.command("history")
@click.argument("model")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def alias_history(ctx, model, name, as_json):
    """Every move of alias NAME, newest first."""
    rows = list(ctx.registry.alias_history(model, name))
    if as_json:
        return emit_json(rows)
    table(rows, ["at", "action", "from_version", "to_version", "user", "reason"])
    return None


@alias.command("ls")
@click.argument("model")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def alias_ls(ctx, model, as_json):
    """The aliases of MODEL."""
    rows = list(ctx.registry.aliases(model))
    return emit_json(rows) if as_json else table(rows, ALIAS_COLUMNS)


@alias.command("rm")
@click.argument("model")
@click.argument("name")
@click.option("--reason", default="")
@pass_ctx
def alias_rm(ctx, model, name, reason):
    """Delete alias NAME (its history stays)."""
    ctx.registry.delete_alias(model, name, reason=reason)


@cli.command()
@click.argument("ref", metavar="NAME[:VERSION]")
@click.option("--artifact", "artifact_id", help="Delete only this artifact (id) of the version.")
@click.option("--force", is_flag=True, help="Delete a model with all its versions and files.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask.")
@pass_ctx
def rm(ctx, ref, artifact_id, force, yes):
    """Delete a registered model, a version or one artifact, with their files."""
    name, version, _ = parse_ref(ref)
    what = f"artifact {artifact_id}" if artifact_id else f"{name}:{version}" if version else name
    if not yes and sys.stdin.isatty():
        click.confirm(f"Delete {what} and its files?", abort=True)
    if artifact_id:
        ctx.registry.delete_artifact(artifact_id)
    elif version:
        ctx.registry.delete_version(name, version)
    else:
        ctx.registry.delete_model(name, force=force)
    err.print(f"Deleted {what}.")


# --- Geti ------------------------------------------------------------------------------------


@cli.group()
def geti():
    """Intel Geti: list projects, import their optimized models."""


@geti.command("projects")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def geti_projects(ctx, as_json):
    rows = list(ctx.registry.geti_projects())
    return emit_json(rows) if as_json else table(rows, ["id", "name", "task_types"])


@geti.command("import")
@click.argument("project_id")
@click.option("--model", "optimized", multiple=True, help="An optimized model id (repeatable; default: all).")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Follow the jobs until they end.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def geti_import(ctx, project_id, optimized, wait, as_json):
    """Import a Geti project's optimized models as artifacts (background jobs on the registry)."""
    jobs = ctx.registry.geti_import(project_id, list(optimized))
    if wait:
        with ctx.progress() as bar:
            tasks = {job["id"]: bar.add_task(job.get("name") or job["optimized_model_id"], total=None) for job in jobs}

            def show(current):
                for job in current:
                    bar.update(tasks[job["id"]], completed=job["bytes_done"] or 0, total=job["bytes_total"] or None)

            jobs = ctx.registry.wait_for_imports(jobs, progress=show)
    if as_json:
        emit_json(jobs)
    else:
        for job in jobs:
            artifact = job.get("artifact") or {}
            target = f"{artifact.get('registered_model')}:{artifact.get('version')}" if artifact else ""
            click.echo(f"{job['id']} {job['state']} {job.get('name') or ''} {target} {job.get('error') or ''}".rstrip())
    failed = [job for job in jobs if job["state"] == "failed"]
    if failed:
        raise RegistryError(
            f"{len(failed)} of {len(jobs)} imports failed: {failed[0].get('error')}", code="import_failed"
        )
