"""The staff console's admins: junk in a list's query string or in an object's id is never a 500; lists fit a phone."""

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.db import DataError, transaction


class StrictChangeList(ChangeList):
    """A list filtered only by what its own filters, date drill-down and search offer.

    Django's list also applies any look-up on the model's own fields from the query string, and
    some fail only when the query runs (`?email__regex=(`, `?created_at__year=99999999999`), while the
    page renders: a 500. Here such a look-up is refused up front, and a value the database refuses
    for an offered filter or the search is refused as the query runs; both lead to the plain list.
    """

    def get_filters(self, request):
        try:
            filters = super().get_filters(request)
        except (OverflowError, ValueError) as exc:  # a date drill-down past the calendar's end
            raise IncorrectLookupParameters(exc) from exc
        remaining = set(filters[2])
        hierarchy = self.date_hierarchy
        if hierarchy and f"{hierarchy}__year" in self.params:
            remaining -= {f"{hierarchy}__gte", f"{hierarchy}__lt"}  # the drill-down's own bounds
        if remaining:
            raise IncorrectLookupParameters(f"no filter of this list takes {sorted(remaining)}")
        return filters

    def get_results(self, request):
        try:
            with transaction.atomic():  # on PostgreSQL a refused value must not break the connection's transaction
                super().get_results(request)
        except (DataError, OverflowError, ValueError) as exc:
            raise IncorrectLookupParameters(exc) from exc


class ConsoleModelAdmin(admin.ModelAdmin):
    """Every model admin of the staff console, Django's own included (below).

    Its lists are StrictChangeLists that fit a phone; an id the database cannot hold names no object,
    as any unknown id does.
    """

    class Media:
        css = {"all": ["chatapi/admin_lists.css"]}

    def get_changelist(self, request, **kwargs):
        return StrictChangeList

    def get_object(self, request, object_id, from_field=None):
        try:
            with transaction.atomic():  # on PostgreSQL a refused value must not break the connection's transaction
                return super().get_object(request, object_id, from_field)
        except DataError:  # a NUL in a text id, which PostgreSQL refuses to compare
            return None


class ConsoleUserAdmin(ConsoleModelAdmin, UserAdmin):
    pass


class ConsoleGroupAdmin(ConsoleModelAdmin, GroupAdmin):
    pass


admin.site.unregister(User)
admin.site.register(User, ConsoleUserAdmin)
admin.site.unregister(Group)
admin.site.register(Group, ConsoleGroupAdmin)
