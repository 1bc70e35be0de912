"""Issue 27: the county decides what counts — every upload a version, the reviewer approves a version,
approval locks it — replayed at the archive and on the command line, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from archive_util import cli_ok as _ok
from archive_util import write_return

from toolkit.archive import Archive

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
ROSTER = SAMPLES / "roster.csv"
RETURNS = sorted((SAMPLES / "returns").glob("*.xlsx"))
FAULTY = SAMPLES / "faulty" / "152502003_杭盖街道_2025年政府信息公开年报_有误.xlsx"  # O1: 强制性
XILIN, HANGAI, POLICE, COUNTY = "152502001", "152502003", "152502301", "152502"


def _t3(**values: int) -> dict:
    """Table 3 all zeros but ``values`` (np column), consistent (each application 予以公开)."""
    from toolkit.spec import current_format

    zero = {c.id: 0 for c in current_format().inputs if c.sheet_id == "t3"}
    got = values.get("r1", 0)
    return zero | {"t3.r1.np": got, "t3.r3_1.np": got}


def _total(cli, db: str, tmp_path: Path, name: str) -> float:
    res = _ok(cli("consolidate", "--db", db, "--year", 2025, "--out", tmp_path / name / "汇总.xlsx", "--json", "--force"))
    return json.loads(res.stdout)["summary"]["totals"]["t3.r1.tot"]


def test_a_season_of_versions(cli, db, tmp_path):
    """Older-dated upload locked out until approved and flagged; v1→v2→v1 through a link; a manual
    退回 stays; a decision on a superseded version refused; reopen; the archive's summary equals a
    folder of the approved versions' bytes."""
    _ok(cli("roster", "load", ROSTER, "--year", 2025, "--deadline", "2026-01-15", "--auto-approve", "--db", db))
    _ok(cli("receive", *RETURNS, "--year", 2025, "--db", db))  # clean samples: approved at once
    newer = write_return(tmp_path / "新.xlsx", XILIN, 2025, _t3(r1=1), cover={"date": "2026-01-08", "note": "本年收到1件申请"})
    older = write_return(tmp_path / "旧.xlsx", XILIN, 2025, _t3(r1=0), cover={"date": "2026-01-05"})
    _ok(cli("receive", newer, "--year", 2025, "--db", db))
    _ok(cli("accept", XILIN, "--year", 2025, "--db", db))
    before = _total(cli, db, tmp_path, "a")

    # the earlier draft, forwarded later: a new version, flagged, and the county's figures stay
    res = _ok(cli("receive", older, "--year", 2025, "--db", db))
    assert "新版本（第3版），待审核" in res.stderr and "填报日期早于当前版本" in res.stderr
    with Archive.open(db) as archive:
        s = archive.state(XILIN, 2025)
        assert (s.status, s.older_date, s.version, s.approved_version) == ("待审核", True, 3, 2)
        assert [v.explanation for v in archive.versions(XILIN, 2025)][1:] == ["本年收到1件申请", ""]
        changes = archive.diff(XILIN, 2025)  # approved (第2版) → newest (第3版)
        assert {(c.cell_id, c.old, c.new) for c in changes} >= {("t3.r1.np", 1, 0)}
    assert _total(cli, db, tmp_path, "b") == before
    status = json.loads(_ok(cli("status", "--year", 2025, "--db", db, "--json")).stdout)["units"]
    (line,) = [u for u in status if u["code"] == XILIN]
    assert line["older_date"] and line["pending_id"] and line["approved_version"] == 2
    res = _ok(cli("diff", XILIN, "--year", 2025, "--db", db))
    assert "表三" in res.stderr and "1" in res.stderr and "处不同" in res.stderr
    res = _ok(cli("history", XILIN, "--year", 2025, "--cells", "--db", db))
    assert "第3版" in res.stderr and "与第2版" in res.stderr and "处不同" in res.stderr

    # a decision on a version that is no longer the newest is refused, naming both
    with Archive.open(db) as archive:
        sid = archive.state(XILIN, 2025).approved_id
        with pytest.raises(Exception, match=r"第2版（编号\d+）已不是最新，最新的是第3版"):
            archive.approve(XILIN, 2025, "", submission_id=sid, actor="管理页面")
    res = cli("accept", XILIN, "--year", 2025, "--db", db, "--submission", sid)
    assert res.returncode == 2 and "已不是最新" in res.stderr
    _ok(cli("accept", XILIN, "--year", 2025, "--db", db, "--note", "已电话核实，以1月5日的为准"))
    assert _total(cli, db, tmp_path, "c") == before - 1

    # 撤销通过: the unit's figures leave the summary until a version is approved again
    _ok(cli("reopen", XILIN, "--year", 2025, "--db", db, "--note", "与台账不符，请核实"))
    with Archive.open(db) as archive:
        s = archive.state(XILIN, 2025)
        assert (s.status, s.approved_id, s.note) == ("退回", None, "与台账不符，请核实")
        assert XILIN not in {r.unit_code for r in archive.reports(2025)}
        # v1 → v2 → v1 through the unit's link: three versions, v1 again the pending one
        day = {"date": "2026-01-20"}  # after the sample's: not flagged as older
        v1 = write_return(tmp_path / "v1.xlsx", POLICE, 2025, _t3(r1=300), cover=day)
        v2 = write_return(tmp_path / "v2.xlsx", POLICE, 2025, _t3(r1=312), cover=day)
        got = [archive.receive([f], 2025, only_unit=POLICE, source="链接")[0] for f in (v1, v2, v1)]
        assert [(r.outcome, r.version) for r in got] == [("新版本", 2), ("新版本", 3), ("新版本", 4)]
        again = archive.receive([v1], 2025, only_unit=POLICE, source="链接")[0]  # a retry: no new version
        assert (again.outcome, again.version) == ("重复（与最新版本相同）", 4)
        kinds = [(h.kind, h.actor, h.version) for h in archive.history(POLICE, 2025)]
        assert [k for k in kinds if k[0] == "收到"] == [
            ("收到", "命令行", 1),
            ("收到", "链接", 2),
            ("收到", "链接", 3),
            ("收到", "链接", 4),
        ]
        assert ("重复收到", "链接", 4) in kinds
        assert archive.state(POLICE, 2025).status == "已通过"  # auto-approve: clean versions pass

        # a manual 退回 stays after an identical-number re-upload (only 填报日期 changed), auto-approve on
        archive.reject(POLICE, 2025, "行政许可300件与政务服务网公布的312件不一致")
        same = write_return(tmp_path / "v1b.xlsx", POLICE, 2025, _t3(r1=300), cover={"date": "2026-01-21"})
        (r,) = archive.receive([same], 2025, only_unit=POLICE, source="链接")
        s = archive.state(POLICE, 2025)
        assert (r.auto, s.status, s.reason) == ("", "待审核", "行政许可300件与政务服务网公布的312件不一致")
        assert [v.number for v in archive.versions(POLICE, 2025)] == [1, 2, 3, 4, 5]

    # cell for cell: the archive's summary = a folder of the approved versions' bytes
    folder = tmp_path / "approved"
    folder.mkdir()
    with Archive.open(db) as archive:
        for rep in archive.reports(2025):
            (folder / rep.provenance.name.replace("/", "_")).write_bytes(archive.file_bytes(rep.provenance.sha256))
    a = _ok(cli("consolidate", "--db", db, "--year", 2025, "--out", tmp_path / "x" / "汇总.xlsx", "--json", "--force"))
    b = _ok(
        cli("consolidate", folder, "--roster", ROSTER, "--year", 2025, "--out", tmp_path / "y" / "汇总.xlsx", "--json", "--force")
    )
    sa, sb = json.loads(a.stdout)["summary"], json.loads(b.stdout)["summary"]
    assert sa["totals"] == sb["totals"] and sa["counts"] == sb["counts"]
    assert [(u["unit_code"], u["status"], u["sha256"]) for u in sa["units"]] == [
        (u["unit_code"], u["status"], u["sha256"]) for u in sb["units"]
    ]
    assert XILIN in {u["unit_code"] for u in sa["units"] if u["status"] == "未报送"}


def test_explainable_and_mandatory_errors(db, tmp_path):
    """A carry-over difference (核实性) is approved with a 说明; an O1 error (强制性) never, and is
    退回 at once by itself."""
    with Archive.open(db) as archive:
        for y in (2024, 2025):
            archive.load_roster(ROSTER, y)
        last = write_return(tmp_path / "2024.xlsx", HANGAI, 2024, _t3() | {"t3.r4.np": 2, "t3.r1.np": 2})
        archive.receive([last], 2024)
        archive.approve(HANGAI, 2024)
        now = write_return(tmp_path / "2025.xlsx", HANGAI, 2025, _t3() | {"t3.r2.np": 1, "t3.r3_1.np": 1})
        (got,) = archive.receive([now], 2025)
        assert got.counts["错误"] == 1 and got.status == "待审核" and got.auto == ""
        with pytest.raises(Exception, match="需核实的错误.*写明说明"):
            archive.approve(HANGAI, 2025)
        s = archive.approve(HANGAI, 2025, "机构调整，1件移交旗政务服务局办理")
        assert s.status == "已通过" and archive.notes(2025) == [("杭盖街道（152502003）", "机构调整，1件移交旗政务服务局办理")]
        changes = archive.diff_last_year(HANGAI, 2025)
        assert any(c.cell_id == "t3.r2.np" for c in changes)

        (bad,) = archive.receive([FAULTY], 2025)
        assert (bad.outcome, bad.status, bad.auto) == ("新版本", "退回", "退回")
        with pytest.raises(Exception, match=r"强制性错误.*O1"):
            archive.approve(HANGAI, 2025, "无论如何")
        s = archive.state(HANGAI, 2025)
        assert s.approved_version == 1 and s.decided_by == "自动" and "O1" in s.note  # the 说明'd version still counts


def test_a_summary_never_replaces_a_units_own_return(cli, db, tmp_path):
    """A 县级汇总 workbook is refused through the county's link and for a unit whose type is not a
    summary level; the attempt through a link is recorded as 拒收; so is an .xls, with its reason."""
    _ok(cli("consolidate", SAMPLES / "returns", "--roster", ROSTER, "--year", 2025, "--out", tmp_path / "汇总.xlsx"))
    summary = tmp_path / "汇总.xlsx"
    xls = tmp_path / "年报.xls"
    xls.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512)
    _ok(cli("roster", "load", ROSTER, "--year", 2025, "--db", db))
    county = next(f for f in RETURNS if f.name.startswith(COUNTY + "_"))
    _ok(cli("receive", county, "--year", 2025, "--db", db))
    res = _ok(cli("receive", summary, "--year", 2025, "--db", db), 0)
    assert "拒收（汇总表）" in res.stderr and "县级汇总" in res.stderr and "未接收 1 个" in res.stderr
    with Archive.open(db) as archive:
        got = archive.receive([summary, xls], 2025, only_unit=COUNTY, source="链接")
        assert [r.outcome for r in got] == ["拒收（汇总表）", "无法读取"] and all(r.submission_id is None for r in got)
        assert ".xls" in got[1].reason or "旧版" in got[1].reason
        s = archive.state(COUNTY, 2025)
        assert (s.version, s.file) == (1, county.name)
        refused = [h for h in archive.history(COUNTY, 2025) if h.kind == "拒收"]
        assert [h.actor for h in refused] == ["链接", "链接"] and "汇总" in refused[0].text and "年报.xls" in refused[1].text


def test_cli_details(cli, db, tmp_path, monkeypatch):
    """status never creates an archive; a roster reloaded keeps its deadline and setting; receive
    exits 1 for a file with errors received again; --all-clean approves only clean versions."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NIANBAO_DB", raising=False)
    res = _ok(cli("status", "--year", 2025), 2)
    assert "没有档案库" in res.stderr and not (tmp_path / "nianbao.db").exists()
    _ok(cli("roster", "load", ROSTER, "--year", 2025, "--deadline", "2026-01-15", "--auto-approve", "--db", db))
    res = _ok(cli("roster", "load", ROSTER, "--year", 2025, "--db", db))
    assert "截止日期 2026-01-15" in res.stderr and "自动通过" in res.stderr
    _ok(cli("roster", "load", ROSTER, "--year", 2025, "--no-auto-approve", "--db", db))
    _ok(cli("receive", FAULTY, RETURNS[0], "--year", 2025, "--db", db), 1)
    res = _ok(cli("receive", FAULTY, "--year", 2025, "--db", db), 1)  # as check: the file has an error
    assert "与最新版本" in res.stderr
    warned = SAMPLES / "faulty" / "152502101_阿尔善宝拉格镇_2025年政府信息公开年报_有误.xlsx"
    _ok(cli("receive", warned, "--year", 2025, "--db", db))
    res = _ok(cli("accept", "--all-clean", "--year", 2025, "--db", db))
    assert "共通过 1 个" in res.stderr
    with Archive.open(db) as archive:
        states = {s.code: s.status for s in archive.status(2025) if s.submission_id}
        assert states == {XILIN: "已通过", HANGAI: "退回", "152502101": "待审核"}
        counted = []
        archive.receive(RETURNS[1:4], 2025, stored=counted.append)
        assert counted and counted[-1] == 3
