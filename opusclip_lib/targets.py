"""Where the command-line tools send their API calls: ``sandbox``, ``live`` or a root URL.

* ``sandbox``: the in-process sandbox (offline, no key; the ``[sandbox]`` extra). Imported only
  when chosen, so a live run never loads it;
* ``live``: the real services, keys from the environment, any provider redirected with
  ``OPUSCLIP_<PROVIDER>_BASE_URL`` (:func:`~opusclip_lib.workflow.endpoints.endpoints_from_env`);
* ``http(s)://...``: one root serving the four APIs, a served sandbox or a gateway;
* ``sandbox+http://...``: a sandbox served by another process (``python -m
  opusclip_lib.sandbox``, a benchmark's), YouTube ids taking the bundled samples' media as the
  in-process sandbox does: worker processes sharing one offline sandbox.
"""

from __future__ import annotations

from collections.abc import Mapping

from opusclip_lib.workflow.endpoints import Endpoints, endpoints_at, endpoints_from_env

TARGET_HELP = ("sandbox (offline, the default), live (the real APIs, keys from the environment), "
               "the root URL of a served sandbox or gateway, or sandbox+URL: a served sandbox, "
               "offline media included")
SERVED_SANDBOX = "sandbox+"


def endpoints_for(target: str, *, latency_ms: Mapping[str, float] | None = None) -> Endpoints:
    """The endpoints ``target`` names; ``latency_ms`` slows the in-process sandbox down."""
    if target == "live":
        return endpoints_from_env()
    served = target.removeprefix(SERVED_SANDBOX)
    if served != target and not served.startswith(("http://", "https://")):
        raise ValueError(f"unknown target {target!r}: sandbox+ takes an http(s) URL")
    if target == "sandbox" or served != target:
        try:  # tooling: import-linter's "core imports no tooling" lets this one import through
            from opusclip_lib.sandbox import build_app
            from opusclip_lib.sandbox.endpoints import sandbox_config, sandbox_endpoints
        except ModuleNotFoundError as exc:
            raise RuntimeError(f"the sandbox target needs {exc.name}, which comes with the "
                               "[sandbox] extra: pip install \"opusclip-lib[sandbox]\"") from exc
        if target == "sandbox":
            return sandbox_endpoints(build_app(sandbox_config(latency_ms)))
        return sandbox_endpoints(served)
    if target.startswith(("http://", "https://")):
        return endpoints_at(target)
    raise ValueError(f"unknown target {target!r}: use {TARGET_HELP}")
