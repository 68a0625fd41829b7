"""The API's OPTIONS answer: DRF's description of a view, always as JSON, never a 500."""

from rest_framework.metadata import SimpleMetadata
from rest_framework.renderers import JSONRenderer


def declares_serializer(view) -> bool:
    from rest_framework.generics import GenericAPIView  # here: DRF loads this module while it loads its views

    return getattr(view, "serializer_class", None) is not None or (
        type(view).get_serializer_class is not GenericAPIView.get_serializer_class
    )


class APIMetadata(SimpleMetadata):
    """DRF's SimpleMetadata, with two views it breaks on handled.

    A generic view that names its input serializers in each action (the chat) has no serializer to
    describe, where DRF would raise an AssertionError; and a view that renders HTML or YAML (the docs,
    the schema) answers OPTIONS in JSON like the rest of the API, not through its page template.
    """

    def determine_metadata(self, request, view) -> dict:
        request.accepted_renderer, request.accepted_media_type = JSONRenderer(), JSONRenderer.media_type
        return super().determine_metadata(request, view)

    def determine_actions(self, request, view) -> dict:
        return super().determine_actions(request, view) if declares_serializer(view) else {}
