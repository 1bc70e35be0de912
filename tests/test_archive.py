"""The archive across years, on SQLite and on a real PostgreSQL ($NIANBAO_TEST_PG): the four-week
workflow of a county (every upload a version, the county approves), two years with the carry-over,
export and the 说明 in the summary."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from archive_util import cli_ok as _ok
from archive_util import write_return

from toolkit.reader import read_bytes

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
ROSTER = SAMPLES / "roster.csv"
FAULTY = SAMPLES / "faulty" / "152502003_杭盖街道_2025年政府信息公开年报_有误.xlsx"  # an 错误
WARNED = SAMPLES / "faulty" / "152502101_阿尔善宝拉格镇_2025年政府信息公开年报_有误.xlsx"  # a 警告
NOTE = "本年新设机构，按新口径统计"


def _status(cli, db: str, year: int = 2025) -> dict[str, dict]:
    res = _ok(cli("status", "--year", year, "--db", db, "--json"))
    return {u["code"]: u for u in json.loads(res.stdout)["units"]}


def _wave(tmp_path: Path) -> Path:
    """The first wave: every sample return, with 杭盖街道's faulty and 阿尔善宝拉格镇's warned version."""
    wave = tmp_path / "wave1"
    wave.mkdir()
    for f in (SAMPLES / "returns").glob("*.xlsx"):
        if not f.name.startswith(("152502003", "152502101", "152502312")):  # 市场监督管理局 answers late
            shutil.copy(f, wave / f.name)
    shutil.copy(FAULTY, wave / FAULTY.name)
    shutil.copy(WARNED, wave / WARNED.name)
    return wave


def _values(path: Path) -> dict:
    rep = read_bytes(path.read_bytes(), path.name, str(path), 0)
    return dict(rep.values)


@pytest.mark.slow
def test_workflow_of_a_year(cli, db, tmp_path):
    _ok(cli("roster", "load", ROSTER, "--year", 2025, "--deadline", "2026-01-15", "--db", db))
    res = cli("receive", _wave(tmp_path), "--year", 2025, "--db", db)
    _ok(res, 1)  # 杭盖街道 has an 错误
    assert "杭盖街道（152502003） 新收（第1版），退回" in res.stderr
    st = _status(cli, db)
    assert (st["152502003"]["status"], st["152502101"]["status"], st["152502312"]["status"]) == ("退回", "待审核", "未报送")
    assert st["152502001"]["status"] == "待审核" and st["152502001"]["filler"] == "王敏"  # the county reviews each
    assert st["152502312"]["late"] is True  # today is past the deadline and nothing came
    missing = _ok(cli("status", "--year", 2025, "--db", db, "--missing", "--json"))
    assert {u["code"] for u in json.loads(missing.stdout)["units"]} == {"152502003", "152502312"}
    res = _ok(cli("accept", "--all-clean", "--year", 2025, "--db", db))
    assert "共通过 19 个" in res.stderr  # all but 杭盖街道 (退回) and 阿尔善宝拉格镇 (a 警告)

    res = _ok(cli("reject", "152502003", "--year", 2025, "--db", db, "--note", "表三不平", "--out", tmp_path / "退回"))
    assert list((tmp_path / "退回").glob("*_审核意见.xlsx"))
    fixed = SAMPLES / "returns" / "152502003_杭盖街道_2025年政府信息公开年报.xlsx"
    late = SAMPLES / "returns" / "152502312_锡林浩特市市场监督管理局_2025年政府信息公开年报.xlsx"
    res = _ok(cli("receive", fixed, late, "--year", 2025, "--db", db))
    assert "杭盖街道（152502003） 新版本（第2版），待审核" in res.stderr
    res = cli("accept", "阿尔善宝拉格镇", "--year", 2025, "--db", db)
    assert res.returncode == 2 and "1个警告" in res.stderr and "--note" in res.stderr
    _ok(cli("accept", "阿尔善宝拉格镇", "--year", 2025, "--db", db, "--note", NOTE))
    res = _ok(cli("receive", WARNED, "--year", 2025, "--db", db))  # the same bytes again
    assert "与最新版本（第1版" in res.stderr and "未存为新版本" in res.stderr
    _ok(cli("accept", "--all-clean", "--year", 2025, "--db", db))
    st = _status(cli, db)
    assert {u["status"] for u in st.values()} == {"已通过"}
    assert st["152502101"]["note"] == NOTE and st["152502312"]["late"] is False and st["152502312"]["submitted_late"]
    assert st["152502003"]["version"] == 2 and st["152502003"]["approved_id"] == st["152502003"]["submission_id"]

    history = _ok(cli("history", "152502003", "--year", 2025, "--db", db)).stderr
    assert history.index("有误.xlsx") < history.index("表三不平") < history.index("杭盖街道_2025年政府信息公开年报.xlsx")
    items = json.loads(_ok(cli("history", "杭盖街道", "--db", db, "--json")).stdout)["items"]
    assert [(i["kind"], i["actor"]) for i in items] == [
        ("收到", "命令行"),
        ("退回", "自动"),
        ("退回", "命令行"),
        ("收到", "命令行"),
        ("通过", "命令行"),
    ]
    assert items[2]["note"] == "表三不平" and items[3]["version"] == 2
    warned = json.loads(_ok(cli("history", "152502101", "--year", 2025, "--db", db, "--json")).stdout)["items"]
    assert [i["kind"] for i in warned] == ["收到", "通过", "重复收到"]

    # consolidating from the archive = consolidating the folder of the approved versions, cell for cell
    folder = tmp_path / "current"
    folder.mkdir()
    for f in [*(SAMPLES / "returns").glob("*.xlsx")]:
        shutil.copy(WARNED if f.name.startswith("152502101") else f, folder / f.name)
    a = _ok(cli("consolidate", "--db", db, "--year", 2025, "--out", tmp_path / "a" / "汇总.xlsx", "--json"))
    b = _ok(cli("consolidate", folder, "--roster", ROSTER, "--year", 2025, "--out", tmp_path / "b" / "汇总.xlsx", "--json"))
    sa, sb = json.loads(a.stdout)["summary"], json.loads(b.stdout)["summary"]
    assert sa["totals"] == sb["totals"] and sa["counts"] == sb["counts"]
    assert [(u["unit_code"], u["status"], u["sha256"]) for u in sa["units"]] == [
        (u["unit_code"], u["status"], u["sha256"]) for u in sb["units"]
    ]
    assert _values(tmp_path / "a" / "汇总.xlsx") == _values(tmp_path / "b" / "汇总.xlsx")
    from openpyxl import load_workbook

    explain = load_workbook(tmp_path / "a" / "汇总.xlsx")["汇总说明"]
    assert any(NOTE in str(c.value) for row in explain.iter_rows() for c in row)

    # export: exactly units × cells rows
    import pandas as pd

    from toolkit.spec import current_format

    _ok(cli("export", "--year", 2025, "--db", db, "--out", tmp_path / "明细.csv"))
    frame = pd.read_csv(tmp_path / "明细.csv", dtype={"单位代码": str})
    assert len(frame) == 22 * len(current_format().cells)
    assert set(frame["报送状态"]) == {"已通过"}
    _ok(cli("export", "--year", 2025, "--db", db, "--out", tmp_path / "宽表.xlsx", "--wide"))
    assert len(pd.read_excel(tmp_path / "宽表.xlsx", skiprows=[0])) == 22  # row 1: the 明细 labels
    _ok(cli("verify", "--db", db))


def test_approval_locks_a_version_and_its_note(db, tmp_path):
    """A 说明 accepts the warnings of the version approved; a new version (even with the same
    warnings) waits for the reviewer, and the approved one's figures count meanwhile."""
    from toolkit.archive import Archive
    from toolkit.archive.status import current_statuses

    def _statuses(archive, year):  # what receive tells of each file, on the archive's own connection
        with archive._read() as conn:
            return current_statuses(conn, archive.need_roster(year), year)

    with Archive.open(db) as archive:
        archive.load_roster(ROSTER, 2025)
        (first,) = archive.receive([WARNED], 2025)
        with pytest.raises(Exception, match="警告"):
            archive.accept("152502101", 2025, "")  # a warning needs a 说明
        s = archive.accept("152502101", 2025, NOTE)
        assert (s.status, s.approved_id, s.note) == ("已通过", first.submission_id, NOTE)
        again = write_return(tmp_path / "again.xlsx", "152502101", 2025, _warned_values())
        (got,) = archive.receive([again], 2025)
        assert (got.outcome, got.version, got.status) == ("新版本", 2, "待审核")
        s = archive.state("152502101", 2025)
        assert (s.approved_id, s.pending_id, s.approved_version) == (first.submission_id, got.submission_id, 1)
        assert [r.provenance.sha256 for r in archive.reports(2025)] == [first.report.provenance.sha256]
        archive.receive([FAULTY], 2025)  # an 错误 beside: 退回 at once
        full = {s.code: s.status for s in archive.status(2025) if s.submission_id}
        assert _statuses(archive, 2025) == full == {"152502101": "待审核", "152502003": "退回"}
        assert archive.accept("152502101", 2025, "仍为转发的规章").approved_id == got.submission_id
        assert archive.notes(2025) == [("阿尔善宝拉格镇（152502101）", "仍为转发的规章")]
        with pytest.raises(Exception, match="强制性错误"):
            archive.accept("152502003", 2025, "无论如何")


def _warned_values() -> dict:
    rep = read_bytes(WARNED.read_bytes(), WARNED.name, str(WARNED), 0)
    from toolkit.spec import current_format

    return {c.id: rep.values.get(c.id) for c in current_format().inputs}


def test_two_years_carryover(cli, db, tmp_path):
    y1, y2 = tmp_path / "2024", tmp_path / "2025"
    y1.mkdir()
    y2.mkdir()
    a, b = "152502201", "152502202"
    from toolkit.spec import current_format

    zero = {c.id: 0 for c in current_format().inputs if c.sheet_id == "t3"}
    for code in (a, b):
        write_return(y1 / f"{code}.xlsx", code, 2024, zero | {"t3.r4.np": 2, "t3.r1.np": 2})
    write_return(y2 / f"{a}.xlsx", a, 2025, zero | {"t3.r2.np": 2, "t3.r3_1.np": 2})  # carries 2 over
    write_return(y2 / f"{b}.xlsx", b, 2025, zero | {"t3.r2.np": 1, "t3.r3_1.np": 1})  # says 1
    for year in (2024, 2025):
        _ok(cli("roster", "load", ROSTER, "--year", year, "--db", db))
    _ok(cli("receive", y1, "--year", 2024, "--db", db))
    _ok(cli("accept", "--all-clean", "--year", 2024, "--db", db))  # last year's figures count once approved
    res = cli("receive", y2, "--year", 2025, "--db", db, "--json")
    assert res.returncode == 1, res.stderr
    files = {f["unit_code"]: f for f in json.loads(res.stdout)["files"]}
    carry = [f for f in files[b]["findings"] if f["code"] == "carryover-mismatch"]
    assert [f["cell_id"] for f in carry] == ["t3.r2.np"]
    assert "2025年" in carry[0]["message"] and "2024年" in carry[0]["message"]
    assert carry[0]["cell"] and "上年结转" in carry[0]["message"] and "结转下年度" in carry[0]["message"]
    assert not [f for f in files[a]["findings"] if f["code"] == "carryover-mismatch"]
    st = _status(cli, db)
    assert st[b]["status"] == "待审核" and st[b]["errors"] == 1  # carryover-mismatch is 核实性: it may be explained
    res = cli("accept", b, "--year", 2025, "--db", db)
    assert res.returncode == 2 and "需核实的错误" in res.stderr
    _ok(cli("accept", b, "--year", 2025, "--db", db, "--note", "2024年底机构调整，1件移交旗政务服务局办理"))
    _ok(cli("accept", a, "--year", 2025, "--db", db, "--note", "已核对"))

    # whom to chase next year: last year's contact while this year's is unknown
    _ok(cli("roster", "load", ROSTER, "--year", 2026, "--db", db))
    res = _ok(cli("status", "--year", 2026, "--db", db, "--missing", "--json"))
    chase = {u["code"]: u for u in json.loads(res.stdout)["units"]}
    assert len(chase) == 22 and chase[a]["filler"] == "测试员（2025年）" and chase[a]["phone"] == "0479-1234567"

    # check --db runs the same cross-year rules without storing anything
    res = cli("check", y2 / f"{b}.xlsx", "--year", 2025, "--db", db, "--json")
    assert res.returncode == 1 and "carryover-mismatch" in res.stdout

    # next year's templates start from last year's 结转下年度, with a comment saying so
    _ok(cli("template", "--db", db, "--year", 2025, "--out", tmp_path / "模板"))
    (made,) = (tmp_path / "模板").glob(f"{a}_*.xlsx")
    assert _values(made)["t3.r2.np"] == 2 and _values(made)["t3.r1.np"] == 0
    from openpyxl import load_workbook

    from toolkit.spec import current_format

    cell = current_format().cells["t3.r2.np"]
    comment = load_workbook(made)[cell.sheet_name][cell.a1].comment
    assert "2024年度" in comment.text and "结转下年度继续办理" in comment.text
    assert len(list((tmp_path / "模板").glob("*.xlsx"))) == 22

    from toolkit.archive import Archive

    with Archive.open(db) as archive:
        frame = archive.export_frame([2024, 2025])
    assert set(frame["年度"]) == {2024, 2025}
    assert len(frame) == 4 * frame["单元格编号"].nunique()


def test_roster_missing_and_unknown_unit(cli, db, tmp_path):
    res = cli("receive", WARNED, "--year", 2025, "--db", db)
    assert res.returncode == 2 and "roster load" in res.stderr and "Traceback" not in res.stderr
    _ok(cli("roster", "load", ROSTER, "--year", 2025, "--db", db))
    res = cli("accept", "不存在的单位", "--year", 2025, "--db", db, "--note", "x")
    assert res.returncode == 2 and "名册中没有单位" in res.stderr
    res = cli("accept", "152502101", "--year", 2025, "--db", db, "--note", "x")
    assert res.returncode == 2 and "还没有报送" in res.stderr


def test_export_formats(cli, db, tmp_path):
    _ok(cli("roster", "load", ROSTER, "--year", 2025, "--db", db))
    _ok(cli("receive", SAMPLES / "returns" / "152502001_希日塔拉街道_2025年政府信息公开年报.xlsx", "--year", 2025, "--db", db))
    res = cli("export", "--year", 2025, "--db", db, "--out", tmp_path / "x.txt")
    assert res.returncode == 2 and ".csv" in res.stderr
    res = cli("export", "--year", 2025, "--db", db, "--out", tmp_path / "x.parquet")
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        assert res.returncode == 2 and "pyarrow" in res.stderr and not (tmp_path / "x.parquet").exists()
    else:
        import pandas as pd

        assert res.returncode == 0 and len(pd.read_parquet(tmp_path / "x.parquet")) > 0


def test_last_year_from_a_published_report(cli, db, tmp_path):
    published = SAMPLES / "published" / "宝力根苏木2023年政府信息公开工作年度报告.txt"
    for year in (2023, 2024):
        _ok(cli("roster", "load", ROSTER, "--year", year, "--db", db))
    res = _ok(cli("import", published, "--roster", ROSTER, "--db", db))
    assert "已存入档案库 1 份" in res.stderr
    assert _status(cli, db, 2023)["152502201"]["status"] == "已通过"
    from toolkit.spec import current_format

    zero = {c.id: 0 for c in current_format().inputs if c.sheet_id == "t3"}
    made = write_return(tmp_path / "2024.xlsx", "152502201", 2024, zero | {"t3.r2.np": 1, "t3.r3_1.np": 1})
    res = cli("receive", made, "--year", 2024, "--db", db, "--json")
    assert res.returncode == 1
    (carry,) = [f for f in json.loads(res.stdout)["files"][0]["findings"] if f["code"] == "carryover-mismatch"]
    assert "2023年" in carry["message"] and "2024年" in carry["message"]
    res = _ok(cli("import", published, "--roster", ROSTER, "--db", db))  # again: nothing changes
    assert "以前已存入" in res.stderr


def test_decisions_on_the_current_file(db):
    from toolkit.archive import Archive

    with Archive.open(db) as archive:
        archive.load_roster(ROSTER, 2025)
        archive.receive([WARNED, SAMPLES / "returns" / "152502001_希日塔拉街道_2025年政府信息公开年报.xlsx"], 2025)
        state, report = archive.reject("152502001", 2025, "封面未盖章")  # no findings, still sent back
        assert (state.status, state.note, report.unit_code) == ("退回", "封面未盖章", "152502001")
        assert archive.accept("152502001", 2025, "已补盖章").status == "已通过"  # the reviewer changed their mind
        archive.reject("152502101", 2025, "请核实规章")
        assert archive.state("152502101", 2025).status == "退回"
        assert archive.accept("152502101", 2025, NOTE).status == "已通过"
        kinds = [h.kind for h in archive.history("152502101")]
        assert kinds == ["收到", "退回", "通过"]
        assert archive.notes(2025) == [("阿尔善宝拉格镇（152502101）", NOTE)]


def test_a_roster_reloaded_elsewhere_is_seen_at_once(db, tmp_path):
    """A server keeps each year's roster between requests; a roster loaded again by another process
    (here: another Archive on the same database) is what the next request sees."""
    from toolkit.archive import Archive

    server, reviewer = Archive.open(db), Archive.open(db)
    try:
        roster = tmp_path / "roster.csv"
        shutil.copy(ROSTER, roster)
        reviewer.load_roster(roster, 2025)
        before = server.need_roster(2025)
        assert server.need_roster(2025) is before  # kept between requests
        lines = ROSTER.read_text(encoding="utf-8").splitlines()
        roster.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")  # the same file, 市场监督管理局 dropped
        reviewer.load_roster(roster, 2025)
        after = server.need_roster(2025)
        assert len(after.units) == len(before.units) - 1
        assert [u.code for u in after.units] == [u.code for u in reviewer.need_roster(2025).units]
        with pytest.raises(Exception, match="名册中没有单位"):
            server.unit_code(before.units[-1].code, 2025)
    finally:
        server.close()
        reviewer.close()


def test_the_bytes_stored_are_the_bytes_checked(db, tmp_path, monkeypatch):
    """receive stores what its workers checked, never a second read of the file (which could have
    changed meanwhile); and the report stored rebuilds to the one checked."""
    import hashlib

    from toolkit.archive import Archive
    from toolkit.archive import receive as receive_mod

    def no_second_read(src):
        raise AssertionError(f"{src.name} read again")

    monkeypatch.setattr(receive_mod, "_bytes", no_second_read)
    wave = _wave(tmp_path)
    with Archive.open(db) as archive:
        archive.load_roster(ROSTER, 2025)
        got = archive.receive(wave, 2025, workers=2)
        stored = {r.report.provenance.sha256: r for r in got}
        assert len(stored) == len(got) > 20
        for sha, r in stored.items():
            data = archive.file_bytes(sha)
            assert hashlib.sha256(data).hexdigest() == sha and data == (wave.parent / r.name).read_bytes()
        for rep in (archive.report(r.submission_id) for r in got):
            original = stored[rep.provenance.sha256].report
            assert (dict(rep.values), rep.cached, rep.cover, rep.unit_type) == (
                dict(original.values),
                original.cached,
                original.cover,
                original.unit_type,
            )
            assert vars(rep.provenance) == vars(original.provenance)


def _sql(url: str, statement: str, **params: str) -> None:
    """Change the archive behind nianbao's back, as someone with the database's password could."""
    from sqlalchemy import text

    from toolkit.archive.db import make_engine, resolve_url

    engine = make_engine(resolve_url(url))  # not Archive.open: that would bring the schema up to date
    try:
        with engine.begin() as conn:
            conn.execute(text(statement), params)
    finally:
        engine.dispose()


def _edit_json(db: str, column: str, old: str, new: str, where: str) -> None:
    pg = "://" in db  # a JSON column of PostgreSQL is changed as text and cast back
    value = f"CAST(REPLACE(CAST({column} AS TEXT), :old, :new) AS JSON)" if pg else f"REPLACE({column}, :old, :new)"
    _sql(db, f"UPDATE submissions SET {column} = {value} WHERE {where}", old=old, new=new)


def test_verify_names_a_changed_report_row(cli, db, tmp_path):
    """Issue 26.8: one figure of a stored report changed with SQL (73 → 93) shows in export, and
    verify names the unit, the year and the cell; a change it cannot place still names unit and year."""
    from toolkit.spec import current_format

    cell = current_format().cells["t3.r1.np"]
    zero = {c.id: 0 for c in current_format().inputs if c.sheet_id == "t3"}
    ret = write_return(tmp_path / "152502201_宝力根苏木.xlsx", "152502201", 2025, zero | {"t3.r1.np": 73, "t3.r3_1.np": 73})
    _ok(cli("roster", "load", ROSTER, "--year", 2025, "--db", db))
    _ok(cli("receive", SAMPLES / "returns", "--year", 2025, "--db", db))
    _ok(cli("accept", "--all-clean", "--year", 2025, "--db", db))
    cli("receive", ret, "--year", 2025, "--db", db)  # 宝力根苏木's second version (random figures: may have 警告)
    _ok(cli("accept", "152502201", "--year", 2025, "--db", db, "--note", "已核实"))
    res = _ok(cli("verify", "--db", db))
    assert "全部原文件和存档审核结果与收到时一致" in res.stderr

    _edit_json(db, "report", '"t3.r1.np":73', '"t3.r1.np":93', "unit_code = '152502201' AND name LIKE '%宝力根苏木.xlsx'")
    _ok(cli("export", "--year", 2025, "--db", db, "--out", tmp_path / "明细.csv"))
    import pandas as pd

    frame = pd.read_csv(tmp_path / "明细.csv", dtype={"单位代码": str})
    shown = frame[(frame["单位代码"] == "152502201") & (frame["单元格编号"] == "t3.r1.np")]["数值"]
    assert list(shown) == [93]  # the change took: export reads the stored row
    res = _ok(cli("verify", "--db", db), 1)
    lines = [line for line in res.stderr.splitlines() if line.startswith("不一致")]
    assert len(lines) == 1, res.stderr
    assert "宝力根苏木（152502201）2025年度" in lines[0] and f"{cell.where}存档为 93，原文件为 73" in lines[0]

    _sql(db, "UPDATE submissions SET errors = 1, status = '有错误' WHERE unit_code = '152502001'")
    res = _ok(cli("verify", "--db", db), 1)
    assert "希日塔拉街道（152502001）2025年度" in res.stderr and "无法确定是哪个单元格" in res.stderr
    assert "档案库中有 2 处与收到时不一致" in res.stderr

    _sql(db, "UPDATE files SET size = size + 1 WHERE sha256 IN (SELECT sha256 FROM submissions WHERE unit_code = '152502002')")
    res = _ok(cli("verify", "--db", db), 1)
    assert "（152502002）2025年度" in res.stderr and "的原文件" in res.stderr


def _as_schema_0003(db: str) -> None:
    """Turn an archive into what nianbao made before versions were reviewed (schema 0003)."""
    _sql(db, "DELETE FROM events")
    for table, column in (
        ("submissions", "source"),
        ("submissions", "filled_on"),
        ("submissions", "explanation"),
        ("events", "actor"),
        ("years", "auto_approve"),
        ("secrets", "label"),  # schema 0006
        ("secrets", "used_at"),
    ):
        _sql(db, f"ALTER TABLE {table} DROP COLUMN {column}")
    for table in ("summary_events", "summaries", "drafts", "attempts"):  # tables of later schemas (0005-0007)
        _sql(db, f"DROP TABLE IF EXISTS {table}")
    _sql(db, "UPDATE alembic_version SET version_num = '0003'")


def test_archives_before_review_keep_their_figures(cli, db, tmp_path):
    """An archive of schema 0003 opens with what it counted: a clean newest return, or one whose
    warnings a 说明 accepted, stands approved; a 退回 or an 错误 stays 退回 (SQLite and PostgreSQL)."""
    _ok(cli("roster", "load", ROSTER, "--year", 2025, "--db", db))
    _ok(cli("receive", _wave(tmp_path), "--year", 2025, "--db", db), 1)
    _as_schema_0003(db)
    from sqlalchemy import text

    from toolkit.archive import Archive
    from toolkit.archive.db import make_engine, resolve_url

    engine = make_engine(resolve_url(db))
    with engine.connect() as conn:
        sid = {code: i for i, code in conn.execute(text("SELECT id, unit_code FROM submissions"))}
        fps = conn.execute(text("SELECT warning_fps FROM submissions WHERE id = :i"), {"i": sid["152502101"]}).scalar()
    engine.dispose()
    fps = fps if isinstance(fps, str) else json.dumps(fps)
    cast = "CAST(:fp AS JSON)" if "://" in db else ":fp"
    columns = "year, unit_code, at, kind, note, fingerprints, submission_id"
    insert = f"INSERT INTO events ({columns}) VALUES (2025, :u, :at, :k, :n, {cast}, :s)"
    import datetime as dt

    at = (dt.datetime.now().astimezone() + dt.timedelta(seconds=1)).isoformat()  # after the receipts
    _sql(db, insert, u="152502101", at=at, k="说明", n=NOTE, fp=fps, s=sid["152502101"])
    _sql(db, insert, u="152502001", at=at, k="退回", n="封面未盖章", fp="[]", s=sid["152502001"])
    st = _status(cli, db)
    assert (st["152502101"]["status"], st["152502001"]["status"], st["152502003"]["status"]) == ("已通过", "退回", "退回")
    assert st["152502002"]["status"] == "已通过" and st["152502312"]["status"] == "未报送"
    assert st["152502001"]["note"] == "封面未盖章" and st["152502101"]["note"] == NOTE
    with Archive.open(db) as archive:
        assert len(archive.reports(2025)) == 19 and archive.notes(2025) == [("阿尔善宝拉格镇（152502101）", NOTE)]
        assert [h.kind for h in archive.history("152502101", 2025)] == ["收到", "说明"]
    _ok(cli("verify", "--db", db))


def test_archives_of_the_last_version_get_their_digests(cli, db, tmp_path):
    """An archive made before the digests (schema 0002) gets one for every stored receipt on first
    open, on SQLite and PostgreSQL alike, and verifies clean; a later change is then found."""
    _ok(cli("roster", "load", ROSTER, "--year", 2025, "--db", db))
    _ok(cli("receive", SAMPLES / "returns", "--year", 2025, "--db", db))
    _as_schema_0003(db)
    _sql(db, "ALTER TABLE submissions DROP COLUMN digest")
    _sql(db, "UPDATE alembic_version SET version_num = '0002'")
    res = _ok(cli("verify", "--db", db))
    assert "与收到时一致" in res.stderr
    _edit_json(db, "findings", "[]", '[{"code":"x"}]', "unit_code = '152502002'")
    res = _ok(cli("verify", "--db", db), 1)
    assert "（152502002）2025年度" in res.stderr


def test_absurd_years_and_a_roster_with_a_cycle(cli, tmp_path):
    """Issue 26.10: a year no archive can hold is a Chinese message and exit 2 on every archive
    command (never an OverflowError from the database); a roster whose 上级代码 go round in a circle
    names the units of the circle and their lines."""
    db = tmp_path / "a.db"
    _ok(cli("roster", "load", ROSTER, "--year", 2025, "--db", db))
    huge = "99999999999999999999"
    for args in (
        ("status", "--year", huge),
        ("status", "--year", "-5"),
        ("history", "152502001", "--year", huge),
        ("export", "--year", huge, "--out", tmp_path / "x.csv"),
        ("accept", "152502001", "--year", huge, "--note", "x"),
        ("receive", SAMPLES / "returns", "--year", huge),
        ("roster", "load", ROSTER, "--year", huge),
    ):
        res = _ok(cli(*args, "--db", db), 2)
        assert "报告年度" in res.stderr and "不合理" in res.stderr and "内部错误" not in res.stderr, args
    roster = tmp_path / "名册.csv"
    lines = ["单位代码,单位名称,单位类型,上级代码", "1525,某县人民政府,县级政府,"]
    lines += ["152501,甲镇,镇,152503", "152502,乙镇,镇,152501", "152503,丙镇,镇,152502", "152504,丁镇,镇,1525"]
    roster.write_text("\n".join(lines) + "\n", encoding="utf-8")
    res = _ok(cli("roster", "load", roster, "--year", 2026, "--db", db), 2)
    assert "循环" in res.stderr and "多个最上级单位" not in res.stderr
    ring = (("甲镇", 152501, 3), ("乙镇", 152502, 4), ("丙镇", 152503, 5))
    assert all(f"{n}（{c}，第{line}行）" in res.stderr for n, c, line in ring)
    assert "丁镇" not in res.stderr
