"""Secrets and their look-alikes: what :mod:`protokit.secrets` must catch, and what it must leave alone.

``SECRETS`` holds ``(note, text, secret)``: ``find_secrets(text)`` reports it and ``redact(text)``
no longer holds ``secret``. ``LOOK_ALIKES`` holds ``(note, text)``: nothing is reported and
``redact`` returns the text unchanged. Every key-shaped value is built at import time from
pieces, so the repository holds no complete key literal; all of them are fake. Loaded by
path (tests/test_secret_detector.py), so this folder needs no ``__init__``.
"""

from __future__ import annotations

import base64
import hashlib

# Bodies with all three character classes, as generated keys have.
_B62 = "Tr5Wq8Zm3Kx7"
OPENAI_KEY = "sk-" + _B62 * 4  # legacy: 48 base62 characters
OPENAI_PROJECT_KEY = "sk-" + "proj-" + "Ab3dE5fG7hJ9kL2m_N4pQ6rS8-" * 3
OPENAI_SERVICE_KEY = "sk-" + "svcacct-" + "Qv2Lw9Nx4Rt7" * 4
ANTHROPIC_KEY = "sk-" + "ant-api03-" + "Hj5Kq8Vn2Mx7Lr4Tz9Bw6Pc1" * 4 + "AA"
ANTHROPIC_ADMIN_KEY = "sk-" + "ant-admin01-" + "Gp3Fs8Dk1Lz6" * 5
AWS_KEY_ID = "AKIA" + "Q7ZRT4XK2MPL9WJB"
AWS_SECRET = "Fq3vZ8kR/" + "m2Lx9Tb4Wn" + "7Yp1Hc5Jd+" + "g6NsQe0Ua3b"  # 40 base64 characters
GITHUB_TOKEN = "ghp" + "_" + "aB1cD2eF3gH4iJ5kL6mN7oP8qR9sT0uV1wX2"
GITHUB_OAUTH = "gho" + "_" + "Zy9Xw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe9Dc8"
GITHUB_PAT = "github" + "_pat_" + "11ABCDEFG0" + "aB3cD4eF5gH6iJ7kL8mN9o" + "_" + "Pq1Rs2Tu3Vw4Xy5Za6Bc7De8" * 2
SLACK_BOT = "xoxb" + "-2048613579-4096824680135-" + "Nf7Kp2Qr9Ls4Wx1Zc6Vb3Hm8"
SLACK_USER = "xoxp" + "-2048613579-4096824680-5120934871-" + "9f2c4e6a8b0d1f3a5c7e9b2d4f6a8c0e"
SLACK_WEBHOOK = "https://hooks.slack.com/services/" + "T0A1B2C3D/B4E5F6G7H/" + "Xy7Qw3Er9Ty5Ui1Op8As2Df6"
GOOGLE_KEY = "AIza" + "SyD4f8Hk2Lm6Np0Qr3St7Uv1Wx5Yz9Ab_c-"
STRIPE_KEY = "sk" + "_live_" + "51Hq8Kd2Lp7Mx4Nv9Rt3Wz6Yb0Cf5"
HF_TOKEN = "hf" + "_" + "QwErTyUiOpAsDfGhJkLzXcVbNmQwErTyUi"
GITLAB_TOKEN = "glpat" + "-" + "Xk4Rz8Pq2Mw6Tn9Lv3Hs"
BEARER = "Zk8Pq2Lm5Rt9Wx3Vn7Jc1Hb4"
JWT = ("eyJ" + "hbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9" + "."
       + "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ" + "."
       + "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")
_PEM_LINES = ["MIIEowIBAAKCAQEA" + "q7Bz2Kd9Lm4Xp8Rt" * 3, "Vn3Hc6Jw1Yf5Gs0T" * 4, "Qe7Ua2Zr8Mk4Nb9P" * 2 + "==AB"]
PEM_BODY = "\n".join(_PEM_LINES)
PEM = "-----BEGIN RSA " + "PRIVATE KEY-----\n" + PEM_BODY + "\n-----END RSA " + "PRIVATE KEY-----"
OPENSSH_BODY = "b3BlbnNzaC1rZXktdjEAAAAA" + "Bm9uZQAAAARub25lAAAAAAAAAAEAAAAz" * 2
OPENSSH_ESCAPED = ("-----BEGIN OPENSSH " + "PRIVATE KEY-----\\n" + OPENSSH_BODY + "\\n-----END OPENSSH "
                   + "PRIVATE KEY-----\\n")
HEX40 = hashlib.sha1(b"protokit secrets corpus").hexdigest()
SHA256 = hashlib.sha256(b"protokit secrets corpus").hexdigest()
MD5 = hashlib.md5(b"protokit secrets corpus").hexdigest()  # a data checksum, for a look-alike
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 2).decode()

SECRETS: list[tuple[str, str, str]] = [
    ("legacy OpenAI key passed to the client", f'client = OpenAI(api_key="{OPENAI_KEY}")', OPENAI_KEY),
    ("OpenAI project key in prose", f"my key is {OPENAI_PROJECT_KEY} - do not share", OPENAI_PROJECT_KEY),
    ("OpenAI service-account key in an env file", f"OPENAI_API_KEY={OPENAI_SERVICE_KEY}\n", OPENAI_SERVICE_KEY),
    ("Anthropic key exported in a shell", f"export ANTHROPIC_API_KEY='{ANTHROPIC_KEY}'", ANTHROPIC_KEY),
    ("Anthropic admin key in a JSON header map", f'{{"x-api-key": "{ANTHROPIC_ADMIN_KEY}"}}', ANTHROPIC_ADMIN_KEY),
    ("AWS access key id in ~/.aws/credentials", f"[default]\naws_access_key_id = {AWS_KEY_ID}\n", AWS_KEY_ID),
    ("AWS secret assigned in Python", f'aws_secret_access_key = "{AWS_SECRET}"', AWS_SECRET),
    ("AWS secret beside its key id in a CSV export", f"User,Key,Secret\nci,{AWS_KEY_ID},{AWS_SECRET}\n",
     AWS_SECRET),
    ("AWS secret unquoted in an INI file", f"[prod]\naws_secret_access_key = {AWS_SECRET}\n", AWS_SECRET),
    ("GitHub classic token in a clone URL", f"git clone https://{GITHUB_TOKEN}@github.com/acme/app.git",
     GITHUB_TOKEN),
    ("GitHub OAuth token in prose", f"The app got {GITHUB_OAUTH} back from the OAuth flow.", GITHUB_OAUTH),
    ("GitHub fine-grained PAT in YAML", f"github:\n  token: {GITHUB_PAT}\n", GITHUB_PAT),
    ("Slack bot token in a dict", f"cfg = {{'slack': '{SLACK_BOT}'}}", SLACK_BOT),
    ("Slack user token in a log line", f"posting as {SLACK_USER} to #general", SLACK_USER),
    ("Slack incoming webhook URL", f'requests.post("{SLACK_WEBHOOK}", json=msg)', SLACK_WEBHOOK),
    ("Google API key in a query string", f"https://maps.googleapis.com/maps/api/geocode/json?key={GOOGLE_KEY}",
     GOOGLE_KEY),
    ("bearer token in an HTTP header", f"Authorization: Bearer {BEARER}", BEARER),
    ("bearer token in a curl command", f'curl -H "Authorization: Bearer {BEARER}" https://api.example.com',
     BEARER),
    ("JWT alone in prose", f"session cookie was {JWT}, expired", JWT),
    ("JWT in a Cookie header", f"Cookie: session={JWT}; theme=dark", JWT),
    ("PEM RSA private key block", f"key = '''\n{PEM}\n'''", PEM_BODY),
    ("OpenSSH private key escaped in a JSON string", f'{{"deploy_key": "{OPENSSH_ESCAPED}"}}', OPENSSH_BODY),
    ("40 hex characters assigned to a bare token", f'token = "{HEX40}"', HEX40),
    ("a human password assigned to a bare password", 'password = "hunter2hunter2"', "hunter2hunter2"),
    ("an annotated password", 'db_password: str = "Tr0ub4dor&3"', "Tr0ub4dor&3"),
    ("an attribute holding a random api key", 'self.api_key = "q8Zr2Lp0Xw7Nv4Ks"', "q8Zr2Lp0Xw7Nv4Ks"),
    ("a keyword argument", 'connect(host="db", password="Sup3r-Secr3t!")', "Sup3r-Secr3t!"),
    ("a client secret in a dict literal", "{'client_id': 'abc', 'client_secret': 'Kd83jdLq0sPz'}", "Kd83jdLq0sPz"),
    ("an exported env password", "export DB_PASSWORD=s3cr3t-Passw0rd\n", "s3cr3t-Passw0rd"),
    ("an unquoted YAML password", "database:\n  user: app\n  password: hunter2hunter2\n", "hunter2hunter2"),
    ("a camelCase JSON key", '{"apiKey": "Fz81LmQp4xWv", "region": "eu"}', "Fz81LmQp4xWv"),
    ("a password in a database URL", "postgresql://app:S3cretPass99@db.internal:5432/prod", "S3cretPass99"),
    ("an api key in a URL query", "https://api.example.com/v1/items?api_key=Q7ZrT4Xk2MpL9WjB&limit=5",
     "Q7ZrT4Xk2MpL9WjB"),
    ("Stripe live secret key", f"stripe.api_key = '{STRIPE_KEY}'", STRIPE_KEY),
    ("Hugging Face token", f"login(token='{HF_TOKEN}')", HF_TOKEN),
    ("GitLab personal access token", f"GITLAB_TOKEN={GITLAB_TOKEN}", GITLAB_TOKEN),
    ("a password set in os.environ", 'os.environ["DB_PASSWORD"] = "hunter2hunter2"', "hunter2hunter2"),
    ("a token given to setenv", 'monkeypatch.setenv("SERVICE_TOKEN", "Zq8vR2mX9pL4tK7w")', "Zq8vR2mX9pL4tK7w"),
    ("a password on a command line", "mysql --user=app --password=Zq8vR2mX9 prod", "Zq8vR2mX9"),
    ("HTTP basic credentials", "Authorization: Basic dXNlcjpodW50ZXIyaHVudGVyMg==",
     "dXNlcjpodW50ZXIyaHVudGVyMg=="),
    ("a passphrase", "secret = 'correct horse battery staple'", "correct horse battery staple"),
    ("an api key header in a requests call", 'headers = {"X-Api-Key": "Lp0Xw7Nv4Ksq8Zr2"}', "Lp0Xw7Nv4Ksq8Zr2"),
    ("a password compared in code", 'if password == "letmein2024":', "letmein2024"),
    ("an all-caps api key constant", "MISTRAL_API_KEY = 'w8Rk2Lq9Zx4Vn7Tp'", "w8Rk2Lq9Zx4Vn7Tp"),
]

LOOK_ALIKES: list[tuple[str, str]] = [
    ("a long hyphenated URL slug", "See https://example.com/blog/task-management-best-practices for more."),
    ("a slug with a year", "https://example.org/risk-assessment-checklist-for-small-teams-2024"),
    ("a slug that starts with sk-", "https://example.com/docs/sk-learn-pipelines-for-text-classification"),
    ("a slug starting xoxo-", "https://example.net/xoxo-gossip-girl-2024-reboot-cast-interview"),
    ("prose about tokens and passwords", "Rotate your API token every 90 days and never share a password."),
    ("prose about tokenizers", "The tokenizer splits text into tokens; max_tokens limits the answer."),
    ("prose about key prefixes", "OpenAI keys start with sk- or sk-proj- and Anthropic keys with sk-ant-."),
    ("a token limit", "max_tokens = 4096"),
    ("token usage in JSON", '{"prompt_tokens": 12345678, "completion_tokens": 87654321}'),
    ("a sha256 digest", f'digest = "{SHA256}"'),
    ("an md5 checksum in YAML", f'checksum: "{MD5}"'),
    ("a git commit", f'commit = "{HEX40}"'),
    ("a sha256 in a lock file", f"sha256: {SHA256}"),
    ("a cache key", f'cache_key = "{SHA256}"'),
    ("a uuid", 'request_id = "123e4567-e89b-12d3-a456-426614174000"'),
    ("base64 image data", f'image = "{PNG}"'),
    ("a data URL in markdown", f"![chart](data:image/png;base64,{PNG})"),
    ("a key read from the environment", 'api_key = os.environ["OPENAI_API_KEY"]'),
    ("a key read with getenv", 'api_key = os.getenv("ANTHROPIC_API_KEY")'),
    ("an empty password", 'password = ""'),
    ("an empty key parameter", 'api_key: str = ""  # read from the environment'),
    ("None", "password = None"),
    ("changeme", 'token = "changeme"'),
    ("an angle-bracket placeholder", 'api_key = "<your-api-key>"'),
    ("your_api_key_here", 'OPENAI_API_KEY = "your_api_key_here"'),
    ("a shell variable", 'token = "${GITHUB_TOKEN}"'),
    ("REPLACE_ME", 'secret = "REPLACE_ME"'),
    ("x's", 'api_key = "xxxxxxxxxxxxxxxxxxxxxxxx"'),
    ("stars", 'password = "********"'),
    ("AWS's documented example key id", "aws_access_key_id = AKIAIOSFODNN7EXAMPLE"),
    ("the test sandbox's key", "OPENAI_API_KEY = 'sandbox-key'"),
    ("a model name", "model_key = 'gpt-4.1-mini'"),
    ("a budget", "token_budget = 'unlimited-tokens'"),
    ("a password hint", 'password_hint_shown = "Ask the admin for it"'),
    ("a tokenizer name", 'tokenizer = "cl100k_base"'),
    ("a special token", 'eos_token = "<|endoftext|>"'),
    ("a logprobs entry", '{"token": "internationalization", "logprob": -0.25}'),
    ("a secret's name", 'secret_name = "prod/db/credentials"'),
    ("a key file path", 'private_key_path = "~/.ssh/id_ed25519"'),
    ("a credentials file", 'credentials = "service-account.json"'),
    ("an env var name", 'api_key_env = "OPENAI_API_KEY"'),
    ("a header template", "Authorization: Bearer <token>"),
    ("a header from a shell variable", "Authorization: Bearer $TOKEN"),
    ("an f-string header", 'headers = {"Authorization": f"Bearer {api_key}"}'),
    ("prose about JWTs", "A JWT starts with eyJ because its header is JSON."),
    ("prose about basic auth", "Basic authentication is required for the admin endpoints."),
    ("a password prompt", "password = getpass.getpass()"),
    ("a placeholder database URL", "postgres://user:password@localhost:5432/app"),
    ("a long identifier with a provider-like prefix", "hf_hub_download_cache_directory_for_models = None"),
    ("a key name constant", 'key = "ArrowDown"'),
    ("a password policy", 'password_policy = "min-12-chars-with-symbols"'),
    ("a URL with userinfo that says so", "Clone https://user:not-a-secret@git.example.com/repo.git"),
    ("a list of field names", 'fields = ["token", "password", "api_key", "passphrase"]'),
    ("a type annotation", "api_key: SecretStr\npassword: Optional[str] = None"),
    ("a token URL", 'token_url = "https://oauth2.googleapis.com/token"'),
    ("a tokenized sentence", 'tokens = ["The", "quick", "brown", "fox"]'),
    ("an auth scheme", 'auth_type = "oauth2-client-credentials"'),
    ("a help text", '"api_key": "Your OpenAI API key, read from the environment when empty"'),
]
