"""Hostile model answers: each must be recorded and replayed byte for byte, and escaped in HTML.

``ANSWERS`` maps a short name to the text. Key-shaped values are built at import time, so
the repository holds no key-shaped literal. Loaded by path (tests/test_replay_exact.py),
so this folder needs no ``__init__``.
"""

from __future__ import annotations

OPENAI_KEY = "sk-" + "proj-" + "Zq9" * 12
ANTHROPIC_KEY = "sk-" + "ant-api03-" + "Wm4" * 14
PLAIN_KEY = "sk-" + "Tr5" * 10
AWS_KEY_ID = "AKIA" + "Q7XZ" * 4

ANSWERS: dict[str, str] = {
    # A model may well answer with something shaped like a key: kept verbatim, only flagged.
    "openai_key": OPENAI_KEY,
    "anthropic_key_in_prose": f"Your key is {ANTHROPIC_KEY}, keep it safe.",
    "plain_key_in_code": f'client = OpenAI(api_key="{PLAIN_KEY}")',
    "aws_key_id": f"aws_access_key_id = {AWS_KEY_ID}",
    "bearer_header": "Authorization: Bearer " + "abc123XYZ" * 4,
    # URL slugs that a sloppy key pattern (sk-...) used to eat.
    "url_slug_task": "See https://example.com/blog/task-management-best-practices for more.",
    "url_slug_risk": "https://example.org/risk-assessment-checklist-for-small-teams-2024",
    "url_slug_mask": "https://example.net/docs/ask-the-expert-about-desk-setup-ergonomics?ref=disk-cleanup",
    "url_userinfo": "Clone https://user:not-a-secret@git.example.com/repo.git",
    # Text that breaks naive storage, JSON handling or SQL.
    "sql": "'); DROP TABLE entries;--",
    "sql_quotes": "Robert'); DELETE FROM compare_rows WHERE 1=1; -- \"quoted\" `backticks`",
    "json_in_text": '{"text": "nested", "entries": [1, 2, {"key": null}], "protokit_cassette": 1}',
    "json_escapes": 'a\\"b\\\\c \\u0000 \\n literal backslashes',
    "nul": "before\x00after\x00",
    "control_chars": "tab\tcr\rlf\nvt\x0bff\x0cesc\x1b[31mred\x1b[0m bell\x07",
    "crlf_lines": "line one\r\nline two\r\n\r\nline four",
    "only_whitespace": " \n\t \n",
    "empty": "",
    "unicode_mix": "naïve café — 東京 🙂 👩‍👩‍👧 العربية עברית ∑∫√ \u200b zero-width \ufeff bom",
    "combining": "e\u0301 vs \u00e9, A\u030a vs \u00c5",
    "rtl_override": "invoice \u202egnp.exe",
    "astral": "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟘𝟙𝟚 \U0010fffd",
    "line_separators": "a\u2028b\u2029c\u0085d",
    "html_script": "<script>alert('answer')</script>",
    "html_attr": '<img src=x onerror="alert(1)"> & <b>bold</b> &amp; &lt;',
    "markdown": "# Title\n\n```python\nprint('hi')\n```\n| a | b |\n|---|---|",
    "template_braces": "{ticket} {{double}} {0} %s %(name)s $HOME ${VAR}",
    "csv_breakers": 'a,b;"c""d"\n=1+1,@SUM(A1)',
    "huge": ("lorem ipsum dolor sit amet " * 12_000).strip(),
    "huge_one_word": "x" * 300_000,
}
