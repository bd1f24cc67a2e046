"""OpenTelemetry for every model call: one span and two metrics, after the GenAI semantic conventions.

When ``opentelemetry-api`` is installed, ``import protokit`` registers :func:`observe_call` as a
call observer (:mod:`protokit.runner.observe`); nothing of OpenTelemetry is imported until a call
ends, and nothing is recorded until the application configures a ``TracerProvider`` or a
``MeterProvider`` (or hands protokit its own with :func:`use_providers`). Without the package
nothing is registered and nothing changes.

Each call (answered, replayed from the cache or failed) becomes a ``CLIENT`` span ``chat {model}``
made after the fact, with the call's own start and end times, in the caller's context, so the
span current where the call was made (a promoted module's ``run()``, a request handler) is its
parent. Attributes: ``gen_ai.operation.name``, ``gen_ai.provider.name``, ``gen_ai.request.model``,
``gen_ai.response.model``, ``gen_ai.usage.input_tokens``/``output_tokens``, the request options
that were set (``gen_ai.request.temperature``, ``max_tokens``, ``top_p``, ...), ``error.type`` and
status ERROR on failure, and protokit's ``protokit.cost_usd``, ``protokit.cached``,
``protokit.attempts`` (provider attempts, 0 for a replay), ``protokit.model`` (a model given
``name=``). Metrics: ``gen_ai.client.operation.duration`` (seconds, every call) and
``gen_ai.client.token.usage`` (``gen_ai.token.type`` input/output; calls that reached the provider
only: a replay consumed no tokens).

Prompts and answers are recorded only when ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``
(``gen_ai.input.messages``, ``gen_ai.output.messages``), and then with every key-shaped value
masked (:func:`protokit.errors.safe_text`). Credentials never reach a span: API keys are not in a
request, and error texts are redacted when the error is built.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import importlib.util
import json
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from protokit.errors import CacheMiss, safe_text
from protokit.runner.observe import CallRecord, add_observer
from protokit.secrets import is_credential_name, looks_like_secret

if TYPE_CHECKING:
    from protokit.models.base import Request

__all__ = ["CAPTURE_CONTENT_ENV", "SCOPE", "available", "install", "module_span", "observe_call", "use_providers"]

CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
SCOPE = "protokit"  # the instrumentation scope of protokit's spans and metrics

# Request options -> their GenAI attribute (set only when the request sets the option).
_OPTION_ATTRIBUTES = {
    "temperature": "gen_ai.request.temperature",
    "max_tokens": "gen_ai.request.max_tokens",
    "top_p": "gen_ai.request.top_p",
    "top_k": "gen_ai.request.top_k",
    "seed": "gen_ai.request.seed",
    "stop": "gen_ai.request.stop_sequences",
}
# The bucket boundaries the conventions advise for the two histograms.
_DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
_MAX_VALUE_CHARS = 1000  # a parameter value longer than this is cut (after its secrets are masked)
_MAX_ATTRIBUTE_SETS = 1024  # distinct metric attribute sets kept built; past it the cache starts again


def available() -> bool:
    """True when ``opentelemetry-api`` can be imported here (found without importing it)."""
    try:
        return importlib.util.find_spec("opentelemetry") is not None
    except (ImportError, ValueError):  # an import hook refused it, or a broken half-import
        return False


def install() -> bool:
    """Register :func:`observe_call` when OpenTelemetry is installed (``import protokit`` does this)."""
    if not available():
        return False
    add_observer(observe_call)
    return True


class _Instruments:
    """A tracer and the two histograms, from one pair of providers, and the metrics' attribute sets."""

    def __init__(self, tracer_provider: Any, meter_provider: Any) -> None:
        from opentelemetry.trace import SpanKind, Status, StatusCode

        self.client, self.status, self.error_code = SpanKind.CLIENT, Status, StatusCode.ERROR
        version = _version()
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.tracer: Any = tracer_provider.get_tracer(SCOPE, version) if tracer_provider is not None else None
        self.duration: Any = None
        self.tokens: Any = None
        if meter_provider is not None:
            meter = meter_provider.get_meter(SCOPE, version)
            self.duration = _histogram(meter, "gen_ai.client.operation.duration", "s", "GenAI operation duration.",
                                       _DURATION_BUCKETS)
            self.tokens = _histogram(meter, "gen_ai.client.token.usage", "{token}",
                                     "Number of input and output tokens used.", _TOKEN_BUCKETS)
        # The few attribute sets the metrics see, built once each: (duration, input tokens, output tokens).
        self._metric_attributes: dict[tuple[Any, ...], tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = {}

    def metric_attributes(self, record: CallRecord, response_model: str | None,
                          error_type: str | None) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """The attributes of the duration and the two token-usage measurements of ``record``."""
        request = record.request
        base_url = getattr(record.model, "base_url", None)
        key = (request.provider, request.model, response_model, base_url, record.cached, error_type)
        found = self._metric_attributes.get(key)
        if found is None:
            common = _common_attributes(request, response_model, base_url)
            duration = {**common, "protokit.cached": record.cached}
            if error_type is not None:
                duration["error.type"] = error_type
            found = (duration, {**common, "gen_ai.token.type": "input"}, {**common, "gen_ai.token.type": "output"})
            if len(self._metric_attributes) >= _MAX_ATTRIBUTE_SETS:
                self._metric_attributes.clear()
            self._metric_attributes[key] = found
        return found


def _version() -> str | None:
    try:
        return importlib.metadata.version("protokit")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree
        return None


def _histogram(meter: Any, name: str, unit: str, description: str, buckets: Sequence[float]) -> Any:
    try:
        return meter.create_histogram(name, unit=unit, description=description,
                                      explicit_bucket_boundaries_advisory=list(buckets))
    except TypeError:  # opentelemetry-api before 1.23 takes no bucket advice
        return meter.create_histogram(name, unit=unit, description=description)


_explicit: tuple[Any, Any] = (None, None)
_global: list[Any] = [None, None]  # the global providers, once set (OpenTelemetry sets each one once)
_current: _Instruments | None = None


def use_providers(tracer_provider: Any = None, meter_provider: Any = None) -> None:
    """Send protokit's spans and metrics to these providers rather than the global ones.

    ``None`` (the default) means the global provider set with ``trace.set_tracer_provider`` /
    ``metrics.set_meter_provider``; ``use_providers()`` goes back to both globals.
    """
    global _explicit, _current
    _explicit = (tracer_provider, meter_provider)
    _current = None


def _live_providers() -> tuple[Any, Any]:
    """The (tracer, meter) providers that record something, None for one that would not."""
    tracer_provider = _explicit[0] or _global[0]
    if tracer_provider is None:
        # An application that configured tracing imported the API already: no import here.
        trace = sys.modules.get("opentelemetry.trace")
        if trace is not None:
            found = trace.get_tracer_provider()
            if type(found) not in (trace.ProxyTracerProvider, trace.NoOpTracerProvider):
                tracer_provider = _global[0] = found
    meter_provider = _explicit[1] or _global[1]
    if meter_provider is None:
        metrics = sys.modules.get("opentelemetry.metrics")
        if metrics is not None:
            found = metrics.get_meter_provider()
            # Until one is set the API hands out a private proxy; nothing it records is kept.
            if type(found).__name__ not in ("_ProxyMeterProvider", "NoOpMeterProvider"):
                meter_provider = _global[1] = found
    return tracer_provider, meter_provider


def _instruments() -> _Instruments | None:
    global _current
    tracer_provider, meter_provider = _live_providers()
    if tracer_provider is None and meter_provider is None:
        return None
    current = _current
    if current is None or current.tracer_provider is not tracer_provider or (
            current.meter_provider is not meter_provider):
        current = _current = _Instruments(tracer_provider, meter_provider)
    return current


def observe_call(record: CallRecord) -> None:
    """The call observer: one span and the metrics for ``record`` (nothing when no provider records)."""
    instruments = _instruments()
    if instruments is None:
        return
    response = record.response
    response_model = response.provider_model if response is not None else None
    error_type = _error_type(record.error) if record.error is not None else None
    if instruments.tracer is not None:
        _span(instruments, record, response_model, error_type)
    if instruments.duration is not None:
        duration, tokens_in, tokens_out = instruments.metric_attributes(record, response_model, error_type)
        instruments.duration.record(record.seconds, duration)
        if response is not None and not response.cached:  # a replay used no tokens
            if response.input_tokens is not None:
                instruments.tokens.record(response.input_tokens, tokens_in)
            if response.output_tokens is not None:
                instruments.tokens.record(response.output_tokens, tokens_out)


def _common_attributes(request: Request, response_model: str | None, base_url: Any) -> dict[str, Any]:
    """What the span and both metrics share: operation, provider, requested and answering model, server."""
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": request.provider,
        "gen_ai.request.model": request.model,
    }
    if response_model:
        attributes["gen_ai.response.model"] = response_model
    if isinstance(base_url, str) and base_url:
        attributes.update(_server(base_url))
    return attributes


@functools.lru_cache(maxsize=64)
def _server(base_url: str) -> dict[str, Any]:
    """``server.address`` and ``server.port`` from ``base_url=``; its user-info (a password) never leaves it."""
    try:
        parts = urlsplit(base_url)
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        return {}
    if not parts.hostname:
        return {}
    return {"server.address": parts.hostname, **({"server.port": port} if port else {})}


def _span(instruments: _Instruments, record: CallRecord, response_model: str | None, error_type: str | None) -> None:
    request, response, error = record.request, record.response, record.error
    span = instruments.tracer.start_span(f"chat {request.model}", kind=instruments.client,
                                         start_time=record.start_ns)
    if not span.is_recording():
        span.end(end_time=record.end_ns)
        return
    attributes = _common_attributes(request, response_model, getattr(record.model, "base_url", None))
    for option, value in request.options.items():
        name = _OPTION_ATTRIBUTES.get(option)
        if name is not None and value is not None:
            attributes[name] = [value] if option == "stop" and isinstance(value, str) else value
    if request.stream:
        attributes["gen_ai.request.stream"] = True
    if record.model.label:  # two candidates of one model under two names: which one this was
        attributes["protokit.model"] = record.model.id
    attributes["protokit.cached"] = record.cached
    attributes["protokit.attempts"] = record.attempts
    if request.sample:
        attributes["protokit.sample"] = request.sample
    if response is not None:
        for name, value in (("gen_ai.usage.input_tokens", response.input_tokens),
                            ("gen_ai.usage.output_tokens", response.output_tokens),
                            ("gen_ai.usage.cache_read.input_tokens", response.cached_input_tokens),
                            ("gen_ai.usage.reasoning.output_tokens", response.reasoning_tokens),
                            ("protokit.cost_usd", response.cost_usd)):
            if value is not None:
                attributes[name] = value
        if response.finish_reason:
            attributes["gen_ai.response.finish_reasons"] = (response.finish_reason,)
        if response.served_by and response.served_by != record.model.id:
            attributes["protokit.served_by"] = response.served_by
    if _capture_content():
        attributes["gen_ai.input.messages"] = json.dumps([_message(m) for m in request.messages], ensure_ascii=False)
        if response is not None:
            output = _message({"role": "assistant", "content": response.text,
                               "tool_calls": getattr(response, "tool_calls", None)})
            if response.finish_reason:
                output["finish_reason"] = response.finish_reason
            attributes["gen_ai.output.messages"] = json.dumps([output], ensure_ascii=False)
    if error is not None:
        attributes["error.type"] = error_type
        span.set_status(instruments.status(instruments.error_code, _describe(error)))
    span.set_attributes(attributes)
    span.end(end_time=record.end_ns)


def _message(message: Mapping[str, Any]) -> dict[str, Any]:
    """A chat message in the conventions' form (``role`` and typed ``parts``), every text masked.

    Text becomes ``text`` parts, an image only its kind (never its bytes or path), tool calls
    ``tool_call`` parts and a tool's answer a ``tool_call_response`` part.
    """
    role, content = message.get("role"), message.get("content")
    parts: list[dict[str, Any]] = []
    for part in ([{"type": "text", "text": content}] if isinstance(content, str) else content or ()):
        if not isinstance(part, Mapping):
            continue
        if part.get("type") != "text":
            parts.append({"type": str(part.get("type"))})
        elif part.get("text"):
            text = safe_text(str(part["text"]))
            parts.append({"type": "tool_call_response", "id": message.get("tool_call_id"), "response": text}
                         if role == "tool" else {"type": "text", "content": text})
    for call in message.get("tool_calls") or ():
        arguments = call.get("arguments")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments, ensure_ascii=False, default=str)
        parts.append({"type": "tool_call", "id": call.get("id"), "name": call.get("name"),
                      "arguments": safe_text(arguments)})
    return {"role": role, "parts": parts}


def _capture_content() -> bool:
    return os.environ.get(CAPTURE_CONTENT_ENV, "").strip().lower() == "true"


def _describe(error: BaseException) -> str:
    """The status description of a failed call: its (redacted) text, but for a CacheMiss, which quotes the prompt."""
    if isinstance(error, CacheMiss) and not _capture_content():
        return "no recorded response for this request (replay mode)"
    return safe_text(str(error))[:_MAX_VALUE_CHARS]


def _error_type(error: BaseException) -> str:
    """The canonical name of the error's class: low-cardinality, as ``error.type`` wants."""
    return type(error).__qualname__


# -- the span of a promoted module's run() ------------------------------------------------------

@contextlib.contextmanager
def module_span(name: str, parameters: Mapping[str, Any]) -> Iterator[None]:
    """A span ``name`` around the block, current inside it, its non-secret ``parameters`` as attributes.

    The model calls made in the block are its children. A no-op without OpenTelemetry or when
    no tracer provider records. A parameter is left out when its name is credential-like
    (``api_key``, ``db_password``) or its value looks like a secret; other values become
    ``protokit.parameter.NAME`` (lists of one scalar type as they are, anything else as text).
    """
    instruments = _instruments()
    tracer = instruments.tracer if instruments is not None else None
    if tracer is None:
        yield
        return
    from opentelemetry.trace import Status, StatusCode

    attributes = {f"protokit.parameter.{key}": value for key, value in
                  ((key, _parameter_value(key, value)) for key, value in parameters.items()) if value is not None}
    with tracer.start_as_current_span(name, attributes=attributes, record_exception=False,
                                      set_status_on_exception=False) as span:
        try:
            yield
        except BaseException as exc:
            span.set_attribute("error.type", _error_type(exc))
            span.set_status(Status(StatusCode.ERROR, safe_text(str(exc))[:_MAX_VALUE_CHARS]))
            raise


def _parameter_value(name: str, value: Any) -> Any:
    """``value`` as a span attribute value; None to leave it out (a credential, None, or secret-shaped)."""
    if value is None or is_credential_name(name):
        return None
    if isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        text = value
    elif isinstance(value, (list, tuple)) and value and len({type(v) for v in value}) == 1 and isinstance(
            value[0], (bool, int, float, str)):
        if isinstance(value[0], str) and any(looks_like_secret(v) for v in value):
            return None
        return [v[:_MAX_VALUE_CHARS] if isinstance(v, str) else v for v in value]
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)
        except (TypeError, ValueError):
            text = repr(value)
    if looks_like_secret(text):
        return None
    return safe_text(text)[:_MAX_VALUE_CHARS]
