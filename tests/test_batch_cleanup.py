"""What a batch leaves at the provider is deleted once its answers are in the cache: OpenAI's input, output
and error files, Anthropic's ended batch. Through the real SDKs against the sandbox's files and batches."""

from __future__ import annotations

import logging
import sqlite3

import anthropic
import openai
import pytest

import protokit as pk
from protokit.batch import openai as openai_batches
from protokit.errors import ServerError

KEY = "sandbox-key"
CASES = [{"q": f"question {i}"} for i in range(8)]


def models(sb, *specs: str) -> list[pk.Model]:
    return [pk.model(s, base_url=sb.openai_base_url if s.startswith("openai:") else sb.anthropic_base_url,
                     api_key=KEY) for s in specs]


def oai(sb) -> openai.OpenAI:
    return openai.OpenAI(base_url=sb.openai_base_url, api_key=KEY, max_retries=0)


def run_files(sb, run_id: str) -> tuple[set[str], set[str]]:
    """(the files the run's OpenAI batches used, those of them the sandbox still holds)."""
    client = oai(sb)
    used = {f for b in client.batches.list().data if (b.metadata or {}).get("protokit_run") == run_id
            for f in (b.input_file_id, b.output_file_id, b.error_file_id) if f}
    return used, used & {f.id for f in client.files.list().data}


def job_ids(run_id: str, provider: str) -> list[str]:
    with sqlite3.connect(pk.cache.get_cache().path) as conn:
        return [r[0] for r in conn.execute("SELECT id FROM batch_jobs WHERE run_id = ? AND provider = ?",
                                           (run_id, provider))]


def test_after_a_batch_compare_the_provider_holds_none_of_the_runs_files_or_batches(sb, caplog):
    sb.set_faults("500=0.3", seed=1)  # some requests fail: the batch has an error file too
    caplog.set_level(logging.WARNING, logger="protokit")
    cmp = pk.compare(models(sb, "openai:gpt-4.1-mini", "anthropic:claude-haiku-4-5"), "{q}", CASES, batch=True)
    r = cmp.results
    assert cmp.status == "finished" and r["error"].notna().any() and r["error"].isna().any()

    used, left = run_files(sb, cmp.run_id)
    assert len(used) == 3 and left == set()  # input, output and error file: all deleted
    (batch_id,) = job_ids(cmp.run_id, "anthropic")
    with pytest.raises(anthropic.NotFoundError):
        anthropic.Anthropic(base_url=sb.anthropic_base_url, api_key=KEY, max_retries=0).messages.batches.retrieve(
            batch_id)
    assert not [rec for rec in caplog.records if rec.getMessage().startswith("batch cleanup:")]

    # Nothing needed them: the answers replay from the cache, the failed requests are sent again.
    sb.set_faults(None)
    sb.reset_stats()
    again = pk.compare(models(sb, "openai:gpt-4.1-mini", "anthropic:claude-haiku-4-5"), "{q}", CASES, batch=True)
    assert again.results["error"].isna().all()
    assert again.results.loc[r["error"].isna(), "output"].tolist() == r.loc[r["error"].isna(), "output"].tolist()
    assert sb.stats()["requests"] == int(r["error"].notna().sum())
    assert run_files(sb, again.run_id)[1] == set()


def test_a_failed_delete_is_one_log_line_and_the_run_keeps_its_answers(sb, caplog, monkeypatch):
    async def refused(model, file_id):  # what the SDK raises on a 500, as protokit classifies it
        raise ServerError(f"{model.id}: HTTP 500 deleting {file_id}", status=500, model=model.id)

    monkeypatch.setattr(openai_batches, "_delete", refused)
    caplog.set_level(logging.WARNING, logger="protokit")
    cmp = pk.compare(models(sb, "openai:echo"), "{q}", CASES[:2], batch=True)
    assert cmp.status == "finished" and cmp.results["output"].tolist() == ["question 0", "question 1"]
    lines = [rec.getMessage() for rec in caplog.records if rec.getMessage().startswith("batch cleanup:")]
    assert len(lines) == 1 and "\n" not in lines[0], lines
    (job,) = job_ids(cmp.run_id, "openai")
    assert lines[0].startswith(f"batch cleanup: openai batch {job}: openai:echo: could not delete file ")
    assert "its answers are in the cache" in lines[0]
    used, left = run_files(sb, cmp.run_id)
    assert left == used and len(used) == 2  # left where they were, nothing lost


def test_with_the_cache_off_the_files_stay_at_the_provider(sb):
    pk.cache.configure(mode="off")
    cmp = pk.compare(models(sb, "openai:echo"), "{q}", CASES[:2], batch=True)
    assert cmp.results["output"].tolist() == ["question 0", "question 1"]
    # No run id (nothing is stored): find the batch by its input.
    client = oai(sb)
    newest = client.batches.list().data[0]
    assert client.files.content(newest.input_file_id).text.count("question") == 2
    assert newest.output_file_id and client.files.retrieve(newest.output_file_id).id == newest.output_file_id


# -- the sandbox's delete endpoints, through the SDKs -----------------------------------------------------------

def test_sandbox_deletes_a_file_as_openai_answers(sb):
    client = oai(sb)
    upload = client.files.create(file=("in.jsonl", b'{"x": 1}\n'), purpose="batch")
    assert upload.id in {f.id for f in client.files.list().data}
    deleted = client.files.delete(upload.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (upload.id, "file", True)
    for call in (client.files.retrieve, client.files.delete):
        with pytest.raises(openai.NotFoundError):
            call(upload.id)
    with pytest.raises(openai.NotFoundError):
        client.files.delete("file-nope")


def test_sandbox_deletes_an_ended_anthropic_batch_only(sb):
    sb.set_batch_delay(30)
    client = anthropic.Anthropic(base_url=sb.anthropic_base_url, api_key=KEY, max_retries=0)
    batch = client.messages.batches.create(requests=[
        {"custom_id": "r0", "params": {"model": "echo", "max_tokens": 20, "messages": [{"role": "user",
                                                                                       "content": "hi"}]}}])
    with pytest.raises(anthropic.BadRequestError, match="cancel it before deleting"):
        client.messages.batches.delete(batch.id)
    client.messages.batches.cancel(batch.id)
    deleted = client.messages.batches.delete(batch.id)
    assert (deleted.id, deleted.type) == (batch.id, "message_batch_deleted")
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve(batch.id)
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.delete(batch.id)


def test_a_batch_the_provider_fails_leaves_no_input_file_behind(sb, monkeypatch):
    """A batch that fails validation never ran: its rows say why, and the uploaded prompts are deleted."""
    made = openai_batches.OpenAIBatches.line

    def off_endpoint(self, model, request, custom_id):  # a line the provider refuses: the batch fails
        return {**made(self, model, request, custom_id), "url": "/v1/embeddings"}

    monkeypatch.setattr(openai_batches.OpenAIBatches, "line", off_endpoint)
    cmp = pk.compare(models(sb, "openai:gpt-4.1-mini"), "{q}", CASES[:3], batch=True)
    r = cmp.results
    assert r["error"].notna().all() and r["error_message"].str.contains("failed batch").all()
    assert r["error_message"].str.contains("invalid_url|must be method POST", regex=True).all()
    used, left = run_files(sb, cmp.run_id)
    assert len(used) == 1 and left == set()  # the input file was the only one, and it is gone
