"""Pytest fixtures for the project's tests, kept out of the runtime packages.

Three plugins, by what they need: :mod:`~opusclip_lib.testing.db` (the three database
backends, scratch schemas), :mod:`~opusclip_lib.testing.sandbox` (the API sandbox, the
``[sandbox]`` extra) and :mod:`~opusclip_lib.testing.redis` (Redis servers and clusters of our
own). ``tests/conftest.py`` loads them with ``pytest_plugins``. They are not a ``pytest11``
entry point, which would load them (and the sandbox's dependencies) into every pytest run of
every environment this package is in.
"""
