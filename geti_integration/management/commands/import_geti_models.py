"""Import Geti optimized models from the command line (batch imports, scripts, cron).

    manage.py import_geti_models PROJECT_ID                      # every optimized model of the project
    manage.py import_geti_models PROJECT_ID OPTIMIZED_ID ...     # these ones
    manage.py import_geti_models PROJECT_ID --format openvino --run

Jobs are queued like those started from the page or the API; ``--run`` runs them in this process
instead of leaving them to the worker. Models already in the registry finish at once.
"""

from django.core.management.base import BaseCommand, CommandError

from geti_integration import importer
from geti_integration.client import GetiError
from geti_integration.errors import GetiDisabled, GetiMisconfigured, describe
from geti_integration.models import ImportJob


class Command(BaseCommand):
    help = "Import optimized models of a Geti project into the registry."

    def add_arguments(self, parser):
        parser.add_argument("project_id")
        parser.add_argument(
            "optimized_ids",
            nargs="*",
            metavar="OPTIMIZED_ID",
            help="Optimized models to import (default: all of the project's).",
        )
        parser.add_argument("--format", help="Only optimized models of this format (openvino, onnx).")
        parser.add_argument("--run", action="store_true", help="Run the imports here instead of in the worker.")

    def handle(self, *args, project_id, optimized_ids, format=None, run=False, **options):
        try:
            with importer.get_client() as client:
                project = client.fill_tree(client.get_project(project_id))
        except (GetiDisabled, GetiMisconfigured) as exc:
            raise CommandError(exc.message) from exc
        except GetiError as exc:
            raise CommandError(describe(exc)) from exc
        available = [
            {"group_id": group.id, "model_id": model.id, "optimized_model_id": optimized.id}
            for group in project.model_groups
            for model in group.models
            if not model.is_purged
            for optimized in model.optimized_models
            if not format or (optimized.model_format or "").lower() == format.lower()
        ]
        wanted = [m for m in available if not optimized_ids or m["optimized_model_id"] in optimized_ids]
        unknown = set(optimized_ids) - {m["optimized_model_id"] for m in wanted}
        if unknown:
            raise CommandError(
                f"Not optimized models of {project.name} that can be imported: {', '.join(sorted(unknown))}"
            )
        if not wanted:
            raise CommandError(f"{project.name} has no optimized model to import.")
        try:
            jobs = importer.start_imports(project_id=project_id, models=wanted)
        except GetiError as exc:
            raise CommandError(describe(exc)) from exc
        for job in jobs:
            if run and job.state == ImportJob.State.QUEUED:
                job = importer.run_import(job.pk)
            self.stdout.write(
                f"{job.optimized_model_id} {job.name}: {job.state}" + (f" ({job.error})" if job.error else "")
            )
        if run and any(
            j.state == ImportJob.State.FAILED for j in ImportJob.objects.filter(pk__in=[j.pk for j in jobs])
        ):
            raise CommandError("Some imports failed.")
