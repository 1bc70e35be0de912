"""Drive a running LibreOffice (soffice) through UNO, as a clerk would.

Runs under Debian's /usr/bin/python3 (python3-uno), not the project venv, so it
uses the standard library only. One call = one job: open a private copy of a
workbook hidden, run steps, print a JSON list of step results on stdout.

    /usr/bin/python3 lo_driver.py --pipe NAME --job job.json
    /usr/bin/python3 lo_driver.py --pipe NAME --ping

Steps ("op"):
  type       sheet, cell, text   — through the dispatcher (.uno:EnterString), the path behind typing,
                                   which respects sheet protection
  api_set    sheet, cell, value  — through the cell API, which bypasses protection (tampering)
  api_insert_sheet name
  api_remove_row   sheet, row (0-based)
  api_insert_rows  sheet, row (0-based), count
  api_insert_cols  sheet, col (0-based), count
  api_unprotect    sheet, password
  calc                           — recalculate everything
  read       sheet, cells        — value, string and formula of each cell
  save       path, filter        — e.g. "Calc MS Excel 2007 XML" or "calc8" (.ods)
  pdf        path
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import uno  # noqa: F401  (python3-uno)
from com.sun.star.beans import PropertyValue


def pv(name, value):
    p = PropertyValue()
    p.Name, p.Value = name, value
    return p


def connect(pipe, timeout=60.0):
    local = uno.getComponentContext()
    resolver = local.ServiceManager.createInstanceWithContext("com.sun.star.bridge.UnoUrlResolver", local)
    deadline = time.time() + timeout
    while True:
        try:
            return resolver.resolve(f"uno:pipe,name={pipe};urp;StarOffice.ComponentContext")
        except Exception:
            if time.time() > deadline:
                raise
            time.sleep(0.3)


def url(path):
    return uno.systemPathToFileUrl(os.path.abspath(path))


def run_job(ctx, job):
    smgr = ctx.ServiceManager
    desktop = smgr.createInstanceWithContext("com.sun.star.frame.Desktop", ctx)
    dispatcher = smgr.createInstanceWithContext("com.sun.star.frame.DispatchHelper", ctx)
    tmp = tempfile.mkdtemp(prefix="nianbao-lo-")
    # a private copy: a stale .~lock next to the input would make the load silently return None
    private = os.path.join(tmp, "in" + os.path.splitext(job["open"])[1])
    shutil.copyfile(job["open"], private)
    doc = desktop.loadComponentFromURL(url(private), "_blank", 0, (pv("Hidden", True),))
    if doc is None:
        raise RuntimeError("LibreOffice could not load " + job["open"])
    results = []
    try:
        controller = doc.getCurrentController()
        frame = controller.getFrame()
        for step in job["steps"]:
            op = step["op"]
            if op == "type":
                sheet = doc.Sheets.getByName(step["sheet"])
                controller.setActiveSheet(sheet)
                dispatcher.executeDispatch(frame, ".uno:GoToCell", "", 0, (pv("ToPoint", step["cell"]),))
                dispatcher.executeDispatch(frame, ".uno:EnterString", "", 0, (pv("StringName", step["text"]),))
                results.append({"op": op, "cell": step["cell"]})
            elif op == "api_set":
                cell = doc.Sheets.getByName(step["sheet"]).getCellRangeByName(step["cell"])
                if isinstance(step["value"], str):
                    cell.setString(step["value"])
                else:
                    cell.setValue(step["value"])
                results.append({"op": op})
            elif op == "api_insert_sheet":
                doc.Sheets.insertNewByName(step["name"], doc.Sheets.getCount())
                results.append({"op": op})
            elif op == "api_insert_rows":
                doc.Sheets.getByName(step["sheet"]).getRows().insertByIndex(step["row"], step.get("count", 1))
                results.append({"op": op})
            elif op == "api_insert_cols":
                doc.Sheets.getByName(step["sheet"]).getColumns().insertByIndex(step["col"], step.get("count", 1))
                results.append({"op": op})
            elif op == "api_remove_row":
                doc.Sheets.getByName(step["sheet"]).getRows().removeByIndex(step["row"], 1)
                results.append({"op": op})
            elif op == "api_unprotect":
                doc.Sheets.getByName(step["sheet"]).unprotect(step.get("password", ""))
                results.append({"op": op})
            elif op == "calc":
                doc.calculateAll()
                results.append({"op": op})
            elif op == "read":
                sheet = doc.Sheets.getByName(step["sheet"])
                cells = {}
                for name in step["cells"]:
                    c = sheet.getCellRangeByName(name)
                    cells[name] = {"value": c.getValue(), "string": c.getString(), "formula": c.getFormula()}
                results.append({"op": op, "cells": cells, "protected": sheet.isProtected()})
            elif op == "save":
                doc.storeToURL(url(step["path"]), (pv("FilterName", step["filter"]), pv("Overwrite", True)))
                results.append({"op": op, "path": step["path"]})
            elif op == "pdf":
                doc.storeToURL(url(step["path"]), (pv("FilterName", "calc_pdf_Export"),))
                results.append({"op": op, "path": step["path"]})
            else:
                raise ValueError("unknown op " + op)
    finally:
        try:
            doc.close(True)
        except Exception:
            pass
        shutil.rmtree(tmp, ignore_errors=True)
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pipe", required=True)
    ap.add_argument("--job")
    ap.add_argument("--ping", action="store_true")
    args = ap.parse_args()
    ctx = connect(args.pipe, 90.0 if args.ping else 10.0)
    if args.ping:
        print(json.dumps({"ok": True}))
        return 0
    with open(args.job, encoding="utf-8") as fh:
        job = json.load(fh)
    print(json.dumps(run_job(ctx, job), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
