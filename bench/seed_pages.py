"""Fill a database with a realistic catalogue to look at the pages.

    DATABASE_URL=postgres://... python bench/seed_pages.py [--models 28]

Creates models named like real detectors and classifiers (``demo-*``), each with 2 to 8
versions (some archived, some deprecated), 2 to 6 variants per version over precisions,
devices and formats (small files really stored), Markdown descriptions with headings and
tables, tags, aliases moved by two users with reasons, and a few rollbacks. The default
gives about 28 models, 140 versions and 500 variants. Existing ``demo-*`` models are replaced.
"""

import argparse
import os
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_project.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.files.base import ContentFile  # noqa: E402

from models_app import services  # noqa: E402
from models_app.models import ModelVersion, RegisteredModel  # noqa: E402

TASKS = [
    ("person-detection", "Detection", "YOLOX", "mAP@0.5"),
    ("vehicle-detection", "Detection", "SSD-MobileNet", "mAP@0.5"),
    ("face-detection", "Detection", "RetinaFace", "mAP@0.5"),
    ("pallet-detection", "Detection", "YOLOv8-S", "f-measure"),
    ("defect-segmentation", "Segmentation", "LiteHRNet", "dice"),
    ("road-segmentation", "Segmentation", "SegFormer-B0", "mIoU"),
    ("scratch-anomaly", "Anomaly", "PaDiM", "f-measure"),
    ("weld-anomaly", "Anomaly", "STFPM", "f-measure"),
    ("product-classification", "Classification", "EfficientNet-B0", "accuracy"),
    ("fruit-classification", "Classification", "MobileNetV3", "accuracy"),
    ("helmet-classification", "Classification", "DeiT-Tiny", "accuracy"),
    ("pose-estimation", "Keypoint", "RTMPose", "PCK"),
    ("text-detection", "Detection", "DBNet", "f-measure"),
    ("shelf-gap-detection", "Detection", "YOLOX-TINY", "f-measure"),
]
PRECISIONS = ["FP32", "FP16", "INT8", "INT4"]
DEVICES = ["CPU", "GPU", "NPU"]
FORMATS = ["openvino", "onnx"]
DESCRIPTION = """# {name}

{task} model for edge cameras, trained in Geti and exported to OpenVINO. Use the `production`
alias in deployments; `staging` carries the candidate under evaluation.

## Training data

| Dataset | Images | Labels |
|---|---|---|
| retail-2024 | 18,400 | {labels} |
| warehouse-night | 3,100 | {labels} |

## Known limits

- accuracy drops below 0.6 under 20 lux
- INT8 builds need OpenVINO 2024.3 or later on NPU
"""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=int, default=28)
    args = parser.parse_args()
    rng = random.Random(15)
    User = get_user_model()
    alice, _ = User.objects.get_or_create(username="alice", defaults={"is_staff": True, "is_superuser": True})
    bob, _ = User.objects.get_or_create(username="bob")
    alice.set_password("alice")
    alice.save()
    for registered in RegisteredModel.objects.filter(name__startswith="demo-"):
        services.delete_registered_model(registered, force=True)
    counts = [0, 0, 0]
    for i in range(args.models):
        base, category, arch, metric = TASKS[i % len(TASKS)]
        name = f"demo-{base}" if i < len(TASKS) else f"demo-{base}-{i // len(TASKS) + 1}"
        versions = []
        for v in range(rng.randint(2, 8)):
            label = f"{1 + v // 3}.{v % 3}"
            variants = rng.sample([(p, d, f) for p in PRECISIONS for d in DEVICES for f in FORMATS], rng.randint(2, 6))
            for precision, device, fmt in variants:
                size = rng.randint(40, 400) * 1024
                services.register_artifact(
                    model_name=name,
                    version=label,
                    user=rng.choice([alice, bob]),
                    fileobj=ContentFile(os.urandom(size), name=f"{base}-{label}-{precision}-{device}.{fmt}.bin"),
                    version_fields={
                        "category": category,
                        "architecture": arch,
                        "score_metric": metric,
                        "labels": ["person", "car"] if category == "Detection" else ["ok", "defect"],
                        "origin": "geti" if v % 2 else "upload",
                        "tags": {"team": rng.choice(["vision", "retail", "factory"]), "dataset": "retail-2024"},
                        "provenance": {"dataset": "retail-2024", "commit": f"{rng.getrandbits(28):07x}"},
                    },
                    artifact_fields={
                        "precision": precision,
                        "target_device": device,
                        "format": fmt,
                        "score": round(rng.uniform(0.6, 0.95), 3),
                    },
                )
                counts[2] += 1
            versions.append(ModelVersion.objects.get(registered_model__name=name, version=label))
            counts[1] += 1
        registered = RegisteredModel.objects.get(name=name)
        services.update_registered_model(
            registered,
            fields={
                "description": DESCRIPTION.format(name=name, task=category, labels="person, car"),
                "tags": {"team": rng.choice(["vision", "retail", "factory"])},
            },
            user=alice,
        )
        for older, newer in zip(versions, versions[1:]):
            services.update_version(newer, fields={"derived_from": older}, user=alice)
        if len(versions) >= 3:
            services.update_version(versions[0], fields={"status": ModelVersion.Status.ARCHIVED}, user=bob)
            services.update_version(versions[1], fields={"status": ModelVersion.Status.DEPRECATED}, user=bob)
        live = [v for v in versions if v.status != ModelVersion.Status.ARCHIVED] or versions[-1:]
        live = [ModelVersion.objects.get(pk=v.pk) for v in live]
        live = [v for v in live if v.status != ModelVersion.Status.ARCHIVED]
        if live:
            services.set_alias(
                registered_model=registered, name="production", version=live[0], user=alice, reason="first release"
            )
            services.set_alias(
                registered_model=registered,
                name="production",
                version=live[-1],
                user=alice,
                reason="better mAP on the night set",
            )
            if len(live) > 1 and i % 3 == 0:
                services.rollback_alias(
                    registered_model=registered, name="production", user=bob, reason="regression on NPU driver 1.2"
                )
            services.set_alias(
                registered_model=registered, name="staging", version=live[-1], user=bob, reason="candidate"
            )
        counts[0] += 1
    print(f"{counts[0]} models, {counts[1]} versions, {counts[2]} variants")


if __name__ == "__main__":
    main()
