"""Write the sample workbooks from samples/returns.toml with the tool's own writer.

    python samples/make_samples.py

returns/    one consistent return per unit of samples/roster.csv (year 2025)
faulty/     copies with one planted, realistic mistake each (see `mistake` in the TOML)
seed-2023/  宝力根苏木 2023 exactly as published (shared/seeds/)
"""

from __future__ import annotations

import io
import re
import shutil
import sys
import tomllib
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from toolkit.roster import load_roster  # noqa: E402
from toolkit.spec import current_format  # noqa: E402
from toolkit.template import ReturnContent, file_name, write_return  # noqa: E402


def content_for(entry: dict, year: int, roster) -> ReturnContent:
    fmt = current_format()
    unit = roster.get(entry["code"])
    if unit is None:
        raise SystemExit(f"单位代码 {entry['code']} 不在名册中")
    unknown = set(entry.get("values", {})) - {c.id for c in fmt.inputs}
    if unknown:
        raise SystemExit(f"{entry['code']}：未知的单元格编号 {sorted(unknown)}")
    values = {c.id: 0 for c in fmt.inputs} | entry.get("values", {})
    for cid in entry.get("text", {}):
        values[cid] = None
    raw = dict(entry.get("text", {})) | dict(entry.get("overwrite", {}))
    return ReturnContent(unit=unit, year=year, values=values, raw=raw, cover=dict(entry.get("cover", {})))


def unprotect(path: Path, sheet_names: list[str]) -> None:
    """Remove <sheetProtection/> from the named sheets, as a clerk who knows the password would."""
    fmt = current_format()
    order = [fmt.cover.sheet_name] + [s.name for s in fmt.sheets]
    targets = {f"xl/worksheets/sheet{order.index(n) + 1}.xml" for n in sheet_names}
    src = zipfile.ZipFile(io.BytesIO(path.read_bytes()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            body = src.read(item.filename)
            if item.filename in targets:
                body = re.sub(rb"<sheetProtection[^>]*/>", b"", body)
            dst.writestr(item, body)
    path.write_bytes(out.getvalue())


def main() -> None:
    data = tomllib.loads((HERE / "returns.toml").read_text(encoding="utf-8"))
    roster = load_roster(HERE / "roster.csv")
    fmt = current_format()
    for folder in ("returns", "faulty", "seed-2023"):
        shutil.rmtree(HERE / folder, ignore_errors=True)
        (HERE / folder).mkdir()
    year = data["year"]
    for entry in data["returns"]:
        c = content_for(entry, year, roster)
        write_return(HERE / "returns" / file_name(c.unit, year), fmt, c)
    for entry in data["seed"]:
        c = content_for(entry, entry["year"], roster)
        write_return(HERE / "seed-2023" / file_name(c.unit, entry["year"]), fmt, c)
    for entry in data["faulty"]:
        c = content_for(entry, year, roster)
        path = HERE / "faulty" / file_name(c.unit, year, "政府信息公开年报_有误")
        write_return(path, fmt, c)
        if entry.get("unprotect"):
            unprotect(path, entry["unprotect"])
    print(f"returns: {len(data['returns'])}, faulty: {len(data['faulty'])}, seed: {len(data['seed'])}")


if __name__ == "__main__":
    main()
