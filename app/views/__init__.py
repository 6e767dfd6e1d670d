"""The HTTP API: one short async view per operation (validate, await one service, answer in the envelope).
base.py holds the base views; recommendations_views.py, discovery_views.py, auth_views.py and health_views.py the
operations."""
