"""The test run's settings: the project's, read with the test run's own model and var directories, so tests
never touch a developer's models, secrets or throttle counts. (pytest-django imports this before any
conftest runs, which is why the environment is set here.)"""
import os
import tempfile
from pathlib import Path

_TMP = Path(os.environ.setdefault("MUSICBUD_TEST_TMP", tempfile.mkdtemp(prefix="musicbud-tests-")))
os.environ.setdefault("MUSICBUD_MODEL_DIR", str(_TMP / "models"))
os.environ.setdefault("MUSICBUD_VAR_DIR", str(_TMP / "var"))
# One LightFM thread: with two, Hogwild updates race and a seeded fit differs run to run, so a test on a
# hand-built graph could pass here and fail in CI; with one, a seed gives the same model every time.
os.environ.setdefault("LIGHTFM_THREADS", "1")
# model selection: LightFM (and the popularity baseline) only, so trainings stay fast; tests that select among
# more candidates say so (tests/app/test_training.py)
os.environ.setdefault("MUSICBUD_CANDIDATES", "lightfm")
os.environ["REDIS_URL"] = ""  # single-host unless a test starts a Redis of its own (never a developer's)
os.environ.setdefault("MUSICBUD_LIVE", "false")  # no change-feed thread in the test process (tests start it)
os.environ.setdefault("MUSICBUD_EXPERIMENTS", "false")  # no experiment lookups unless a test turns them on

from musicbud.settings import *  # noqa: E402,F401,F403
