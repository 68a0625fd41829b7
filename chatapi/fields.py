"""Serializer fields shared by the apps' API modules."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


@extend_schema_field(OpenApiTypes.STR)
class StrictTextField(serializers.Field):
    """A JSON string taken exactly as sent: no coercion of numbers, no trimming, NUL allowed.

    CharField would turn 5 into "5" and refuse NUL outright; the chat rules clean NUL instead.
    """

    default_error_messages = {"invalid": "Must be a string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return data

    def to_representation(self, value):
        return value
