"""Credential names: whether ``api_key``, ``token`` or ``max_tokens`` names a credential, judged on its parts."""

from __future__ import annotations

import re

__all__ = ["name_parts", "name_tier"]

_NAME_PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
_STRONG_WORDS = frozenset({
    "password", "passwd", "passphrase", "pwd", "secret", "secrets", "credential", "credentials", "creds",
    "cookie", "cookies", "bearer", "authorization", "apikey", "apitoken", "apisecret", "accesstoken",
    "authtoken", "refreshtoken", "sessiontoken", "secretkey", "privatekey", "accesskey", "clientsecret",
})
# A single word ending in one of these still names a credential: dbpassword, githubtoken, OPENAIAPIKEY.
_STRONG_ENDINGS = ("password", "passwd", "token", "secret", "apikey", "secretkey", "accesskey")
# `key` alone is a dict key, a cache key, a sort key; with one of these before it, a credential.
_KEY_QUALIFIERS = frozenset({
    "api", "access", "secret", "private", "signing", "encryption", "master", "client", "app", "auth", "session",
    "ssh", "deploy", "account", "subscription", "service", "license", "webhook", "hmac", "jwt", "consumer",
    "admin", "write", "read", "live", "prod", "openai", "anthropic", "aws", "azure", "gcp", "google", "gemini",
    "github", "gitlab", "slack", "stripe", "hf", "huggingface", "cohere", "mistral", "groq", "together",
    "replicate", "pinecone", "langsmith", "langchain", "wandb", "sendgrid", "twilio", "mailgun",
})
# A token that is a piece of text, not a credential (tokenizers' special tokens, usage counters).
_TEXT_TOKEN = frozenset({
    "eos", "bos", "pad", "unk", "sep", "cls", "mask", "stop", "special", "prompt", "completion", "reasoning",
    "cached", "input", "output", "start", "end", "image", "audio", "word", "sub", "subword",
})
# Qualifiers before a credential word that make the name about something else.
_NOT_BEFORE = frozenset({"max", "min", "num", "n", "count", "total", "hashed", "is", "has", "use", "show", "no",
                         "require", "requires", "needs", "with", "public"})
# Qualifiers after one: the name holds a fact *about* the credential, not the credential.
_NEUTRAL_AFTER = frozenset({
    "count", "counts", "len", "length", "size", "limit", "limits", "max", "min", "num", "total", "budget", "usage",
    "used", "cost", "price", "rate", "ratio", "type", "types", "kind", "scheme", "method", "mode", "provider",
    "policy", "strength", "format", "pattern", "regex", "re", "encoding", "encoder", "url", "uri", "urls",
    "endpoint", "host", "hostname", "domain", "path", "paths", "file", "filename", "dir", "directory", "folder",
    "location", "cache", "name", "names", "id", "ids", "idx", "index", "env", "var", "variable", "field",
    "fields", "column", "col", "param", "parameter", "label", "help", "hint", "description", "desc", "doc",
    "message", "msg", "error", "errors", "title", "hash", "hashed", "digest", "checksum", "sha", "md", "salt",
    "shown", "visible", "hidden", "required", "enabled", "disabled", "present", "missing", "valid", "validator",
    "validation", "check", "checker", "exists", "ok", "expiry", "expires", "expiration", "expire", "expired",
    "ttl", "lifetime", "timeout", "age", "time", "timestamp", "date", "at", "rotation", "reset", "changed",
    "updated", "created", "version", "prefix", "suffix", "manager", "handler", "factory", "class", "cls", "fn",
    "func", "callback", "getter", "loader", "source", "widget", "box", "form", "dialog", "button", "input",
    "placeholder", "example", "sample", "template", "span", "offset", "position", "pos", "logprob", "logprobs",
    "prob", "probs", "score", "scores", "weight", "weights", "embedding", "embeddings", "vocab", "list", "ref",
    "start", "end",
})
# "next_token", "page_token": opaque, usually not a credential; judged like a bare `token`.
_AMBIGUOUS_TOKEN = frozenset({"next", "page", "continuation", "cursor", "sync"})


def name_parts(name: str) -> list[str]:
    # The last component names the value: self.api_key, config["db"]["password"], X-Api-Key.
    last = re.split(r"[.\[\]'\"/:]+", name.strip("[]'\". "))[-1] if name else ""
    return [p.lower() for p in _NAME_PART.findall(last or name)]


def name_tier(name: str) -> int:
    """3 names a credential, 2 might (a bare ``token`` or ``auth``), 1 is a ``key`` of some kind, 0 is not."""
    parts = name_parts(name)
    best = 0
    for i, part in enumerate(parts):
        before = parts[i - 1] if i else ""
        if before in _NOT_BEFORE or any(p in _NEUTRAL_AFTER for p in parts[i + 1:]):
            continue
        if part == "token":
            tier = 0 if before in _TEXT_TOKEN else 2 if not before or before in _AMBIGUOUS_TOKEN else 3
        elif part in _STRONG_WORDS or (len(part) > 6 and part.endswith(_STRONG_ENDINGS)):
            tier = 3
        elif part == "key":
            tier = 3 if before in _KEY_QUALIFIERS else 1
        elif part == "auth":
            tier = 2
        elif part == "pass":
            tier = 3 if before and i == len(parts) - 1 else 0  # db_pass, smtp_pass; not pass_rate
        else:
            tier = 0
        best = max(best, tier)
    return best

