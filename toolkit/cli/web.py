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
        archive.set_setting("links_base_url", base_url)  # `serve` answers for this address's host
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
    from ..fileio import OWNER_ONLY, atomic_write_bytes

    lines: list[str] = []

    class _Sink:
        def write(self, s: str) -> None:
            lines.append(s)

    writer = csv.writer(_Sink())
    writer.writerow(["单位代码", "单位名称", "链接"])
    writer.writerows(rows)
    # BOM: Excel opens it as UTF-8. Owner only: each link lets its holder upload as that unit.
    atomic_write_bytes(out, ("\ufeff" + "".join(lines)).encode("utf-8"), OWNER_ONLY)


@app.command("serve", rich_help_panel="报送网页")
def serve_cmd(
    year: YearOption,
    host: Annotated[str, typer.Option("--host", help="监听地址：127.0.0.1 仅本机；0.0.0.0 供内网各单位。")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="端口。")] = 8000,
    admin_key_file: Annotated[
        Path | None, typer.Option("--admin-key-file", help="管理密钥文件（不在本机地址上提供服务时使用；不给时自动生成并显示）。")
    ] = None,
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="各单位访问网页用的地址（不给时用 nianbao links 记下的地址）。")
    ] = None,
    allow_host: Annotated[
        list[str] | None, typer.Option("--allow-host", help="还允许的网页主机名（可重复），例如 nianbao.county.gov.cn。")
    ] = None,
    certfile: Annotated[Path | None, typer.Option("--certfile", help="HTTPS 证书文件（PEM）；与 --keyfile 一起使用。")] = None,
    keyfile: Annotated[Path | None, typer.Option("--keyfile", help="HTTPS 私钥文件（PEM）；与 --certfile 一起使用。")] = None,
    max_file_mb: Annotated[
        float, typer.Option("--max-file-mb", help="每次上传的每个文件最多多少 MB（填报表一般只有几十 KB）。")
    ] = 2.0,
    max_unit_mb: Annotated[
        float, typer.Option("--max-unit-mb", help="每个单位每年通过链接最多存入多少 MB 的文件（相同的文件只算一次）。")
    ] = 30.0,
    max_uploads_per_hour: Annotated[int, typer.Option("--max-uploads-per-hour", help="每个单位的链接每小时最多上传几次。")] = 60,
    db: DbOption = None,
) -> None:
    """启动报送网页：县里在本机浏览器中查看报送情况、审核、汇总；各单位用专用链接上传填报表。

    在 127.0.0.1 上，管理页面对本机用户开放；在其他地址上（如 --host 0.0.0.0），管理页面需要管理密钥，
    并请用 --certfile/--keyfile 提供 HTTPS（否则链接和密钥在内网中明文传输）。只回答本机地址、--host、
    --base-url 和 --allow-host 的主机名。所有页面和资源都在本机提供，不需要连接互联网。按 Ctrl-C 停止。

    示例：

      nianbao serve --year 2025 --port 8000
    """
    from ..archive import Archive
    from ..web import WebConfig, create_app
    from ..web.app import is_loopback
    from ..web.keys import set_admin_key

    check_year(year, 2000)
    open_admin = is_loopback(host)
    key = None if open_admin else _admin_key(admin_key_file)
    tls = _serve_checks(host, port, certfile, keyfile, base_url)
    config = WebConfig(db=db, year=year, open_admin=open_admin, tls=bool(tls), base_url=base_url)
    config.allow(host, allow_host or [])
    config.quotas = _quotas(max_file_mb, max_unit_mb, max_uploads_per_hour)
    if key:
        with Archive.open(db) as archive:
            set_admin_key(archive, key)
        if not admin_key_file:
            say("管理密钥（登录管理页面时输入，请妥善保存）：{}", key)
    app_ = create_app(config)
    from ..web.server import run

    say("报送网页已启动：{}://{}:{}/ （按 Ctrl-C 停止）", "https" if tls else "http", host, port)
    run(app_, host=host, port=port, **tls)


def _quotas(file_mb: float, unit_mb: float, per_hour: int):
    """The links' limits from serve's options, refused in Chinese when they make no sense."""
    from ..web.limits import MB, Quotas

    for name, value, example in (
        ("--max-file-mb", file_mb, 2),
        ("--max-unit-mb", unit_mb, 30),
        ("--max-uploads-per-hour", per_hour, 60),
    ):
        if not 0 < value < 1e6:  # also NaN
            raise fail(f"{name} {value:g} 不合理：应为大于 0 的数（默认 {example}）。")
    if unit_mb < file_mb:
        raise fail(f"--max-unit-mb（{unit_mb:g}）不能小于 --max-file-mb（{file_mb:g}）：否则一个文件也存不进去。")
    return Quotas(file_bytes=int(file_mb * MB), unit_bytes=int(unit_mb * MB), uploads_per_hour=per_hour)


def _admin_key(path: Path | None) -> str:
    from ..web.keys import new_secret

    if path is None:
        return new_secret()
    try:
        key = path.read_text(encoding="utf-8").strip()
    except OSError as e:
        raise fail(f"无法读取管理密钥文件 {path}：{e.strerror or e}") from None
    except UnicodeDecodeError:
        raise fail(f"管理密钥文件 {path} 不是文本文件（应为一行 UTF-8 文字，至少16个字符）。") from None
    if len(key) < 16:
        raise fail(f"管理密钥文件 {path} 中的密钥太短：至少16个字符。")
    return key


def _serve_checks(host: str, port: int, certfile: Path | None, keyfile: Path | None, base_url: str | None) -> dict[str, str]:
    """Refuse in Chinese, before anything starts, what uvicorn would refuse in English; returns
    uvicorn's TLS arguments (empty without --certfile/--keyfile)."""
    if not 1 <= port <= 65535:
        raise fail(f"端口 {port} 不合理：应为 1 到 65535 之间的整数，例如 8000。")
    if base_url is not None and not base_url.startswith(("http://", "https://")):
        raise fail(f"--base-url 应以 http:// 或 https:// 开头：{base_url}")
    tls = _tls(certfile, keyfile)
    _try_bind(host, port)
    return tls


def _tls(certfile: Path | None, keyfile: Path | None) -> dict[str, str]:
    if certfile is None and keyfile is None:
        return {}
    if certfile is None or keyfile is None:
        raise fail("--certfile 和 --keyfile 要一起给出（证书文件和私钥文件）。")
    import ssl

    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(str(certfile), str(keyfile))
    except (OSError, ssl.SSLError, ValueError) as e:
        detail = getattr(e, "strerror", None) or getattr(e, "reason", None) or e
        raise fail(
            f"无法使用证书 {certfile} 和私钥 {keyfile}（{detail}）。请检查两个文件是否存在、可读、为 PEM 格式且相互匹配。"
        ) from None
    return {"ssl_certfile": str(certfile), "ssl_keyfile": str(keyfile)}


def _try_bind(host: str, port: int) -> None:
    """Bind the address once before saying the page has started: a port in use or an address that is
    not this machine's is a Chinese message (exit 2), not an English uvicorn error."""
    import errno
    import socket

    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
            s.bind((host, port))
    except socket.gaierror:
        raise fail(f"监听地址 {host} 无法识别。请用本机的 IP 地址，例如 127.0.0.1 或 0.0.0.0。") from None
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise fail(
                f"端口 {port} 已被其他程序占用（可能已有一个 nianbao serve 在运行）。请换一个端口，或先停止占用它的程序。"
            ) from None
        if e.errno == errno.EADDRNOTAVAIL:
            raise fail(f"监听地址 {host} 不是本机的地址。请用本机的 IP 地址，或用 0.0.0.0 监听全部地址。") from None
        if e.errno == errno.EACCES:
            raise fail(f"没有权限使用端口 {port}（1024 以下的端口需要管理员权限）。请换一个端口，例如 --port 8000。") from None
        raise fail(f"无法在 {host}:{port} 上启动网页（{e.strerror or e}）。") from None
