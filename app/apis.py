from adrf.views import APIView
from rest_framework.permissions import AllowAny
from rest_framework.response import Response


class HealthApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    async def get(self, request):
        return Response({"success": True, "message": "ok", "data": {"status": "ok"}})
