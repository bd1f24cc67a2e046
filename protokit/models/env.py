"""The one table of provider environment variables: where each SDK finds its key and its server.

The adapters take their ``key_env_var`` and ``base_url_env_var`` from here, and so does
everything else that names these variables: offline runs and generated tests drop them,
the sandbox and ``protokit lab`` set them, messages tell users which one to set::

    >>> PROVIDER_ENV["openai"].key
    'OPENAI_API_KEY'
    >>> pointed_at({"openai": "http://127.0.0.1:8765/v1"}, key="sandbox")
    {'OPENAI_BASE_URL': 'http://127.0.0.1:8765/v1', 'OPENAI_API_KEY': 'sandbox'}

It imports nothing (no provider's SDK either), so reading it costs nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["BASE_URL_VARS", "KEY_VARS", "PROVIDER_ENV", "PROVIDER_VARS", "ProviderEnv", "pointed_at"]


@dataclass(frozen=True)
class ProviderEnv:
    """One provider's environment variables: its API key, and the base URL of its server."""

    key: str
    base_url: str


# provider prefix (as in "openai:gpt-4.1-mini") -> its variables, read by the SDKs themselves.
PROVIDER_ENV: Mapping[str, ProviderEnv] = MappingProxyType({
    "openai": ProviderEnv(key="OPENAI_API_KEY", base_url="OPENAI_BASE_URL"),
    "anthropic": ProviderEnv(key="ANTHROPIC_API_KEY", base_url="ANTHROPIC_BASE_URL"),
})

# Every provider's key variable, in the table's order: what "set a key" messages list.
KEY_VARS: tuple[str, ...] = tuple(e.key for e in PROVIDER_ENV.values())
BASE_URL_VARS: tuple[str, ...] = tuple(e.base_url for e in PROVIDER_ENV.values())
# Keys, then base URLs: everything an offline run or a promoted module's tests must not inherit.
PROVIDER_VARS: tuple[str, ...] = KEY_VARS + BASE_URL_VARS


def pointed_at(base_urls: Mapping[str, str], *, key: str | None = None) -> dict[str, str]:
    """Variables that send each provider's SDK to ``base_urls[provider]``; with ``key``, its key variable too.

    Each provider's base URL comes before its key, in the order of ``base_urls``.
    """
    env: dict[str, str] = {}
    for provider, url in base_urls.items():
        names = PROVIDER_ENV[provider]
        env[names.base_url] = url
        if key is not None:
            env[names.key] = key
    return env
