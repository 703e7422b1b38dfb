"""A secret put in the config, the environment and a ledger line appears nowhere guardd writes or prints."""

import json
from pathlib import Path

CONFIG_KEY = "sk-or-v1-" + "c0ffee" * 10
ENV_KEY = "sk-or-v1-" + "beef42" * 10
LEDGER_KEY = "sk-or-v1-" + "f00d77" * 10
SECRETS = [CONFIG_KEY, ENV_KEY, LEDGER_KEY]


def test_secrets_never_leak(run_guardd, tmp_path: Path):
    ledger = tmp_path / "usage.jsonl"
    ledger.write_text(
        json.dumps({"ts": "2026-11-21T10:00:00Z", "model": "m", "cost": 0.5, "key": LEDGER_KEY})
        + "\n"
        + f"not json but has {LEDGER_KEY}\n"
    )
    config = tmp_path / "guardd.toml"
    config.write_text(f"""
[guardd]
state_dir = "state"
[openrouter]
api_key = "{CONFIG_KEY}"
base_url = "http://127.0.0.1:9"
timeout = "1s"
[[ledgers]]
path = "usage.jsonl"
[[budgets]]
name = "all"
daily = 0.1
""")
    config.chmod(0o644)
    env = {"OPENROUTER_MANAGEMENT_KEY": ENV_KEY}
    outputs = []
    for args in (
        ["run", "--once"],
        ["status", "--json"],
        ["status"],
        ["config", "check"],
        ["history", "--json"],
        ["report", "--by", "key", "--json", "--since", "2026-11-01"],
    ):
        result = run_guardd(*args, "-c", str(config), env=env)
        outputs.append(result.stdout + result.stderr)
    assert "readable by every user" in outputs[0] and "chmod 0640" in outputs[0]
    written = [p.read_bytes().decode("utf-8", "replace") for p in (tmp_path / "state").iterdir() if p.is_file()]
    for secret in SECRETS:
        for text in outputs + written:
            assert secret not in text
    assert "…7f00d77"[-4:] in outputs[-1]  # the ledger's key is reported by its redacted tail
