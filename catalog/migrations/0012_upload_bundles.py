"""Uploaded descriptor folders move into the database (catalog.uploads): each upload location's target
becomes `upload:<folder>` and its files an UploadBundle; sources, children, entity sources and errors
are renamed to `upload:<folder>/<path>`. An upload whose folder is not on this node's disk keeps its
old target (its next refresh says the folder is missing, as before); sending it again registers it
anew."""

import hashlib
import os
import zlib

import orjson
from django.conf import settings
from django.db import migrations, models


def _files(folder: str) -> list[list[str]] | None:
    out = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            path = os.path.join(dirpath, name)
            try:
                with open(path, encoding="utf-8", errors="surrogatepass") as handle:
                    out.append([os.path.relpath(path, folder).replace(os.sep, "/"), handle.read()])
            except (OSError, UnicodeDecodeError):
                return None
    return sorted(out)


def forwards(apps, schema_editor):
    Location = apps.get_model("catalog", "Location")
    LocationSource = apps.get_model("catalog", "LocationSource")
    Entity = apps.get_model("catalog", "Entity")
    ProcessingError = apps.get_model("catalog", "ProcessingError")
    UploadBundle = apps.get_model("catalog", "UploadBundle")
    base = os.path.realpath(settings.PLINTH_CATALOG_UPLOAD_ROOT)
    for location in Location.objects.filter(type="dir"):
        real = os.path.realpath(location.target)
        if os.path.dirname(real) != base or not os.path.isdir(real):
            continue
        files = _files(real)
        if files is None:
            continue
        name = os.path.basename(real)
        raw = orjson.dumps(files)
        UploadBundle.objects.update_or_create(name=name, defaults={
            "source": name, "files": zlib.compress(raw, 6), "digest": hashlib.sha256(raw).hexdigest()})
        old, new = location.target.rstrip("/") + "/", f"upload:{name}/"

        def rename(value: str) -> str:
            return new + value[len(old):] if value.startswith(old) else value

        for row in LocationSource.objects.filter(location=location):
            row.source = rename(row.source)
            row.children = [rename(c) for c in row.children or []]
            row.save(update_fields=["source", "children"])
        for entity in Entity.objects.filter(location=location, source__startswith=old).only("id", "source"):
            Entity.objects.filter(pk=entity.pk).update(source=rename(entity.source))
        for error in ProcessingError.objects.filter(location=location, source__startswith=old):
            ProcessingError.objects.filter(pk=error.pk).update(source=rename(error.source))
        Location.objects.filter(pk=location.pk).update(target=f"upload:{name}", type="upload")


class Migration(migrations.Migration):

    dependencies = [
        ('catalog', '0011_location_code_host_discovery'),
    ]

    operations = [
        migrations.CreateModel(
            name='UploadBundle',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=100, unique=True)),
                ('source', models.CharField(max_length=200)),
                ('digest', models.CharField(max_length=64)),
                ('files', models.BinaryField()),
                ('updated_at', models.DateTimeField(auto_now=True)),
            ],
        ),
        migrations.AlterField(
            model_name='location',
            name='type',
            field=models.CharField(choices=[('file', 'File'), ('dir', 'Directory'), ('url', 'URL'), ('feast', 'Feast feature repository'), ('upload', 'Uploaded folder'), ('github-discovery', 'GitHub organisation (discovery)'), ('gitlab-discovery', 'GitLab group (discovery)')], max_length=20),
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
