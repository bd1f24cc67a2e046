"""Conversations as cases: a case's ``messages``, and ``turns`` of user messages played one at a time.

With ``prompt=None`` each case is its own prompt, read from two columns:

- ``messages``: a list of chat messages (``system``, ``user``, ``assistant``, and ``tool``
  messages answering an assistant's ``tool_calls``), sent as they are; JSON text of such a list
  is read too (a CSV cell);
- ``turns``: a list of user messages (strings). They are played against each candidate in order,
  after the case's ``messages`` if it has any: turn 0 is asked, its answer goes into the
  conversation as the assistant's reply, then turn 1 is asked, and so on. Each turn is its own
  call (cached, retried and budgeted on its own) and its own results row, with a ``turn`` column
  (0, 1, ...); scorers see the case with ``turn`` set. A turn that fails ends the conversation:
  the later turns are not asked (``error="not_run_turn"``).

Statistics treat a case as the unit: a candidate's score on a case is the mean over its turns
(and samples), so ``summary``, ``compare_pair`` and ``report`` weigh every case alike however
many turns it has. ``cost_per_case`` is the cost of the whole conversation.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from protokit.errors import Cancelled, ConfigError, ProtokitError
from protokit.models import Model, Request
from protokit.models.messages import normalize_messages
from protokit.runner import Call, Outcome

__all__ = ["MESSAGES_COLUMN", "NOT_RUN_TURN", "TURNS_COLUMN", "TURN_COLUMN", "Conversation", "case_conversations",
           "check_messages", "expand", "reply_text"]

MESSAGES_COLUMN = "messages"
TURNS_COLUMN = "turns"
TURN_COLUMN = "turn"  # the results column: which turn a row answers (0, 1, ...)
NOT_RUN_TURN = "not_run_turn"  # the error kind of a turn after one that failed


def _listed(value: Any, cid: Any, column: str) -> list[Any] | None:
    """A list-valued cell (JSON text of a list is read too); None for an empty cell."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    if isinstance(value, Mapping) or not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
        raise ConfigError(f"case {cid!r}: column {column!r} must hold a list (or its JSON text), got "
                          f"{type(value).__name__}")
    return list(value)


def check_messages(messages: Any, cid: Any) -> None:
    """ConfigError naming the case when its messages are not a valid prompt (roles, tool calls, images)."""
    try:
        normalize_messages(messages)
    except ConfigError as exc:
        raise ConfigError(f"case {cid!r}: {exc}") from None


def case_conversations(records: Sequence[Mapping[str, Any]], columns: Sequence[str], ids: Sequence[Any]
                       ) -> tuple[list[list[dict[str, Any]]], list[list[str]] | None]:
    """Each case's messages (``[]`` when it has none) and, with a ``turns`` column, its user turns."""
    has_messages, has_turns = MESSAGES_COLUMN in columns, TURNS_COLUMN in columns
    if not (has_messages or has_turns):
        raise ConfigError("prompt=None takes each case's prompt from its 'messages' column (a list of chat "
                          "messages) and/or its 'turns' column (user turns played one by one); the cases have "
                          f"neither (columns: {', '.join(columns)})")
    histories: list[list[dict[str, Any]]] = []
    turns: list[list[str]] | None = [] if has_turns else None
    for cid, rec in zip(ids, records, strict=True):
        messages = _listed(rec.get(MESSAGES_COLUMN), cid, MESSAGES_COLUMN) if has_messages else None
        if messages:
            check_messages(messages, cid)
        said = _listed(rec.get(TURNS_COLUMN), cid, TURNS_COLUMN) if has_turns else None
        if turns is not None:
            if not said:
                raise ConfigError(f"case {cid!r} has no turns; give at least one user turn (a list of strings)")
            for t in said:
                if not isinstance(t, str) or not t.strip():
                    raise ConfigError(f"case {cid!r}: each turn must be a non-empty string, got {t!r:.80}")
            turns.append(list(said))
        elif not messages:
            raise ConfigError(f"case {cid!r} has no messages; give a non-empty list of chat messages")
        histories.append([dict(m) for m in messages or ()])
    return histories, turns


def reply_text(text: str, tool_calls: Sequence[Mapping[str, Any]]) -> str:
    """What a turn's answer puts into the conversation: its text, or, for an answer made only of tool
    calls, one line per call (``name({...})``). Providers refuse an empty assistant message, and the
    model should see what it did; no tool ran (that is ``run_tools=True``), so no tool result follows."""
    if text or not tool_calls:
        return text
    return "\n".join(f"{c['name']}({json.dumps(c['arguments'], ensure_ascii=False, sort_keys=True)})"
                     for c in tool_calls)


@dataclass
class Conversation:
    """One case's turns played against one candidate (one sample): turn ``k`` is the call tagged ``tag + k``."""

    model: Model
    history: list[dict[str, Any]]
    turns: list[str]
    tag: int
    sample: int = 0
    system: str | None = None
    stream: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)

    def request(self, replies: Sequence[str]) -> Request:
        """The request of turn ``len(replies)``: the history, each earlier turn with its reply, this turn."""
        messages = list(self.history)
        for said, reply in zip(self.turns, replies, strict=False):
            messages += [{"role": "user", "content": said}, {"role": "assistant", "content": reply}]
        messages.append({"role": "user", "content": self.turns[len(replies)]})
        return self.model.request(messages, system=self.system, sample=self.sample, stream=self.stream,
                                  **self.options)

    def call(self, replies: Sequence[str] = ()) -> Call:
        """The call of turn ``len(replies)``; when it ends, the next turn's follows (see ``Call.then``)."""
        turn = len(replies)

        def then(outcome: Outcome) -> Call | None:
            if turn + 1 >= len(self.turns):
                return None
            if outcome.response is None:
                return self._skipped(turn + 1, outcome.call.request, outcome.error)
            try:
                return self.call([*replies, reply_text(outcome.response.text, outcome.response.tool_calls)])
            except ProtokitError as exc:  # the next request cannot be built: that turn, and the rest, fail
                return self._skipped(turn + 1, outcome.call.request, exc, failed=True)

        return Call(self.model, self.request(replies), tag=self.tag + turn, then=then)

    def _skipped(self, turn: int, request: Request, error: ProtokitError | None, *, failed: bool = False) -> Call:
        """Turn ``turn``, not asked: an earlier one failed (or the run was cancelled); ``failed``: this one."""
        kind = getattr(error, "kind", None) or type(error).__name__.lower()
        skip: ProtokitError
        if failed and error is not None:
            skip = error
        elif isinstance(error, Cancelled) and kind == "cancelled":
            skip = Cancelled("the run was cancelled before this turn was asked")
        else:
            skip = Cancelled(f"not asked: an earlier turn of this conversation ended in {kind}")
            skip.kind = NOT_RUN_TURN
        nxt = (lambda _o: self._skipped(turn + 1, request, error)) if turn + 1 < len(self.turns) else None
        return Call(self.model, request, tag=self.tag + turn, then=nxt, skip=skip)


def expand(calls: Sequence[Call], reply: Callable[[Call], str | None], stand_in: Callable[[Call], str]
           ) -> list[Call]:
    """Every call of a plan, chains followed without calling anything (for ``pk.estimate``).

    ``reply(call)`` gives a call's recorded answer (from the cache) or None; a turn after one with
    no recorded answer is built with ``stand_in(call)`` as that answer (a guess of its size).
    """
    out: list[Call] = []
    for call in calls:
        current: Call | None = call
        while current is not None:
            out.append(current)
            if current.then is None:
                break
            text = reply(current)
            answer = text if text is not None else stand_in(current)
            current = current.then(Outcome(current, response=_Answer(answer)))  # type: ignore[arg-type]
    return out


@dataclass
class _Answer:
    """What ``Call.then`` reads of a response: its text (already as it goes back: see :func:`reply_text`)."""

    text: str
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
