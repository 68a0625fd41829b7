"""Log line formats shared by the app (settings.LOGGING) and gunicorn (gunicorn.conf.py).

Plain dictConfig data with no Django import, so gunicorn's master can read it before the app loads.
"""

LOG_FORMATTERS = {
    "json": {
        "()": "pythonjsonlogger.json.JsonFormatter",
        "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
        "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
    },
    "text": {"format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"},
}
