"""Placeholder until the API issue: DRF's default handler."""
from rest_framework.views import exception_handler


def envelope_exception_handler(exc, context):
    return exception_handler(exc, context)
