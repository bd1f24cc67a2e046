"""The Model base class, the Request a call is made of and the Response it gives.

A provider subclasses :class:`Model` and implements one method, ``execute``: an
async generator that sends one request and yields the answer's text in chunks
(one chunk when not streaming), filling usage into the :class:`Usage` it is
given. Everything else (options, timing, cost, cache, retries) is shared.

The model layer does not import the cache or the runner. A call goes through a
*pipeline* (cache lookup, retries, budget, recording): the package root sets the
process default (the runner's) with :func:`set_pipeline`, and a run hands its own (its retry
policy, timeout and budget) down to every call made inside it, fallback members
and judge calls included, with :func:`use_pipeline`.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from protokit import _aio
from protokit.errors import ConfigError, SchemaError
from protokit.models import images, prices, structured
from protokit.models import tools as tool_defs
from protokit.models.messages import Message, Prompt, normalize_messages
from protokit.secrets import looks_like_key

__all__ = [
    "COMMON_OPTIONS",
    "AsyncStream",
    "Model",
    "Request",
    "Response",
    "Stream",
    "Usage",
    "current_pipeline",
    "normalize_messages",
    "run_pipeline",
    "set_pipeline",
    "use_pipeline",
]


# Option name -> (accepted types, check, what a valid value looks like).
_OPTION_RULES: dict[str, tuple[tuple[type, ...], Callable[[Any], bool], str]] = {
    "temperature": ((int, float), lambda v: 0 <= v <= 2, "a number from 0 to 2"),
    "max_tokens": ((int,), lambda v: v > 0, "a positive integer"),
    "top_p": ((int, float), lambda v: 0 <= v <= 1, "a number from 0 to 1"),
    "top_k": ((int,), lambda v: v > 0, "a positive integer"),
    "stop": ((str, list, tuple), lambda v: isinstance(v, str) or all(isinstance(s, str) for s in v),
             "a string or a list of strings"),
    "seed": ((int,), lambda v: True, "an integer"),
    "response_format": ((dict, str), lambda v: True, 'a dict such as {"type": "json_object"} or "json"'),
}
# tools and schema are checked and turned into JSON by check_options (protokit.models.tools, .structured).
COMMON_OPTIONS = frozenset({"temperature", "max_tokens", "top_p", "stop", "seed", "response_format", "tools",
                            "schema"})
DEFAULT_MAX_STEPS = 5


@dataclass(frozen=True)
class Request:
    """One call as the cache sees it: what was asked, of whom, which sample."""

    provider: str
    model: str
    messages: tuple[Message, ...]
    options: Mapping[str, Any]
    sample: int = 0
    stream: bool = False
    # Outside the key: the Python side of tools= and schema= (their JSON forms are in options) and
    # how many model calls a tool loop may make (1: no loop; see protokit.models.tools.run_tools).
    functions: Mapping[str, Callable[..., Any]] = field(default_factory=dict, compare=False, repr=False)
    schema_class: type | None = field(default=None, compare=False, repr=False)
    max_steps: int = field(default=1, compare=False)

    def key_dict(self) -> dict[str, Any]:
        """The part of the request that identifies it (no base_url, no keys, no stream flag)."""
        return {
            "provider": self.provider,
            "model": self.model,
            # An image is keyed by its hash, never its bytes or path (protokit.models.images).
            "messages": [{**m, "content": images.key_content(m["content"])} for m in self.messages],
            "options": dict(self.options),
            "sample": self.sample,
        }


@dataclass
class Usage:
    """Token counts and provider details an adapter fills in during ``execute``."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_input_tokens: int | None = None
    reasoning_tokens: int | None = None
    finish_reason: str | None = None
    provider_model: str | None = None
    raw: Any = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Response:
    """The answer to one call, with its timing, tokens and cost."""

    text: str
    model: str
    latency_s: float
    ttft_s: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_input_tokens: int | None = None
    reasoning_tokens: int | None = None
    cost_usd: float | None = None
    cached: bool = False
    finish_reason: str | None = None
    provider_model: str | None = None
    sample: int = 0
    key: str | None = None
    secret_shaped: bool = False  # the answer looks like a live key (kept verbatim; see protokit.cache)
    served_by: str | None = None
    price_date: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # [{"name": str, "arguments": dict}]
    parsed: Any = None  # the answer checked against schema=: a dict, or an instance of the pydantic class
    # The provider's answer as its decoded JSON (a dict) for a live call not streamed; None when replayed.
    raw: Any = field(default=None, repr=False, compare=False)

    def __str__(self) -> str:
        return self.text

    def entry(self) -> dict[str, Any]:
        """What the cache stores for this response (never the raw object or any key).

        ``tool_calls`` only when there are some (so entries without tools stay as they were);
        ``parsed`` never: it is checked again from the text on replay, giving the same value or error.
        """
        entry: dict[str, Any] = {
            "text": self.text,
            "model": self.provider_model,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "cost_usd": self.cost_usd,
            "latency_s": self.latency_s,
            "ttft_s": self.ttft_s,
            "finish_reason": self.finish_reason,
            "price_date": self.price_date,
            "secret_shaped": self.secret_shaped,  # the cache keeps it only when true
        }
        if self.tool_calls:
            entry["tool_calls"] = [{"name": c["name"], "arguments": c["arguments"]} for c in self.tool_calls]
        return entry

    @classmethod
    def from_entry(cls, model_id: str, entry: Mapping[str, Any], *, sample: int, key: str) -> Response:
        """A replayed response: ``cached=True``, the original latency, cost and price date."""
        return cls(
            text=entry["text"],
            model=model_id,
            latency_s=float(entry.get("latency_s") or 0.0),
            ttft_s=entry.get("ttft_s"),
            input_tokens=entry.get("input_tokens"),
            output_tokens=entry.get("output_tokens"),
            cached_input_tokens=entry.get("cached_input_tokens"),
            reasoning_tokens=entry.get("reasoning_tokens"),
            cost_usd=entry.get("cost_usd"),
            cached=True,
            finish_reason=entry.get("finish_reason"),
            provider_model=entry.get("model"),
            sample=sample,
            key=key,
            secret_shaped=bool(entry.get("secret_shaped")),
            served_by=model_id,
            price_date=entry.get("price_date"),
            tool_calls=[{"name": c["name"], "arguments": dict(c["arguments"])} for c in entry.get("tool_calls") or ()],
        )


# The pipeline turns (model, request, on_chunk) into a Response. The default calls
# the provider directly; protokit.runner installs the cached, retrying one, and a
# run scopes its own to the calls made inside it (a context variable, so concurrent
# runs and threads never see each other's).
Pipeline = Callable[["Model", Request, "Callable[[str], None] | None"], Coroutine[Any, Any, Response]]


async def _direct(model: Model, request: Request, on_chunk: Callable[[str], None] | None) -> Response:
    if request.max_steps > 1:
        return await tool_defs.run_tools(model, request, lambda step: _direct(model, step, on_chunk))
    return model.finish(request, await model.call(request, on_chunk))


_pipeline: Pipeline = _direct
_scoped: contextvars.ContextVar[Pipeline | None] = contextvars.ContextVar("protokit_pipeline", default=None)


def set_pipeline(pipeline: Pipeline) -> None:
    """Install the process-wide default pipeline (``protokit/__init__.py`` installs the runner's)."""
    global _pipeline
    _pipeline = pipeline


def current_pipeline() -> Pipeline:
    """The pipeline of the run this code is in, else the process default."""
    return _scoped.get() or _pipeline


@contextlib.contextmanager
def use_pipeline(pipeline: Pipeline) -> Iterator[None]:
    """Make ``pipeline`` the one calls go through in this context (and tasks started from it)."""
    token = _scoped.set(pipeline)
    try:
        yield
    finally:
        _scoped.reset(token)


async def run_pipeline(model: Model, request: Request,
                       on_chunk: Callable[[str], None] | None = None) -> Response:
    """Make one call through the current pipeline (cache, retries, budget), as complete() does."""
    return await current_pipeline()(model, request, on_chunk)


class Model:
    """A model that can be asked for completions; subclass it to add a provider.

    Subclasses set ``provider`` and implement :meth:`execute`. Class attributes
    declare capabilities: ``options`` (the options it accepts), ``key_env_var`` and
    ``base_url_env_var`` (where its key and its server come from), ``cacheable`` (whether calls go through the cache),
    ``composite`` (it calls other models, each through the pipeline, so the pipeline
    does not retry, time or budget it as a whole).
    """

    provider: ClassVar[str] = "base"
    options: ClassVar[frozenset[str]] = COMMON_OPTIONS
    key_env_var: ClassVar[str | None] = None
    base_url_env_var: ClassVar[str | None] = None
    cacheable: ClassVar[bool] = True
    composite: ClassVar[bool] = False

    def __init__(
        self,
        name: str,
        *,
        label: str | None = None,
        price: Mapping[str, float] | None = None,
        timeout: float | None = 60.0,
        run_tools: bool = False,
        max_steps: int | None = None,
        **options: Any,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"a {self.provider} model needs a name, e.g. '{self.provider}:NAME'")
        if label is not None and (not isinstance(label, str) or not label.strip()):
            raise ConfigError(f"name= for {self.provider}:{name} must be a non-empty string, got {label!r}")
        self.name = name
        self.label = label
        self.timeout = timeout
        self.defaults = self.check_options(options)
        self._bound = _bindings(options)
        self._max_steps = _steps(run_tools, max_steps, self.id)
        # A price given here belongs to this model object only, never to the global table.
        self.price = prices.check_price(self.spec, dict(price)) if price is not None else None

    @property
    def spec(self) -> str:
        """``provider:name``: what the provider is asked for, and the key of the price table."""
        return f"{self.provider}:{self.name}"

    @property
    def id(self) -> str:
        """The model's id in results and reports: its ``name=`` if given, else ``provider:name``."""
        return self.label or self.spec

    def __repr__(self) -> str:
        named = f", name={self.label!r}" if self.label else ""
        opts = "".join(f", {k}={v!r}" for k, v in sorted(self.defaults.items()))
        return f"pk.model({self.spec!r}{named}{opts})"

    # -- prices ----------------------------------------------------------------
    def price_entry(self) -> dict[str, float] | None:
        """This model's price (its own, else the table's), USD per 1M tokens; None when unknown."""
        return dict(self.price) if self.price is not None else prices.get_price(self.spec)

    def unpriced(self) -> list[str]:
        """Ids of the models behind this one whose price is unknown (a budget cannot hold them)."""
        return [] if self.price_entry() is not None else [self.spec]

    def cost(self, input_tokens: int | None, output_tokens: int | None, cached_input_tokens: int | None = None,
             reasoning_tokens: int | None = None) -> tuple[float | None, str | None]:
        """(cost in USD, where its price came from) for the given usage; (None, None) when unknown."""
        usd = prices.cost(self.spec, input_tokens, output_tokens, cached_input_tokens, reasoning_tokens,
                          price=self.price)
        if usd is None:
            return None, None
        return usd, ("model" if self.price is not None else prices.price_date(self.spec))

    def estimate_cost(self, request: Request, output_tokens: int) -> float:
        """An upper-bound guess of one call's cost before it is sent (0.0 when the price is unknown)."""
        price = self.price_entry()
        if price is None:
            return 0.0
        tin = prices.estimate_input_tokens(sum(images.content_chars(m["content"]) for m in request.messages))
        tout = int(request.options.get("max_tokens") or output_tokens)
        return (tin * price["input"] + tout * price["output"]) / 1_000_000

    # -- options ---------------------------------------------------------------
    def check_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """Validate options up front; an unknown or ill-typed one is a ConfigError naming the fix."""
        checked: dict[str, Any] = {}
        for key, value in options.items():
            if value is None:
                continue
            if key not in self.options:
                known = ", ".join(sorted(self.options))
                raise ConfigError(f"unknown option {key!r} for {self.id}; known options: {known}")
            if key == "tools":  # JSON definitions here; the functions ride beside the request
                checked[key] = tool_defs.check_tools(value)[0]
                continue
            if key == "schema":  # the JSON schema here; a pydantic class rides beside the request
                checked[key] = structured.check_schema(value)[0]
                continue
            types, ok, shape = _OPTION_RULES.get(key, ((object,), lambda v: True, "a value"))
            if isinstance(value, bool) or not isinstance(value, types) or not ok(value):
                raise ConfigError(f"option {key}={value!r} for {self.id} must be {shape}")
            checked[key] = list(value) if isinstance(value, tuple) else value
        return checked

    def request(self, prompt: Prompt, *, system: str | None = None, sample: int = 0,
                stream: bool = False, run_tools: bool | None = None, max_steps: int | None = None,
                **options: Any) -> Request:
        """Build the Request for a prompt: messages normalized, options merged and validated.

        ``tools=`` and ``schema=`` given here replace the model's own; ``run_tools=True`` (with
        ``max_steps``) runs the Python tools the model calls and asks it again, at most that many calls.
        """
        if not isinstance(sample, int) or sample < 0:
            raise ConfigError(f"sample must be a non-negative integer, got {sample!r}")
        merged = {**self.defaults, **self.check_options(options)}
        functions, schema_class = self._bound
        given = _bindings(options)
        if options.get("tools") is not None:
            functions = given[0]
        if options.get("schema") is not None:
            schema_class = given[1]
        if "schema" in merged and "response_format" in merged:
            raise ConfigError(f"{self.id}: schema= and response_format= both ask for the answer's form; use one")
        steps = self._max_steps if run_tools is None and max_steps is None else \
            _steps(run_tools if run_tools is not None else self._max_steps > 1, max_steps, self.id)
        if steps > 1 and not functions:
            raise ConfigError(f"{self.id}: run_tools=True needs Python functions in tools= (JSON definitions "
                              "cannot be run)")
        return Request(self.provider, self.name, normalize_messages(prompt, system), merged, sample, stream,
                       functions=functions, schema_class=schema_class, max_steps=steps)

    def finish(self, request: Request, response: Response) -> Response:
        """Check the answer against the request's ``schema=`` and set ``parsed``; SchemaError when it does not match.

        Called on every answer, live or replayed, after the cache (the answer is recorded either way).
        An answer that is only tool calls (the model asked for a tool first) is not checked.
        """
        schema = request.options.get("schema")
        if schema is None or (response.tool_calls and not response.text.strip()):
            return response
        try:
            response.parsed = structured.parse_answer(response.text, schema, request.schema_class, self.id)
        except SchemaError as exc:
            exc.response = response
            raise
        return response

    # -- the one method a provider implements -----------------------------------
    def execute(self, request: Request, usage: Usage) -> AsyncIterator[str]:
        """Send one request and yield the answer's text (in chunks when streaming)."""
        raise NotImplementedError

    async def call(self, request: Request, on_chunk: Callable[[str], None] | None = None) -> Response:
        """One provider call, timed and priced; no cache, no retry (the runner adds those)."""
        usage = Usage()
        parts: list[str] = []
        start = time.perf_counter()
        ttft: float | None = None
        async for chunk in self.execute(request, usage):
            if ttft is None and request.stream:
                ttft = time.perf_counter() - start
            parts.append(chunk)
            if on_chunk is not None:
                on_chunk(chunk)
        latency = time.perf_counter() - start
        cost, price_date = self.cost(usage.input_tokens, usage.output_tokens, usage.cached_input_tokens,
                                     usage.reasoning_tokens)
        text = "".join(parts)
        return Response(
            text=text,
            model=self.id,
            latency_s=latency,
            ttft_s=ttft,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_input_tokens=usage.cached_input_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            cost_usd=cost,
            finish_reason=usage.finish_reason,
            provider_model=usage.provider_model,
            sample=request.sample,
            secret_shaped=looks_like_key(text),
            served_by=self.id,
            price_date=price_date,
            tool_calls=usage.tool_calls,
            raw=usage.raw,
        )

    # -- public calling API ----------------------------------------------------
    async def acomplete(self, prompt: Prompt, *, system: str | None = None, sample: int = 0,
                        **options: Any) -> Response:
        """Ask the model once, asynchronously; goes through the cache."""
        return await run_pipeline(self, self.request(prompt, system=system, sample=sample, **options))

    def complete(self, prompt: Prompt, *, system: str | None = None, sample: int = 0,
                 **options: Any) -> Response:
        """Ask the model once; works in plain Python and inside a running Jupyter loop."""
        request = self.request(prompt, system=system, sample=sample, **options)
        # Resolved here, in the caller's context: the background loop's thread has its own.
        pipeline = current_pipeline()
        return _aio.run_sync(pipeline(self, request, None))

    def astream(self, prompt: Prompt, *, system: str | None = None, sample: int = 0,
                **options: Any) -> AsyncStream:
        """Stream the answer's text chunks asynchronously; ``.response`` is set at the end."""
        return AsyncStream(self, self.request(prompt, system=system, sample=sample, stream=True, **options))

    def stream(self, prompt: Prompt, *, system: str | None = None, sample: int = 0,
               **options: Any) -> Stream:
        """Stream the answer's text chunks; ``.response`` is set once the stream is exhausted."""
        return Stream(self.astream(prompt, system=system, sample=sample, **options))


def _bindings(options: Mapping[str, Any]) -> tuple[dict[str, Callable[..., Any]], type | None]:
    """The Python side of ``tools=`` and ``schema=``: {name: function} and the pydantic class (or None)."""
    tools, schema = options.get("tools"), options.get("schema")
    functions = tool_defs.check_tools(tools)[1] if tools is not None else {}
    return functions, structured.check_schema(schema)[1] if schema is not None else None


def _steps(run_tools: Any, max_steps: Any, model_id: str) -> int:
    """How many model calls one request may take: 1 without ``run_tools``, else ``max_steps`` (default 5)."""
    if not isinstance(run_tools, bool):
        raise ConfigError(f"run_tools for {model_id} must be True or False, got {run_tools!r}")
    if max_steps is not None and (isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1):
        raise ConfigError(f"max_steps for {model_id} must be a positive integer, got {max_steps!r}")
    if not run_tools:
        if max_steps is not None:
            raise ConfigError(f"max_steps= bounds run_tools=True for {model_id}; add run_tools=True")
        return 1
    return max_steps if max_steps is not None else DEFAULT_MAX_STEPS


class AsyncStream:
    """Async iterator over text chunks; a cache hit yields the whole text at once."""

    def __init__(self, model: Model, request: Request) -> None:
        self.model = model
        self.request = request
        self._pipeline = current_pipeline()  # the creator's context, not the loop thread's
        self.response: Response | None = None
        self._gen: AsyncIterator[str] | None = None

    def __aiter__(self) -> AsyncIterator[str]:
        if self._gen is None:
            self._gen = self._run()
        return self._gen

    async def __anext__(self) -> str:
        return await self.__aiter__().__anext__()

    async def _run(self) -> AsyncIterator[str]:
        import asyncio

        queue: asyncio.Queue[str | None] = asyncio.Queue()
        task = asyncio.ensure_future(self._pipeline(self.model, self.request, queue.put_nowait))
        task.add_done_callback(lambda _t: queue.put_nowait(None))
        sent = False
        try:
            while True:
                chunk = await queue.get()
                if chunk is None:
                    break
                sent = True
                yield chunk
            self.response = task.result()
            if not sent and self.response.text:
                yield self.response.text  # replayed from the cache: no chunks were streamed
        finally:
            if not task.done():
                task.cancel()


class Stream:
    """Synchronous iterator over text chunks, driven on protokit's background loop."""

    def __init__(self, inner: AsyncStream) -> None:
        self._inner = inner

    @property
    def response(self) -> Response | None:
        """The full Response, once the stream has been read to the end."""
        return self._inner.response

    def __iter__(self) -> Iterator[str]:
        return _aio.iterate_sync(aiter(self._inner))
