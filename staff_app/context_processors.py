"""What every staff console page may show: the daily budget's state, for the banner once it is reached."""

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from staff_app.usage_page import daily_budget_state


def daily_budget(request: HttpRequest) -> dict:
    # Lazy: read (one small query) only by a page that shows it, the admin's; the widget page never does.
    return {"daily_budget": SimpleLazyObject(daily_budget_state)}
