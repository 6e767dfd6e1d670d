"""The service's own tables in Django's database (the graph stays in Neo4j): the A/B experiments, so every worker
and every host sees the same experiments, and their outcomes, written in batches by each worker
(app/services/experiment_outcomes.py), never one row per request."""
from __future__ import annotations

from django.db import models
from django.db.models import Q


class Experiment(models.Model):
    RUNNING, STOPPED, PROMOTED = "running", "stopped", "promoted"
    STATES = [(RUNNING, "running"), (STOPPED, "stopped"), (PROMOTED, "promoted")]

    name = models.CharField(max_length=64, unique=True)  # users are assigned by a hash of (user, name)
    content_type = models.CharField(max_length=32)  # a model key of app/content_types.py ("movie")
    # [{name, engine ("current" or a make_recommender engine), params, share, model_key, version}], control first
    arms = models.JSONField()
    window_days = models.FloatField(default=7.0)  # a like within this long after an answer showed the item
    state = models.CharField(max_length=16, choices=STATES, default=RUNNING)
    promoted_arm = models.CharField(max_length=32, blank=True, default="")
    previous_p_values = models.JSONField(default=dict)  # each arm's last always-valid p-value (non-increasing)
    created_at = models.DateTimeField(auto_now_add=True)
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["content_type"], condition=Q(state="running"),
                                               name="one_running_experiment_per_type")]

    def __str__(self) -> str:
        return f"{self.name} ({self.content_type}, {self.state})"


class ExperimentUser(models.Model):
    """A user who got at least one answer of an experiment, in their arm."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="users")
    arm = models.CharField(max_length=32)
    uid = models.CharField(max_length=200)  # the ParentUser uid (the change feed's user), or the username
    first_seen = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["experiment", "uid"], name="experiment_user_once")]


class ExperimentExposure(models.Model):
    """An item an arm recommended to a user: a like of it within the window is that arm's conversion."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="exposures")
    arm = models.CharField(max_length=32)
    uid = models.CharField(max_length=200)
    item_id = models.CharField(max_length=200)
    first_shown = models.DateTimeField()
    last_shown = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["experiment", "uid", "item_id"], name="exposure_once")]


class ExperimentConversion(models.Model):
    """A user's first conversion (the unit is the user: one row per experiment and user)."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="conversions")
    arm = models.CharField(max_length=32)
    uid = models.CharField(max_length=200)
    item_id = models.CharField(max_length=200)
    converted_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["experiment", "uid"], name="conversion_once")]


class ExperimentArmCounter(models.Model):
    """Per arm: answers served, clicks and dismissals (feedback), added to by each worker's flush."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="counters")
    arm = models.CharField(max_length=32)
    impressions = models.BigIntegerField(default=0)
    clicks = models.BigIntegerField(default=0)
    dismissals = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["experiment", "arm"], name="counter_once")]
