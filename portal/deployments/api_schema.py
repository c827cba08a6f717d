"""The shapes the deployments API answers with, as the OpenAPI schema documents them (never used to
serialise: `api.py` builds its bodies itself)."""

from __future__ import annotations

from rest_framework import serializers

from .models import Source, Status


class DeploymentEventRequestSerializer(serializers.Serializer):
    model = serializers.CharField(max_length=200, help_text="Model entity reference, e.g. model:default/fraud-detector.")
    version = serializers.CharField(max_length=20, help_text="A model version the catalog knows (synced from MLflow).")
    environment = serializers.CharField(max_length=40, help_text="One of the configured environments "
                                        "(PLINTH_DEPLOYMENT_ENVIRONMENTS, by default dev, staging, prod).")
    status = serializers.ChoiceField(choices=Status.choices)
    platform = serializers.CharField(max_length=40, help_text="Serving platform, lower-case (kserve, sagemaker, …).")
    endpoint = serializers.CharField(max_length=2000, required=False, help_text="http(s) URL, no credentials.")
    time = serializers.DateTimeField(required=False, help_text="When it happened (ISO 8601 with offset); default: "
                                     "now. At most 5 minutes ahead, at most 366 days old.")
    servedBy = serializers.CharField(max_length=200, required=False,
                                     help_text="The Component or API it serves through (entity reference).")
    idempotencyKey = serializers.CharField(max_length=100, required=False,
                                           help_text="Repeat the event safely: the same key and event answer "
                                           "200 with the stored one; the same key with another event, 409.")


class DeploymentSerializer(serializers.Serializer):
    ref = serializers.CharField(help_text="The Deployment entity's reference.")
    url = serializers.CharField()
    model = serializers.CharField()
    version = serializers.CharField()
    environment = serializers.CharField()
    status = serializers.ChoiceField(choices=Status.choices)
    statusSince = serializers.DateTimeField()
    endpoint = serializers.CharField(allow_blank=True)
    platform = serializers.CharField(allow_blank=True)
    servedBy = serializers.CharField(allow_blank=True)
    source = serializers.ChoiceField(choices=Source.choices)
    drift = serializers.BooleanField(help_text="Live in a governed environment without an executed approval.")


class DeploymentEventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Status.choices)
    time = serializers.DateTimeField()
    receivedAt = serializers.DateTimeField()
    reporter = serializers.CharField()
    current = serializers.BooleanField(help_text="False when a newer event already set the deployment's state.")


class DeploymentEventResultSerializer(serializers.Serializer):
    event = DeploymentEventSerializer()
    deployment = DeploymentSerializer()
    replayed = serializers.BooleanField()
