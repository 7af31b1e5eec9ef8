"""Where ``serve run captioning.ray_serve:app`` found the application before it moved to
:mod:`captioning.serving.ray_serve`; kept so that deployments that name it still start."""

from .serving.ray_serve import APP_NAME, Captioner, app, build_app

__all__ = ["APP_NAME", "Captioner", "app", "build_app"]
