"""Serving parml models: an Open Inference Protocol Flask app (`create_app`) and `parml serve`, a
gunicorn worker pool sharing one memory-mapped copy of the model. Needs `pip install parml[serve]`
(Flask, gunicorn, prometheus_client), imported only when used."""


def create_app(model_or_path, name=None, **kwargs):
    from ._app import create_app as _create
    return _create(model_or_path, name, **kwargs)


create_app.__doc__ = "See parml.serving._app.create_app."

__all__ = ["create_app"]
