"""Published repositories move into the database and the shared storage: each bare repository
`publish:git` left under PLINTH_SCAFFOLDER_ROOT/published/repos/<owner>/<name>.git on this node becomes a
PublishedRepository row (the name stays taken) with its git bundle in the storage, so any web node can
serve it. A repository git cannot read is left where it is, named in the output. Catalog locations
registered from the old checkouts stay `file` locations read on the node that has them."""

import subprocess
import uuid
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import storages
from django.db import migrations, models


def _git(*args):
    return subprocess.run(["git", *args], capture_output=True, text=True, timeout=120, check=False)


def forwards(apps, schema_editor):
    PublishedRepository = apps.get_model("scaffolder", "PublishedRepository")
    root = Path(getattr(settings, "PLINTH_SCAFFOLDER_PUBLISH_ROOT", None)
                or Path(getattr(settings, "PLINTH_SCAFFOLDER_ROOT", Path(settings.VAR_DIR) / "scaffolder")) / "published")
    repos = root / "repos"
    if not repos.is_dir():
        return
    storage = storages["default"]
    for bare in sorted(repos.glob("*/*.git")):
        owner, name = bare.parent.name, bare.name[:-4]
        head = _git("--git-dir", str(bare), "rev-parse", "--verify", "-q", "HEAD")
        branch = _git("--git-dir", str(bare), "symbolic-ref", "--short", "HEAD").stdout.strip() or "main"
        run = _git("--git-dir", str(bare), "config", "plinth.run").stdout.strip()
        bundle = bare.parent / f".{name}.migrate.bundle"
        made = head.returncode == 0 and _git("--git-dir", str(bare), "bundle", "create", "-q", str(bundle),
                                             "--all").returncode == 0
        if not made or PublishedRepository.objects.filter(owner=owner, name=name).exists():
            print(f"\n  scaffolder: {bare} left where it is (git cannot read it, or the name is taken)")
            bundle.unlink(missing_ok=True)
            continue
        try:
            run_uid = uuid.UUID(run)
        except ValueError:
            run_uid = uuid.UUID(int=0)
        repository = PublishedRepository.objects.create(owner=owner, name=name, run_uid=run_uid, branch=branch,
                                                        commit=head.stdout.strip())
        key = f"scaffolder/repositories/{repository.uid}.bundle"
        storage.delete(key)
        with bundle.open("rb") as handle:
            storage.save(key, File(handle, name=bundle.name))
        bundle.unlink(missing_ok=True)


class Migration(migrations.Migration):

    dependencies = [
        ('scaffolder', '0003_run_secret'),
    ]

    operations = [
        migrations.CreateModel(
            name='PublishedRepository',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('uid', models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                ('owner', models.CharField(max_length=100)),
                ('name', models.CharField(max_length=100)),
                ('run_uid', models.UUIDField(db_index=True)),
                ('branch', models.CharField(max_length=100)),
                ('description', models.CharField(blank=True, max_length=500)),
                ('commit', models.CharField(blank=True, max_length=40)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
            ],
            options={
                'ordering': ['owner', 'name'],
                'constraints': [models.UniqueConstraint(fields=('owner', 'name'), name='scaffolder_repository_unique_name')],
            },
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
