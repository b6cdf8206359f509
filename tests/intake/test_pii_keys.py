"""Personal data keys against the real PostgreSQL and as processes: intake refuses to start on a
bad key (one JSON log line, exit 2) while dispatch and feedback do not read it; ``wangge pii
rotate`` moves every ``*_enc`` value to the current key, in batches, resumably."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import yaml
from typer.testing import CliRunner

from cli.main import app
from cli.pii import rotate_values, seal_counts
from devstack.testbed import Testbed
from services.intake.app import MIGRATIONS, create_service
from services.intake.privacy import Pii, PiiKeyError, encode_key, key_id
from services.intake.store import EncryptedTable, Outcome, encrypted_tables, record_reports
from shared.runtime.db import KIT_MIGRATIONS, Connection, connect, migrate
from tests.intake.test_privacy import K1, K2, K3, PINNED, RAW_1, RAW_2, legacy_blob

ROOT = Path(__file__).resolve().parents[2]
BAD_KEY = "change-me-32-bytes-urlsafe-base64"


# --- start-up -----------------------------------------------------------------------------------


def _run_intake(env: dict[str, str]) -> tuple[int, str]:
    """``python -m services.intake`` until it exits (at most 60 s)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.intake"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail(f"intake did not exit on a bad key; output:\n{out.decode()[-2000:]}")
    return proc.returncode, out.decode()


@pytest.mark.parametrize(
    ("variable", "env", "secret"),
    [
        ("WANGGE_PII_KEY", {"WANGGE_PII_KEY": BAD_KEY}, BAD_KEY),
        (
            "WANGGE_PII_OLD_KEYS",
            {"WANGGE_PII_OLD_KEYS": "hunter2", "WANGGE_PII_PSEUDONYM_KEY": PINNED},
            "hunter2",
        ),
    ],
)
async def test_intake_with_a_bad_key_exits_2_with_one_json_line_naming_it(
    bed: Testbed, variable: str, env: dict[str, str], secret: str
) -> None:
    code, out = await asyncio.to_thread(_run_intake, bed.process_env("intake", **env))
    assert code == 2, out
    assert "Traceback" not in out and secret not in out
    lines = [orjson.loads(line) for line in out.splitlines() if line.startswith("{")]
    errors = [entry for entry in lines if entry.get("level") == "error"]
    assert len(errors) == 1, out
    (error,) = errors
    assert error["event"] == "cannot start: a setting is wrong"
    assert error["service"] == "intake"
    assert error["error"].startswith(variable) and "wangge pii new-key" in error["error"]


async def test_only_intake_reads_the_pii_keys(bed: Testbed) -> None:
    """A bad key stops intake; dispatch and feedback are built from the same settings."""
    from services.dispatch.app import create_service as dispatch
    from services.feedback.app import create_service as feedback

    s = bed.settings(WANGGE_PII_KEY=BAD_KEY, WANGGE_PII_OLD_KEYS="x")
    assert dispatch(s).name == "dispatch" and feedback(s).name == "feedback"
    with pytest.raises(PiiKeyError, match="WANGGE_PII_KEY"):
        create_service(s)


def test_the_development_keys_are_valid_keys() -> None:
    compose = yaml.safe_load((ROOT / "deploy/docker-compose.yml").read_text())
    default = compose["services"]["intake"]["environment"]["WANGGE_PII_KEY"]
    assert default.startswith("${WANGGE_PII_KEY:-")
    assert Pii(default.removeprefix("${WANGGE_PII_KEY:-").removesuffix("}")).current.key_id


# --- rotation -----------------------------------------------------------------------------------


async def _intake_schema(bed: Testbed) -> Connection:
    conn = await connect(bed.service_dsns["intake"], "intake")
    await migrate(conn, "intake", {"shared": KIT_MIGRATIONS, "intake": MIGRATIONS})
    return conn


def _rows() -> tuple[list[Outcome], dict[str, tuple[str | None, str | None]]]:
    """Reports as different versions wrote them: legacy format and format 1 under K1, format 1
    under K2, one without a name, rejections without personal data."""
    k1, k2 = Pii(K1), Pii(K2)
    outcomes: list[Outcome] = []
    plain: dict[str, tuple[str | None, str | None]] = {}
    for n in range(24):
        name: str | None = f"居民{n}"
        phone = f"138{n:08d}"
        rid = f"r{n:03d}"
        enc: tuple[bytes | None, bytes | None]
        if n % 3 == 0:
            enc = (legacy_blob(RAW_1, f"居民{n}"), legacy_blob(RAW_1, phone))
        elif n % 3 == 1:
            enc = (k1.encrypt(name), k1.encrypt(phone))
        else:
            enc = (k2.encrypt(name), k2.encrypt(phone))
        if n == 4:
            name, enc = None, (None, enc[1])
        plain[rid] = (name, phone)
        outcomes.append(
            Outcome(
                "app",
                rid,
                "opened",
                reporter_ref=f"ref-{n}",
                reporter_name_enc=enc[0],
                reporter_phone_enc=enc[1],
            )
        )
    for n in range(3):
        outcomes.append(Outcome("app", f"x{n}", "rejected", reason="invalid"))
        plain[f"x{n}"] = (None, None)
    return outcomes, plain


async def _snapshot(conn: Connection) -> dict[str, tuple[bytes | None, bytes | None]]:
    rows = await conn.fetch("SELECT report_id, reporter_name_enc, reporter_phone_enc FROM reports")
    return {r["report_id"]: (r["reporter_name_enc"], r["reporter_phone_enc"]) for r in rows}


def _cli(monkeypatch: pytest.MonkeyPatch, bed: Testbed, *args: str, **env: str) -> tuple[int, str]:
    monkeypatch.setenv("DATABASE_URL", bed.service_dsns["intake"])
    monkeypatch.setenv("COLUMNS", "200")
    for name in ("WANGGE_PII_KEY", "WANGGE_PII_OLD_KEYS", "WANGGE_PII_PSEUDONYM_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, ["pii", *args])
    return result.exit_code, result.output


async def test_the_encrypted_columns_are_found_in_intakes_schema(bed: Testbed) -> None:
    conn = await _intake_schema(bed)
    try:
        assert await encrypted_tables(conn, "intake") == [
            EncryptedTable("cases", ("case_id",), ("text_enc",)),
            EncryptedTable(
                "reports",
                ("source", "report_id"),
                ("reporter_name_enc", "reporter_phone_enc", "title_enc", "description_enc"),
            ),
        ]
    finally:
        await conn.close()


async def test_rotate_moves_every_value_to_the_current_key(
    bed: Testbed, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = await _intake_schema(bed)
    try:
        outcomes, plain = _rows()
        await record_reports(conn, outcomes)
        before = await _snapshot(conn)
        keys = {"WANGGE_PII_KEY": K2, "WANGGE_PII_OLD_KEYS": K1, "WANGGE_PII_PSEUDONYM_KEY": PINNED}
        id1, id2 = key_id(RAW_1).hex(), key_id(RAW_2).hex()

        code, out = await asyncio.to_thread(_cli, monkeypatch, bed, "status", **keys)
        assert code == 0, out
        assert f"current key {id2}; old keys: {id1}" in out
        assert f"{id1} (old, legacy format)" in out and f"{id1} (old)" in out
        assert "31 values not under the current key" in out  # 8+8 legacy, 8+7 under K1

        code, out = await asyncio.to_thread(
            _cli, monkeypatch, bed, "rotate", "--dry-run", "--batch", "5", **keys
        )
        assert code == 0, out
        assert "would re-encrypt 31 values in 16 rows" in out
        assert await _snapshot(conn) == before

        code, out = await asyncio.to_thread(
            _cli, monkeypatch, bed, "rotate", "--batch", "5", **keys
        )
        assert code == 0, out
        assert "re-encrypted 31 values in 16 rows" in out
        assert out.count("reports: re-encrypted") == 4  # 16 rows in batches of 5
        after = await _snapshot(conn)
        current = Pii(K2, pseudonym_key=PINNED)  # the old key removed
        for rid, values in after.items():
            for value in values:
                assert value is None or current.is_current(value), rid
            assert tuple(current.decrypt(v) for v in values) == plain[rid]
            if current.is_current(before[rid][1] or b""):
                assert values == before[rid]  # already under K2: left alone

        code, out = await asyncio.to_thread(_cli, monkeypatch, bed, "rotate", **keys)
        assert code == 0 and "re-encrypted 0 values in 0 rows" in out
        code, out = await asyncio.to_thread(
            _cli, monkeypatch, bed, "status", WANGGE_PII_KEY=K2, WANGGE_PII_PSEUDONYM_KEY=PINNED
        )
        assert code == 0 and f"{id2} (current)" in out and "not under the current" not in out
        counts = await seal_counts(conn, current)
        assert counts == {
            "cases.text_enc": {},  # no case in these rows
            "reports.reporter_name_enc": {f"{id2} (current)": 23},
            "reports.reporter_phone_enc": {f"{id2} (current)": 24},
            "reports.title_enc": {},
            "reports.description_enc": {},
        }
    finally:
        await conn.close()


async def test_an_interrupted_rotation_keeps_its_batches_and_resumes(bed: Testbed) -> None:
    conn = await _intake_schema(bed)
    try:
        outcomes, plain = _rows()
        await record_reports(conn, outcomes)
        pii = Pii(K2, old_keys=K1, pseudonym_key=PINNED)

        class Interrupted(Exception):
            pass

        def stop_after_first_batch(_: str) -> None:
            raise Interrupted

        with pytest.raises(Interrupted):
            await rotate_values(conn, pii, batch=5, progress=stop_after_first_batch)
        stale = await conn.fetchval(
            "SELECT count(*) FROM reports WHERE reporter_phone_enc IS NOT NULL "
            "AND substring(reporter_phone_enc FROM 1 FOR 9) <> $1",
            pii.current.header,
        )
        assert stale == 16 - 5  # the first batch committed, the rest untouched
        done = await rotate_values(conn, pii, batch=5)
        assert (done.rows, done.unreadable) == (11, {})
        for rid, values in (await _snapshot(conn)).items():
            assert tuple(Pii(K2).decrypt(v) for v in values) == plain[rid]
    finally:
        await conn.close()


async def test_values_no_configured_key_opens_are_left_and_reported(
    bed: Testbed, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = await _intake_schema(bed)
    try:
        lost = Pii(K3).encrypt("13800000000")
        await record_reports(
            conn,
            [
                Outcome("app", "lost", "opened", reporter_phone_enc=lost),
                Outcome("app", "kept", "opened", reporter_phone_enc=Pii(K1).encrypt("1")),
            ],
        )
        code, out = await asyncio.to_thread(
            _cli,
            monkeypatch,
            bed,
            "rotate",
            WANGGE_PII_KEY=K2,
            WANGGE_PII_OLD_KEYS=K1,
            WANGGE_PII_PSEUDONYM_KEY=PINNED,
        )
        assert code == 1, out
        assert "reports.reporter_phone_enc: 1 values no configured key opens" in out
        assert f"{Pii(K3).current.name} (not configured)" in out
        snap = await _snapshot(conn)
        assert snap["lost"][1] == lost and Pii(K2).decrypt(snap["kept"][1]) == "1"
    finally:
        await conn.close()


def test_pii_commands_refuse_a_bad_key_before_connecting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("WANGGE_PII_KEY", BAD_KEY)
    for command in ("status", "rotate", "pseudonym-key"):
        result = CliRunner().invoke(app, ["pii", command])
        assert result.exit_code == 2, result.output
        assert "WANGGE_PII_KEY" in result.output and BAD_KEY not in result.output


def test_key_commands_print_keys_that_intake_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    fresh = runner.invoke(app, ["pii", "new-key"]).output.strip()
    assert Pii(fresh).current.key_id and fresh != runner.invoke(app, ["pii", "new-key"]).output
    monkeypatch.setenv("WANGGE_PII_KEY", K1)
    monkeypatch.delenv("WANGGE_PII_PSEUDONYM_KEY", raising=False)
    assert runner.invoke(app, ["pii", "pseudonym-key"]).output.strip() == PINNED
    legacy = runner.invoke(app, ["pii", "legacy-key"], input="a passphrase\n").output.strip()
    assert legacy == encode_key(hashlib.sha256(b"a passphrase").digest())


def test_make_up_refuses_a_bad_key_before_starting_anything(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from devstack.stack import up

    monkeypatch.setenv("WANGGE_PII_KEY", BAD_KEY)
    assert up(str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "WANGGE_PII_KEY is not base64" in err and BAD_KEY not in err
    assert list(tmp_path.iterdir()) == []


def test_fields_named_after_the_key_settings_are_never_logged(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from shared.runtime.logging import configure_logging, get_logger

    configure_logging("test", "INFO")
    get_logger().info("keys", pii_key=K1, pii_old_keys=K2, pii_pseudonym_key=PINNED)
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert orjson.loads(line)["pii_old_keys"] == "***"
    assert all(k not in line for k in (K1, K2, PINNED))
