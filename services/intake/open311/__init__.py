"""Open311 GeoReport v2 on intake: upstream systems and 12345 platforms report over HTTP.

``/open311/v2/services.{json,xml}``, ``services/{service_code}.{fmt}``, ``POST requests.{fmt}``,
``GET requests.{fmt}`` and ``requests/{service_request_id}.{fmt}``, and the service discovery
file ``/open311/discovery.{fmt}`` (docs/intake.md, "Open311"). A POST is a ``ReportSubmitted``
applied in-process through the Kafka path's inbox and handler (``Subscription.apply_now``), so
it is validated, located, classified, merged (附议) or rejected exactly as a report on
``reports.submitted`` is.

- ``catalog``: the services and their definitions, from the taxonomy (pure);
- ``submission``: a POST's fields → ``ReportSubmitted``, and the errors (pure);
- ``query``: the filters of ``GET requests`` (pure);
- ``status``: a case's Open311 status and extended attributes from its progress (pure);
- ``formats``: JSON and XML, and the specification's error format;
- ``apikeys``: the api keys (pure), ``store``: the SQL, ``projection``: the case events kept;
- ``api``: the routes.
"""
