"""`nianbao serve` (the web page over the archive) and `nianbao links` (each unit's private upload
link). Thin: parse, call toolkit.web / the archive, print."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated

import typer

from .app import EXIT_OK, UnderOption, app, check_year, fail, say
from .archive import DbOption, YearOption, scope_of_under


@app.command("links", no_args_is_help=True, rich_help_panel="报送网页")
def links_cmd(
    year: YearOption,
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", help="网页的地址，例如 http://10.1.2.3:8000（单位能访问到的地址；不给时用上次记下的地址）。"),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="把链接写入 CSV 文件（单位代码、单位名称、链接）。")] = None,
    rotate: Annotated[
        str | None,
        typer.Option("--rotate", help="给这些单位（代码或名称，多个用逗号分隔；“全部”为所有单位）换新链接，旧链接立即失效。"),
    ] = None,
    under: UnderOption = None,
    db: DbOption = None,
) -> None:
    """列出名册中每个单位的专用上传链接（通过微信、短信或邮件发给填报人）；还没有链接的单位生成一个。

    持链接的人只能看到和上传本单位的填报表。每次都写出全部单位的当前链接（可以随时重新运行，
    例如换了网页地址之后）；链接跨年度有效，只有 --rotate 才会更换。--out 的文件已存在时，
    其中仍然有效的链接一个也不会丢。

    示例：

      nianbao links --year 2025 --base-url http://10.1.2.3:8000 --out 输出/链接.csv

      nianbao links --year 2025 --rotate 宝力根苏木,杭盖街道 --out 输出/链接.csv

      nianbao links --year 2025 --under 152502 --out 输出/锡林浩特市链接.csv（市的档案库中只管一个县的单位）
    """
    from ..api import Archive
    from ..web.app import BASE_URL_SETTING
    from ..web.keys import rotate_codes

    check_year(year, 2000)
    if base_url is not None and not base_url.startswith(("http://", "https://")):
        raise fail(f"--base-url 应以 http:// 或 https:// 开头：{base_url}")
    with Archive.open(db) as archive:
        base = base_url or archive.setting(BASE_URL_SETTING)
        if not base:
            raise fail(
                f"请用 --base-url 给出各单位访问网页用的地址，例如：nianbao links --year {year} --base-url http://10.1.2.3:8000"
            )
        before = _links_file(out, archive) if out is not None else []  # refused before any link changes
        scope = scope_of_under(archive, year, under)
        codes = _in_scope(rotate_codes(archive, year, rotate), scope, rotate) if rotate else []
        links, hidden = archive.issue_links(year, codes, under=scope and scope.root)
        archive.set_setting(BASE_URL_SETTING, base)  # `serve` answers for this address's host
    rows, kept = _merge(links, hidden, before, base)
    if out:
        _write_links(out, rows)
        say("已写出 {} 个单位的链接，保存在：{}", len(rows), out)
    else:
        for code, name, url in rows:
            print(f"{code}\t{name}\t{url}")
    _report(links, hidden, kept, codes, year)
    raise typer.Exit(EXIT_OK)


def _in_scope(codes: list[str], scope, rotate: str) -> list[str]:  # type: ignore[no-untyped-def]
    """--rotate within --under: 全部 is every unit of the county; a unit of another county is refused
    before any link changes."""
    if scope is None:
        return codes
    outside = [c for c in codes if not scope.can_see(c)]
    if outside and "全部" not in rotate:
        raise fail(
            f"--rotate 中的单位 {'、'.join(outside)} 不在 --under 指定的{scope.name}（{scope.root}）及其下级单位中，"
            "没有更换任何链接。"
        )
    return [c for c in codes if scope.can_see(c)]


def _report(links, hidden, kept, rotated: list[str], year: int) -> None:  # type: ignore[no-untyped-def]
    made = [link.unit_name for link in links if link.made and link.unit_code not in rotated]
    if made:
        say("其中 {} 个单位的链接是这次新生成的：{}", len(made), _names(made))
    changed = [link.unit_name for link in links if link.made and link.unit_code in rotated]
    if changed:
        say("已给 {} 个单位换了新链接，旧链接已失效，请把新链接发给这些单位：{}", len(changed), _names(changed))
    lost = [u.name for u in hidden if u.code not in kept]
    if lost:
        say(
            "另有 {} 个单位的链接是旧版本 nianbao 生成的，仍然有效，但无法再次显示：{}。"
            "如果已经丢失，请用 --rotate 单位 换新（例如 nianbao links --year {} --rotate {} --out 链接.csv）。",
            len(lost),
            _names(lost),
            year,
            lost[0],
        )


def _names(names: list[str]) -> str:
    return "、".join(names[:10]) + (f"等{len(names)}个" if len(names) > 10 else "")


def _link_url(base: str, token: str) -> str:
    return f"{base.rstrip('/')}/u/{token}"


def _merge(links, hidden, before: list[tuple[str, str, str]], base: str):  # type: ignore[no-untyped-def]
    """The rows to write: every link of the roster, then the still working links of the file being
    replaced that nianbao cannot show again (older links, units of another year's roster), so the
    new file never holds fewer working links than the old one. Second: the codes kept that way."""
    rows = [(link.unit_code, link.unit_name, _link_url(base, link.token)) for link in links]
    have = {link.unit_code for link in links}
    kept = []
    for code, name, token in before:
        if code not in have:
            rows.append((code, name, _link_url(base, token)))
            have.add(code)
            kept.append(code)
    return rows, kept


def _links_file(out: Path, archive) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    """The links in an existing --out file that still work: (code, name, token). A file that is not a
    links CSV of nianbao is refused (it is never overwritten)."""
    if not out.exists():
        return []
    try:
        text = out.read_text(encoding="utf-8-sig")
        rows = list(csv.reader(text.splitlines()))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise fail(f"{out} 已存在，但无法读取（{getattr(e, 'strerror', None) or e}），没有覆盖。请换一个文件名。") from None
    if not rows or rows[0][:3] != ["单位代码", "单位名称", "链接"]:
        raise fail(f"{out} 已存在，但不是 nianbao links 写出的链接表，没有覆盖。请换一个文件名（--out）。")
    found = []
    for row in rows[1:]:
        if len(row) >= 3 and "/u/" in row[2]:
            token = row[2].rstrip("/").rsplit("/u/", 1)[1]
            if archive.link_unit(token) == row[0]:
                found.append((row[0], row[1], token))
    return found


def _write_links(out: Path, rows: list[tuple[str, str, str]]) -> None:
    from ..api import OWNER_ONLY, atomic_write_bytes

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
        Path | None,
        typer.Option(
            "--admin-key-file", help="管理密钥文件（不在本机地址上提供服务时使用；不给时第一次启动自动生成并显示一次）。"
        ),
    ] = None,
    new_admin_key: Annotated[
        bool, typer.Option("--new-admin-key", help="生成新的管理密钥（显示一次），旧密钥和已登录的会话立即作废。")
    ] = False,
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
    workers: Annotated[
        int,
        typer.Option(
            "--workers", help="工作进程数（一个市或省一台服务器，例如 4）；大于 1 时档案库须为 PostgreSQL，管理页面都要登录。"
        ),
    ] = 1,
    db: DbOption = None,
) -> None:
    """启动报送网页：县里在本机浏览器中查看报送情况、审核、汇总；各单位用专用链接上传填报表。

    在 127.0.0.1 上，管理页面对本机用户开放；在其他地址上（如 --host 0.0.0.0），管理页面需要管理密钥
    （第一次启动时生成并显示一次，档案库只存其摘要，重启后不变；--new-admin-key 换新），并显示各单位可用的
    本机地址；请用 --certfile/--keyfile 提供 HTTPS（否则链接和密钥在内网中明文传输）。只回答本机地址、--host、
    --base-url 和 --allow-host 的主机名。所有页面和资源都在本机提供，不需要连接互联网。按 Ctrl-C 停止。

    示例：

      nianbao serve --year 2025 --port 8000

      nianbao serve --year 2025 --host 0.0.0.0 --port 8000
    """
    from ..api import Archive
    from ..web import WebConfig, create_app
    from ..web.app import BASE_URL_SETTING, WILDCARDS, is_loopback

    check_year(year, 2000)
    if admin_key_file is not None and new_admin_key:
        raise fail("--admin-key-file 和 --new-admin-key 只能用一个。")
    _workers_check(workers, db)
    open_admin = is_loopback(host) and workers == 1  # several workers: a city's server behind a proxy, always signed in
    key = _read_key(admin_key_file) if admin_key_file is not None else None
    tls = _serve_checks(host, port, certfile, keyfile, base_url)
    config = WebConfig(db=db, year=year, open_admin=open_admin, tls=bool(tls), base_url=base_url)
    config.allow(host, allow_host or [])
    config.quotas = _quotas(max_file_mb, max_unit_mb, max_uploads_per_hour)
    config.processes = workers
    with Archive.open(db) as archive:
        archive.need_roster(year)
        if key or new_admin_key or not open_admin:
            _admin_key(archive, key, new_admin_key)
        links_base = base_url or archive.setting(BASE_URL_SETTING)
    app_ = create_app(config) if workers == 1 else None  # several workers: each makes its own
    from ..web.server import run, run_workers

    scheme = "https" if tls else "http"
    if host in WILDCARDS:  # http://0.0.0.0/ is not an address anyone can open
        say("报送网页已启动，在本机所有地址的 {} 端口上提供服务（按 Ctrl-C 停止）。", port)
    else:
        say("报送网页已启动：{}://{}:{}/ （按 Ctrl-C 停止）", scheme, f"[{host}]" if ":" in host else host, port)
    if not open_admin:
        _addresses(host, port, scheme, links_base, year)
    behind_tls_proxy = is_loopback(host) and (links_base or "").startswith("https://")  # HTTPS ends on this machine
    if not open_admin and not tls and not behind_tls_proxy:
        say(PLAIN_LAN_WARNING)
    if workers > 1:
        say("共 {} 个工作进程，共用档案库 {}。", workers, _archive_shown(db))
        run_workers(config, workers, host=host, port=port, **tls)
    else:
        run(app_, host=host, port=port, **tls)


def _workers_check(workers: int, db) -> None:  # type: ignore[no-untyped-def]
    """Several worker processes need an archive they can all write at once: PostgreSQL."""
    from ..api import resolve_url

    if not 1 <= workers <= 64:
        raise fail(f"--workers {workers} 不合理：应为 1 到 64 之间的整数（一个市或省的服务器一般用 4）。")
    if workers > 1 and not resolve_url(db).startswith("postgresql"):
        raise fail(
            f"--workers {workers} 需要 PostgreSQL 档案库（--db postgresql://用户@主机/库名）：SQLite 档案库同一时刻只能有一个"
            "进程写入，多个工作进程会互相等待。一个县用 SQLite 时请去掉 --workers；一个市或省一台服务器的做法见 docs/web.md。"
        )


def _archive_shown(db) -> str:  # type: ignore[no-untyped-def]
    from ..api import resolve_url, shown_url

    return shown_url(resolve_url(db))


PLAIN_LAN_WARNING = (
    "注意：没有使用 --certfile/--keyfile（HTTPS）。各单位的专用链接、上传的文件和管理员登录后的会话都会在内网中"
    "明文传输，同一网络中的人可以截取并冒用。请按 README“报送网页的安全”一节为本机配置证书后再让各单位使用。"
)


def _admin_key(archive, key: str | None, new: bool) -> None:  # type: ignore[no-untyped-def]
    """The admin key is stored as its digest and kept across restarts: shown once when made (the
    archive has none, or --new-admin-key), otherwise the server says it was set earlier."""
    if key is not None:
        archive.set_admin_key(key)
        return
    since = archive.admin_key_since()
    if since and not new:
        say(
            "管理密钥已于 {} 设置（档案库只保存其摘要，不再显示），登录时照旧输入。"
            "忘记时可用 --new-admin-key 换一个新密钥，或用 --admin-key-file 文件 指定。",
            since[:16].replace("T", " "),
        )
        return
    key = archive.set_admin_key()
    say(
        "{}管理密钥（登录管理页面时输入；只显示这一次，以后重启网页仍然使用它，请抄下或存入只有自己能读的文件）：{}",
        "新的" if since else "",
        key,
    )
    if since:
        say("旧的管理密钥和所有已登录的会话已作废。")


def _addresses(host: str, port: int, scheme: str, base: str | None, year: int) -> None:
    """Where units can reach this server (this machine's LAN addresses when serving a wildcard), and
    whether the links' stored address is one of them."""
    from ..web.app import WILDCARDS

    addrs = lan_addresses() if host in WILDCARDS else [host]
    if addrs:
        say("各单位用以下地址访问（链接的地址应为其中之一）：")
        for a in addrs:
            say("  {}://{}:{}/", scheme, f"[{a}]" if ":" in a else a, port)
    else:
        say("[yellow]注意：[/]没有找到本机的内网地址（IPv4），这台电脑可能没有连接网络，各单位暂时无法访问。")
    problem = base_url_problem(base, addrs, port)
    if problem:
        example = f"{scheme}://{addrs[0]}:{port}" if addrs else f"{scheme}://本机内网地址:{port}"
        say(
            "[yellow]注意：[/]{}请重新写出链接表（各单位的链接不变，只换地址）："
            "nianbao links --year {} --base-url {} --out 链接.csv",
            problem,
            year,
            example,
        )


def lan_addresses() -> list[str]:
    """This machine's non-loopback IPv4 addresses: its name's addresses (resolved locally on the usual
    systems) and the address of the default route (a UDP socket connected, which sends nothing)."""
    import ipaddress
    import socket

    found: set[str] = set()
    try:
        found.update(str(info[4][0]) for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET))
    except (OSError, UnicodeError):
        pass
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))  # no packet: connect() on UDP only chooses the route
            found.add(s.getsockname()[0])
    except OSError:
        pass
    ips = [ipaddress.ip_address(a) for a in found]
    return [str(ip) for ip in sorted(ip for ip in ips if not (ip.is_loopback or ip.is_unspecified or ip.is_link_local))]


def base_url_problem(base: str | None, addrs: list[str], port: int) -> str:
    """Why the links' address (``links --base-url``) will not reach this server, in Chinese; "" when it
    may (a host name is not resolved: that would ask the network)."""
    import urllib.parse

    from ..web.app import host_name, is_ip, is_loopback

    if not base:
        return "还没有生成各单位的链接（档案库中没有记下链接的地址）。"
    parts = urllib.parse.urlsplit(base)
    name = host_name(parts.netloc)
    if is_loopback(name):
        return f"链接的地址 {base} 只有本机能打开，各单位打不开。"
    if is_ip(name) and addrs and name not in addrs:
        return f"链接的地址 {base} 不是本机现在的地址（{'、'.join(addrs)}），各单位可能打不开。"
    try:
        given = parts.port
    except ValueError:
        given = None
    if is_ip(name) and given not in (None, port):
        return f"链接的地址 {base} 的端口 {given} 与本网页的端口 {port} 不同，各单位打不开。"
    return ""


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


def _read_key(path: Path) -> str:
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
