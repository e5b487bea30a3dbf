from django.core.management.base import BaseCommand, CommandError

from models_app.storage import current_storage, is_s3


class Command(BaseCommand):
    help = "Create the S3 bucket named by S3_BUCKET if it does not exist (no-op for local files)."

    def handle(self, *args, **options):
        storage = current_storage()
        if not is_s3(storage):
            self.stdout.write(f"Artifacts are stored in local files under {storage.location}.")
            return
        client = storage.connection.meta.client
        try:
            client.head_bucket(Bucket=storage.bucket_name)
            self.stdout.write(f"Bucket {storage.bucket_name} exists.")
        except client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in {"404", "NoSuchBucket"}:
                raise CommandError(f"Cannot reach bucket {storage.bucket_name}: {exc}") from exc
            kwargs = {"Bucket": storage.bucket_name}
            region = client.meta.region_name
            if region and region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
            client.create_bucket(**kwargs)
            self.stdout.write(self.style.SUCCESS(f"Created bucket {storage.bucket_name}."))
        except Exception as exc:  # connection errors: say so plainly
            raise CommandError(f"Cannot reach the S3 endpoint: {exc}") from exc
