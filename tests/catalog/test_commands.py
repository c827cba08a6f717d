"""`manage.py catalog register|validate|refresh` for automation and teams' CI."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from catalog.models import Entity, Location

pytestmark = pytest.mark.django_db

GOOD = "apiVersion: plinth.dev/v1alpha1\nkind: Dataset\nmetadata: {name: cli-data}\nspec: {owner: t}\n"
BAD = "apiVersion: plinth.dev/v1alpha1\nkind: Dataset\nmetadata:\n  name: 'bad name'\nspec: {owner: t}\n"


def test_validate_exit_codes_and_messages(tmp_path, capsys):
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(GOOD)
    bad.write_text(BAD)
    call_command("catalog", "validate", str(good))
    assert "1 document(s), OK" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        call_command("catalog", "validate", str(good), str(bad))
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "bad.yaml:4: metadata.name" in err
    assert not Entity.objects.exists()


def test_register_dry_run_then_for_real_then_refresh(tmp_path, capsys):
    path = tmp_path / "catalog-info.yaml"
    path.write_text(GOOD)
    call_command("catalog", "register", str(path), "--dry-run")
    assert "Dry run: 1 added" in capsys.readouterr().out and not Entity.objects.exists()
    call_command("catalog", "register", str(path))
    assert Entity.objects.filter(ref="dataset:default/cli-data").exists()
    call_command("catalog", "refresh", "--all")
    assert "0 added, 0 changed, 0 removed, 0 errors" in capsys.readouterr().out
    with pytest.raises(CommandError, match="No such file"):
        call_command("catalog", "register", str(tmp_path / "missing.yaml"))
    assert Location.objects.count() == 1
