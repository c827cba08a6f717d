"""Local development: the embedded default (SQLite + SQLite broker), DEBUG on."""

from .base import *  # noqa: F403
from .env import ENV

DEBUG = True if ENV.debug is None else ENV.debug
