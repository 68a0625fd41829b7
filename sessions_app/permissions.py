"""Who may call what: visitors their own session, staff the staff API."""

from rest_framework.permissions import BasePermission

from sessions_app.authentication import Visitor


class IsVisitor(BasePermission):
    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, Visitor)


class IsStaff(BasePermission):
    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_staff and user.is_active)
