"""Signals apps above governance listen to (connected in their AppConfig.ready()).

`request_executed` is sent after the commit of an executed request with `request_id`, `action` and
`entity_id`: e.g. the deployments app re-checks compliance drift when a promotion is executed."""

import django.dispatch

request_executed = django.dispatch.Signal()
