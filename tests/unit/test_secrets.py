from __future__ import annotations

import pytest

from devorch_tui.services.secrets import MASK, Redactor, is_secret_name, mask_value


@pytest.mark.parametrize("name", ["GITHUB_TOKEN", "DB_PASSWORD", "api_key", "CLIENT_SECRET", "MYSQL_PASSWD"])
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["GIT_NAME", "VM_MEMORY", "SSH_PUBLIC_KEY", "DEPLOY_KEY_PUB", "MONKEY_PATH".replace("KEY", "KY")])
def test_non_secret_names(name: str) -> None:
    assert not is_secret_name(name)


def test_mask_value() -> None:
    assert mask_value("API_TOKEN", "abc123") == MASK
    assert mask_value("API_TOKEN", "") == ""
    assert mask_value("GIT_NAME", "Ada") == "Ada"


def test_redactor_masks_secret_values_everywhere_in_a_line() -> None:
    redactor = Redactor.from_env({"API_TOKEN": "s3cr3t-value", "GIT_NAME": "Ada", "DB_PASSWORD": "hunter22"})
    line = "token=s3cr3t-value and again s3cr3t-value; pw hunter22; name Ada"
    assert redactor.redact_line(line) == f"token={MASK} and again {MASK}; pw {MASK}; name Ada"


def test_redactor_prefers_the_longest_secret() -> None:
    redactor = Redactor(["abcd", "abcdefgh"])
    assert redactor.redact_line("xabcdefghx") == f"x{MASK}x"


def test_short_values_are_not_used_as_patterns() -> None:
    redactor = Redactor.from_env({"PASSWORD": "a"})
    assert redactor.redact_line("a cat") == "a cat"


def test_private_key_blocks_are_masked_line_by_line() -> None:
    redactor = Redactor()
    lines = [
        "before",
        "-----BEGIN OPENSSH PRIVATE KEY-----",
        "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ",
        "AAAAC3NzaC1lZDI1NTE5AAAAIH",
        "-----END OPENSSH PRIVATE KEY-----",
        "after",
    ]
    assert [redactor.redact_line(line) for line in lines] == ["before", MASK, MASK, MASK, MASK, "after"]


def test_redact_block_is_stateless_between_calls() -> None:
    redactor = Redactor(["topsecret"])
    text = "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\nvalue topsecret"
    assert redactor.redact(text) == f"{MASK}\n{MASK}\n{MASK}\nvalue {MASK}"
    assert redactor.redact("plain") == "plain"
