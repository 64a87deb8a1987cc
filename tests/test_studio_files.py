"""Studio ships inside the server's wheel and is served from the installed package, nothing from elsewhere."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from rest_helpers import RestClient
from serverproc import ServerProcess

STUDIO_FILES = ("index.html", "studio.js", "studio.css")
ROOT = Path(__file__).resolve().parent.parent


def test_the_built_wheel_holds_every_studio_file(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), "."],
        cwd=ROOT,
        check=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("arbiter_decisioning-*.whl")

    names = set(zipfile.ZipFile(wheel).namelist())

    assert {f"arbiter/server/transport/http/studio/{name}" for name in STUDIO_FILES} <= names


@pytest.mark.parametrize("path", ["/studio", "/studio/"])
def test_studio_is_served_with_a_policy_that_allows_only_this_server(server: ServerProcess, path: str) -> None:
    page = RestClient(server.http_url).get(path)

    assert page.status == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    html = page.raw.decode()
    assert "<title>" in html
    # Every asset the page names is this server's, and is served with its type.
    links = re.findall(r'(?:src|href)="([^"#][^"]*)"', html)  # in-page anchors aside
    assets = [link for link in links if link != "data:,"]  # an empty icon, so browsers ask for none
    assert assets and all(a.startswith("/studio/") for a in assets), links
    for asset in assets:
        answer = RestClient(server.http_url).get(asset)
        assert answer.status == 200, asset
        assert answer.headers["content-type"].split(";")[0] in ("text/javascript", "text/css"), asset


def test_studio_has_no_other_files_and_the_root_leads_to_it(server: ServerProcess) -> None:
    rest = RestClient(server.http_url)

    assert rest.get("/studio/../pyproject.toml").status == 404
    assert rest.get("/studio/missing.js").status == 404
    root = rest.get("/")
    assert root.status == 302 and root.headers["location"] == "/studio"
