"""Witness options of ``ailedger serve`` and ``ailedger witness serve``: what is refused
before anything listens (one error line, documented exit codes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from _cli import fails
from _log_util import ALICE
from _service import LOG_KEY, server_workspace
from _witness import witness_workspace
from ailedger.errors import InvalidInput
from ailedger.log import Ed25519Cosigner, vkey
from ailedger.service._cosigning import Cosigning, parse_witness_option

WITNESS = Ed25519Cosigner.generate("witness.example/w")


def test_witness_option_needs_an_http_url_and_a_cosignature_key() -> None:
    config = parse_witness_option(f"http://127.0.0.1:9/={vkey(WITNESS)}")
    assert config.url == "http://127.0.0.1:9"
    assert config.key == WITNESS
    with pytest.raises(InvalidInput, match="URL=VKEY"):
        parse_witness_option(f"ftp://x={vkey(WITNESS)}")
    with pytest.raises(InvalidInput, match="URL=VKEY"):
        parse_witness_option(vkey(WITNESS))
    with pytest.raises(InvalidInput, match="not a cosignature key"):
        parse_witness_option(f"http://127.0.0.1:9={vkey(LOG_KEY)}")
    with pytest.raises(InvalidInput, match=r"threshold 2 is not within 1\.\.1"):
        Cosigning([config], 2)


def test_serve_refuses_bad_witness_settings(tmp_path: Path) -> None:
    ws = server_workspace(tmp_path / "server")
    home = {"AILEDGER_HOME": str(ws.root)}
    spec = f"http://127.0.0.1:9={vkey(WITNESS)}"
    serve = ["serve", "--port", "0", "--allow", ALICE.address]
    fails([*serve, "--witness", spec, "--witness-threshold", "2"], 3, "not within 1..1", env=home)
    fails([*serve, "--witness-threshold", "1"], 3, "needs witnesses", env=home)
    fails([*serve, "--witness", "http://127.0.0.1:9"], 3, "URL=VKEY", env=home)
    config = ws.config_path.read_text()
    ws.config_path.write_text(config + '\n[serve]\nwitnesses = "http://x"\n')
    fails(serve, 6, "[serve] witnesses must be a list", env=home)
    ws.config_path.write_text(
        config + f'\n[serve]\nwitnesses = ["{spec}"]\nwitness_threshold = 0\n'
    )
    fails(serve, 6, "witness_threshold must be an integer >= 1", env=home)


def test_witness_serve_refuses_a_malformed_log_option(tmp_path: Path) -> None:
    ws = witness_workspace(tmp_path / "witness")
    home = {"AILEDGER_HOME": str(ws.root)}
    base = ["witness", "serve", "--key", "witness", "--state", tmp_path / "state", "--port", "0"]
    fails([*base, "--log", vkey(LOG_KEY)], 3, "ORIGIN=VKEY", env=home)
    fails([*base, "--log", f"{LOG_KEY.name}=nonsense"], 3, "not a verifier key", env=home)
    fails([*base, "--log", f"{LOG_KEY.name}={vkey(LOG_KEY)}", "--key", "nokey"], 4, env=home)
