import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "musicbud.settings")
django.setup(set_prefix=False)  # what get_asgi_application() does, then Django's handler minus its thread hops

from musicbud.asgi_lean import LeanASGIHandler  # noqa: E402

application = LeanASGIHandler()
