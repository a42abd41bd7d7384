"""The accounts API: /me/, the user directory (/users/?role=) and named API tokens (/tokens/)."""
from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from synapse.accounts import users_visible_to
from synapse.authentication import API_AUTHENTICATION_CLASSES
from synapse.models import ApiToken, User
from synapse.roles import Role, user_roles
from synapse.services import api_token_create, api_token_revoke, api_tokens_visible_to


class UserSerializer(serializers.ModelSerializer):
    name = serializers.SerializerMethodField()
    roles = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "username", "name", "email", "title", "roles"]
        read_only_fields = fields

    def get_name(self, user) -> str:
        return str(user)

    def get_roles(self, user) -> list[str]:
        names = {g.name for g in user.groups.all()}
        if user.is_superuser:
            names.add(Role.ADMIN)
        return sorted(names)


class MeSerializer(UserSerializer):
    is_staff = serializers.BooleanField(read_only=True)

    class Meta(UserSerializer.Meta):
        fields = [*UserSerializer.Meta.fields, "is_staff"]
        read_only_fields = fields

    def get_roles(self, user) -> list[str]:
        return sorted(user_roles(user))


class MeApi(APIView):
    """Who the token or session belongs to, with their roles."""

    authentication_classes = API_AUTHENTICATION_CLASSES

    @extend_schema(responses=MeSerializer)
    def get(self, request):
        return Response(MeSerializer(request.user).data)


class UserFilter(django_filters.FilterSet):
    role = django_filters.ChoiceFilter(choices=Role.choices, field_name="groups__name", label="role")
    username = django_filters.CharFilter(lookup_expr="icontains", max_length=150)

    class Meta:
        model = User
        fields = ["role", "username"]


class UserViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The people you may see (Admins and Test Managers: everyone; Data Executives: Data Owners; you).

    Filters: ?role=Tester, ?username= (contains).
    """

    authentication_classes = API_AUTHENTICATION_CLASSES
    serializer_class = UserSerializer
    filterset_class = UserFilter
    queryset = User.objects.none()

    def get_queryset(self):
        return users_visible_to(user=self.request.user)


class ApiTokenSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.username", read_only=True)
    active = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "user", "active", "created_at", "last_used_at", "revoked_at"]
        read_only_fields = fields


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    key = serializers.CharField(read_only=True, help_text="Shown once: store it now.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "key"]
        read_only_fields = fields


class ApiTokenInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)


class ApiTokenViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Your named API tokens (an Admin sees everyone's). POST {name} creates one; DELETE revokes it."""

    authentication_classes = API_AUTHENTICATION_CLASSES
    serializer_class = ApiTokenSerializer
    queryset = ApiToken.objects.none()

    def get_queryset(self):
        return api_tokens_visible_to(user=self.request.user)

    @extend_schema(request=ApiTokenInputSerializer, responses={201: ApiTokenCreatedSerializer})
    def create(self, request):
        data = ApiTokenInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token, key = api_token_create(user=request.user, name=data.validated_data["name"])
        token.key = key
        return Response(ApiTokenCreatedSerializer(token).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: ApiTokenSerializer})
    def destroy(self, request, pk=None):
        token = api_token_revoke(user=request.user, token=self.get_object())
        return Response(ApiTokenSerializer(token).data)
