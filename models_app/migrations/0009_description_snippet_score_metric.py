from django.db import migrations, models

from models_app.markup import plain_snippet


def backfill_snippets(apps, schema_editor):
    """Existing descriptions get their snippet, as a save would compute it."""
    RegisteredModel = apps.get_model("models_app", "RegisteredModel")
    rows = RegisteredModel.objects.exclude(description="").only("id", "description")
    batch = []
    for row in rows.iterator(chunk_size=1000):
        row.description_snippet = plain_snippet(row.description)
        batch.append(row)
        if len(batch) == 1000:
            RegisteredModel.objects.bulk_update(batch, ["description_snippet"])
            batch = []
    RegisteredModel.objects.bulk_update(batch, ["description_snippet"])


class Migration(migrations.Migration):
    dependencies = [
        ("models_app", "0008_oci_blob_uploads"),
    ]

    operations = [
        migrations.AddField(
            model_name="modelversion",
            name="score_metric",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AddField(
            model_name="registeredmodel",
            name="description_snippet",
            field=models.CharField(blank=True, editable=False, max_length=200),
        ),
        migrations.RunPython(backfill_snippets, migrations.RunPython.noop),
    ]
