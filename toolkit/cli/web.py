"""`nianbao serve` (the web page over the archive) and `nianbao links` (each unit's private upload
link). Thin: parse, call toolkit.web / the archive, print."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated

import typer

from .app import EXIT_OK, app, check_year, fail, say
from .archive import DbOption, YearOption


@app.command("links", no_args_is_help=True, rich_help_panel="报送网页")
def links_cmd(
    year: YearOption,
    base_url: Annotated[str, typer.Option("--base-url", help="网页的地址，例如 http://10.1.2.3:8000（单位能访问到的地址）。")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="把链接写入 CSV 文件（单位代码、单位名称、链接）。")] = None,
    rotate: Annotated[str | None, typer.Option("--rotate", help="给这个单位（代码或名称）换一个新链接，旧链接立即失效。")] = None,
    db: DbOption = None,
) -> None:
    """给名册中的每个单位生成一个专用上传链接（通过微信、短信或邮件发给填报人）。

    持链接的人只能看到和上传本单位的填报表。链接只在生成时显示一次（档案库中只存其摘要）；
    已有链接的单位不再生成，丢失时用 --rotate 换新。

    示例：

      nianbao links --year 2025 --base-url http://10.1.2.3:8000 --out 输出/链接.csv
    """
    from ..web.keys import issue_links

    check_year(year, 2000)
    if not base_url.startswith(("http://", "https://")):
        raise fail(f"--base-url 应以 http:// 或 https:// 开头：{base_url}")
    from ..archive import Archive

    with Archive.open(db) as archive:
        made, kept = issue_links(archive, year, rotate)
    rows = [(link.unit_code, link.unit_name, f"{base_url.rstrip('/')}/u/{link.token}") for link in made]
    if out:
        _write_links(out, rows)
        say("已生成 {} 个链接，保存在：{}", len(rows), out)
    else:
        for code, name, url in rows:
            print(f"{code}\t{name}\t{url}")
    if kept:
        say("另有 {} 个单位已有链接，未重新生成（丢失时用 --rotate 单位 换新）：{}", len(kept), "、".join(kept[:10]))
    raise typer.Exit(EXIT_OK)


def _write_links(out: Path, rows: list[tuple[str, str, str]]) -> None:
    from ..fileio import atomic_write_bytes

    lines: list[str] = []

    class _Sink:
        def write(self, s: str) -> None:
            lines.append(s)

    writer = csv.writer(_Sink())
    writer.writerow(["单位代码", "单位名称", "链接"])
    writer.writerows(rows)
    atomic_write_bytes(out, ("\ufeff" + "".join(lines)).encode("utf-8"))  # BOM: Excel opens it as UTF-8


@app.command("serve", rich_help_panel="报送网页")
def serve_cmd(
    year: YearOption,
    host: Annotated[str, typer.Option("--host", help="监听地址：127.0.0.1 仅本机；0.0.0.0 供内网各单位。")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="端口。")] = 8000,
    admin_key_file: Annotated[
        Path | None, typer.Option("--admin-key-file", help="管理密钥文件（不在本机地址上提供服务时使用；不给时自动生成并显示）。")
    ] = None,
    db: DbOption = None,
) -> None:
    """启动报送网页：县里在本机浏览器中查看报送情况、审核、汇总；各单位用专用链接上传填报表。

    在 127.0.0.1 上，管理页面对本机用户开放；在其他地址上（如 --host 0.0.0.0），管理页面需要管理密钥。
    所有页面和资源都在本机提供，不需要连接互联网。按 Ctrl-C 停止。

    示例：

      nianbao serve --year 2025 --port 8000
    """
    from ..archive import Archive
    from ..web import WebConfig, create_app
    from ..web.app import is_loopback
    from ..web.keys import set_admin_key

    check_year(year, 2000)
    open_admin = is_loopback(host)
    config = WebConfig(db=db, year=year, open_admin=open_admin)
    if not open_admin:
        key = _admin_key(admin_key_file)
        with Archive.open(db) as archive:
            set_admin_key(archive, key)
        if not admin_key_file:
            say("管理密钥（登录管理页面时输入，请妥善保存）：{}", key)
    app_ = create_app(config)
    import uvicorn

    say("报送网页已启动：http://{}:{}/ （按 Ctrl-C 停止）", host, port)
    uvicorn.run(app_, host=host, port=port, log_level="warning")


def _admin_key(path: Path | None) -> str:
    from ..web.keys import new_secret

    if path is None:
        return new_secret()
    try:
        key = path.read_text(encoding="utf-8").strip()
    except OSError as e:
        raise fail(f"无法读取管理密钥文件 {path}：{e.strerror or e}") from None
    if len(key) < 16:
        raise fail(f"管理密钥文件 {path} 中的密钥太短：至少16个字符。")
    return key
