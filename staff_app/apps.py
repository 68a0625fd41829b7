from django.apps import AppConfig


class StaffAppConfig(AppConfig):
    name = "staff_app"
    verbose_name = "Staff"
