"""The A/B experiments API (staff only): define, list, read, report, stop, promote, and a type's promotion pin (read,
clear). Each view validates, awaits one service of app/services/experiments.py, experiment_outcomes.py or
promotions.py and answers in the envelope."""
from __future__ import annotations

import asyncio

from drf_spectacular.utils import extend_schema
from rest_framework import serializers

from app import serializers as shapes
from app.content_types import CONTENT_TYPES
from app.services import experiment_outcomes, experiments, promotions
from app.views.base import UserApiView, ok
from app.views.recommendations_views import IsStaff

_ERRORS = {code: shapes.error_envelope() for code in (400, 401, 403, 404, 409, 503)}


class ArmSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=32)
    engine = serializers.CharField(max_length=64, help_text="`current` (the type's served model) or an engine of the "
                                                            "registry: lightfm, popularity, ...")
    params = serializers.DictField(required=False, default=dict, help_text="The engine's parameters.")
    share = serializers.FloatField(help_text="The arm's share of the users; the shares sum to 1.")


def _experiment_serializer(**kwargs):
    return shapes.inline_serializer(name="Experiment", **kwargs, fields={
        "id": serializers.IntegerField(), "name": serializers.CharField(), "content_type": serializers.CharField(),
        "state": serializers.CharField(help_text="running, stopped or promoted"),
        "control": serializers.CharField(), "window_days": serializers.FloatField(),
        "arms": shapes.inline_serializer(name="ExperimentArm", many=True, fields={
            "name": serializers.CharField(), "engine": serializers.CharField(), "params": serializers.DictField(),
            "share": serializers.FloatField(), "model_key": serializers.CharField(allow_null=True),
            "version": serializers.CharField(allow_null=True)}),
        "promoted_arm": serializers.CharField(allow_null=True), "created_at": serializers.DateTimeField(),
        "stopped_at": serializers.DateTimeField(allow_null=True)})


def _report_serializer():
    lift = shapes.inline_serializer(name="ExperimentLift", allow_null=True, fields={
        "absolute_lift": serializers.FloatField(), "relative_lift": serializers.FloatField(allow_null=True),
        "p_value": serializers.FloatField(help_text="always-valid (mSPRT): valid under continuous monitoring"),
        "lift_interval": serializers.ListField(child=serializers.FloatField()),
        "fixed_horizon_p_value": serializers.FloatField(help_text="z-test, for reference: not valid under peeking"),
        "significant": serializers.BooleanField()})
    arm = shapes.inline_serializer(name="ExperimentArmReport", many=True, fields={
        "name": serializers.CharField(), "engine": serializers.CharField(), "users": serializers.IntegerField(),
        "impressions": serializers.IntegerField(), "clicks": serializers.IntegerField(),
        "dismissals": serializers.IntegerField(), "conversions": serializers.IntegerField(),
        "conversion_rate": serializers.FloatField(),
        "rate_interval_95": serializers.ListField(child=serializers.FloatField()),
        "clicks_per_impression": serializers.FloatField(allow_null=True),
        "dismissals_per_impression": serializers.FloatField(allow_null=True), "versus_control": lift})
    return shapes.inline_serializer(name="ExperimentReport", fields={
        "experiment": serializers.DictField(), "control": serializers.CharField(), "alpha": serializers.FloatField(),
        "alpha_per_comparison": serializers.FloatField(), "winner": serializers.CharField(allow_null=True),
        "verdict": serializers.CharField(), "test": serializers.CharField(), "arms": arm})


class StaffApiView(UserApiView):
    permission_classes = [IsStaff]
    initial_in_thread = True  # the staff check reads the database


class ExperimentsApi(StaffApiView):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ExperimentCreate"

        name = serializers.CharField(max_length=64)
        content_type = serializers.CharField(max_length=32, help_text="One of: " + ", ".join(
            ct.key for ct in CONTENT_TYPES))
        arms = ArmSerializer(many=True, help_text="The first arm is the control.")
        window_days = serializers.FloatField(required=False, min_value=0.001, max_value=experiments.MAX_WINDOW_DAYS,
                                             help_text="A like counts for an arm this long after it showed the item "
                                                       "(default MUSICBUD_EXPERIMENT_WINDOW_DAYS, 7).")

    @extend_schema(operation_id="experiments_list", responses={200: shapes.envelope_serializer("ExperimentsEnvelope", _experiment_serializer(many=True)),
                              **_ERRORS})
    async def get(self, request):
        return ok("Experiments fetched successfully", await experiments.experiments_list())

    @extend_schema(operation_id="experiments_create", request=InputSerializer, responses={
        201: shapes.envelope_serializer("ExperimentEnvelope", _experiment_serializer()), **_ERRORS})
    async def post(self, request):
        s = self.InputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        data = await experiments.experiment_create(**s.validated_data)
        return ok("Experiment started", data, status_code=201)


class ExperimentApi(StaffApiView):
    @extend_schema(operation_id="experiments_get", responses={200: shapes.envelope_serializer("ExperimentGetEnvelope", _experiment_serializer()),
                              **_ERRORS})
    async def get(self, request, experiment_id: int):
        return ok("Experiment fetched successfully", await experiments.experiment_get(experiment_id=experiment_id))


class ExperimentReportApi(StaffApiView):
    @extend_schema(responses={200: shapes.envelope_serializer("ExperimentReportEnvelope", _report_serializer()),
                              **_ERRORS})
    async def get(self, request, experiment_id: int):
        report = await asyncio.to_thread(experiment_outcomes.experiment_report_get, experiment_id=experiment_id)
        return ok("Experiment report", report)


class ExperimentStopApi(StaffApiView):
    @extend_schema(request=None, responses={
        200: shapes.envelope_serializer("ExperimentStopEnvelope", _experiment_serializer()), **_ERRORS})
    async def post(self, request, experiment_id: int):
        return ok("Experiment stopped", await experiments.experiment_stop(experiment_id=experiment_id))


class ExperimentPromoteApi(StaffApiView):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ExperimentPromote"

        arm = serializers.CharField(max_length=32)

    @extend_schema(request=InputSerializer, responses={
        200: shapes.envelope_serializer("ExperimentPromoteEnvelope", _experiment_serializer()), **_ERRORS})
    async def post(self, request, experiment_id: int):
        s = self.InputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        data = await experiments.experiment_promote(experiment_id=experiment_id, arm=s.validated_data["arm"])
        return ok(f"Arm {data['promoted_arm']} promoted: it is the {data['content_type']} model now", data)


def _promotion_serializer(name: str, field: str, help_text: str):
    return shapes.inline_serializer(name=name, fields={
        "content_type": serializers.CharField(),
        field: shapes.inline_serializer(name=f"{name}Pin", allow_null=True, help_text=help_text, fields={
            "experiment": serializers.CharField(), "arm": serializers.CharField(), "engine": serializers.CharField(),
            "params": serializers.DictField(), "promoted_at": serializers.CharField()})})


class PromotionApi(StaffApiView):
    """A type's promotion pin: while there is one, its trainings fit the promoted arm's engine instead of selecting."""

    @extend_schema(operation_id="experiments_promotion_get", responses={200: shapes.envelope_serializer(
        "PromotionEnvelope", _promotion_serializer("Promotion", "promotion", "null: the trainings select")),
        **_ERRORS})
    async def get(self, request, content_type: str):
        return ok("Promotion fetched successfully", await promotions.promotion_aget(content_type=content_type))

    @extend_schema(operation_id="experiments_promotion_clear", responses={200: shapes.envelope_serializer(
        "PromotionClearEnvelope", _promotion_serializer("PromotionCleared", "cleared", "null: there was none")),
        **_ERRORS})
    async def delete(self, request, content_type: str):
        data = await promotions.promotion_clear(content_type=content_type)
        return ok(f"The {data['content_type']} trainings select their model again", data)
