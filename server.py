"""The CRAFT HTTP API: ``python -m server`` (or ``craft serve``) serves it on settings.server_host:port;
``uvicorn server:app --no-access-log`` works too (uvicorn's access log would print session ids, which are
capabilities). OpenAPI at /docs, the widget's demo page at /demo."""

from channels.http import create_app
from channels.http.app import configure_logging, run

configure_logging()
app = create_app()

if __name__ == "__main__":
    run()
