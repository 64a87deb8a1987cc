"""Studio in a real browser: Debian's Chromium under Playwright against a real server with auth and HTTP on.

Every locator goes through accessible names (labels, roles, button text), so
these tests also hold the Studio to the accessible names it promises. The
browser runs in a far-from-UTC time zone to show that dates are sent as the
UTC instants the form shows, whatever the machine's zone. Screenshots of each
page land in tests/artifacts/studio/.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import backends
import pytest
from browser import chromium
from playwright.sync_api import Browser, Dialog, Locator, Page, Request, Route, expect
from serverproc import ServerProcess

ARTIFACTS = Path(__file__).parent / "artifacts" / "studio"
TIMEOUT_MS = 15_000  # every wait in the browser is bounded by this
REST_TIMEOUT = 15.0
CLI_TIMEOUT = 60.0
BROWSER_ZONE = "Pacific/Auckland"  # UTC+12/13: a date shown as UTC but sent as local time would be caught

CARDS_CATEGORY = {
    "name": "Credit cards",
    "description": "Cards of every kind",
    "customFields": [
        {"key": "annual_fee", "label": "Annual fee", "type": "number", "required": True},
        {"key": "tier", "label": "Tier", "type": "select", "options": ["gold", "platinum"], "defaultValue": "gold"},
        {
            "key": "monthly_fee",
            "label": "Monthly fee",
            "type": "computed",
            "formula": "annual_fee / 12",
            "outputType": "number",
        },
    ],
}

expect.set_options(timeout=TIMEOUT_MS)


# --------------------------------------------------------------------------
# The server, a tenant with its key and a category, the browser
# --------------------------------------------------------------------------


@dataclass
class Tenant:
    """One tenant's admin key on the server's REST API, for set-up and for checking what Studio stored."""

    url: str
    key: str
    id: str

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self.key}"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy
        try:
            with opener.open(request, timeout=REST_TIMEOUT) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        return status, json.loads(raw) if raw else None

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, answer = self.call(method, path, body)
        assert 200 <= status < 300, (method, path, status, answer)
        return answer

    def violations(self, method: str, path: str, body: Any) -> dict[str, str]:
        """The field violations the server answers to a bad write (field path -> description)."""
        status, answer = self.call(method, path, body)
        assert status == 400, (status, answer)
        return {
            v["field"]: v["description"]
            for d in answer["error"]["details"]
            if d["@type"].endswith("google.rpc.BadRequest")
            for v in d["fieldViolations"]
        }


def create_admin_key(db: Path, tenant: str) -> str:
    """A new admin key for `tenant`, made with the keys CLI (its first stdout line is the secret)."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "arbiter.server",
            "keys",
            "--db",
            str(backends.database(db)),
            "create",
            "--tenant",
            tenant,
            "--role",
            "admin",
        ],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=True,
    )
    return result.stdout.splitlines()[0].strip()


@pytest.fixture(scope="module")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    db = tmp_path_factory.mktemp("studio") / "arbiter.db"
    create_admin_key(db, "studio-bootstrap")  # the database exists before the server opens it
    with ServerProcess(db, auth=True, http=True) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with chromium() as b:
        yield b


@pytest.fixture
def tenant(http_server: ServerProcess) -> Tenant:
    """A fresh tenant (so tests never see each other's offers) with the credit-cards category and a sub-category."""
    tenant_id = f"studio-{uuid.uuid4().hex[:12]}"
    t = Tenant(http_server.http_url, create_admin_key(http_server.db, tenant_id), tenant_id)
    t.ok("POST", "/api/v1/categories?categoryId=cat_cards", CARDS_CATEGORY)
    t.ok("POST", "/api/v1/categories/cat_cards/sub-categories?subCategoryId=sub_premium", {"name": "Premium"})
    return t


@dataclass
class Studio:
    """A browser tab on Studio, with what it sent to the API."""

    page: Page
    base: str
    sent: list[tuple[str, str, Any]] = field(default_factory=list)
    confirms: list[str] = field(default_factory=list)

    def sign_in(self, key: str) -> None:
        self.page.goto(f"{self.base}/studio")
        self.page.get_by_label("API key").fill(key)
        self.page.get_by_role("button", name="Sign in").click()
        expect(self.page.get_by_role("heading", name="Offers", level=1)).to_be_visible()
        self.settled()

    def settled(self) -> None:
        """Wait until no call of the page is in flight (Studio marks <body aria-busy> meanwhile)."""
        expect(self.page.locator("body")).to_have_attribute("aria-busy", "false")

    def nav(self, name: str) -> None:
        self.page.get_by_role("navigation", name="Studio").get_by_role("link", name=name, exact=True).click()

    def new_offer(self) -> None:
        """Open the empty offer form, waiting until it is there (the list's filters share some labels)."""
        self.button("New offer").click()
        expect(self.page.get_by_role("heading", name="New offer", level=1)).to_be_visible()
        expect(self.label("Name")).to_be_editable()

    def label(self, text: str) -> Locator:
        return self.page.get_by_label(text, exact=True)

    def button(self, text: str) -> Locator:
        return self.page.get_by_role("button", name=text, exact=True)

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def bodies(self, method: str, path_pattern: str) -> list[Any]:
        """The JSON bodies Studio sent with `method` to URLs matching the pattern, oldest first."""
        return [body for m, url, body in self.sent if m == method and re.search(path_pattern, url)]


@pytest.fixture
def studio(browser: Browser, http_server: ServerProcess) -> Iterator[Studio]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id=BROWSER_ZONE, locale="en-NZ")
    base = http_server.http_url
    foreign: list[str] = []

    def same_origin_only(route: Route) -> None:
        # Studio must fetch nothing from anywhere but its own server.
        if route.request.url.startswith(base + "/"):
            route.continue_()
        else:
            foreign.append(route.request.url)
            route.abort()

    context.route("**/*", same_origin_only)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.set_default_navigation_timeout(TIMEOUT_MS)
    tab = Studio(page, base)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    def say_yes(dialog: Dialog) -> None:  # confirm() before Archive and Delete
        tab.confirms.append(dialog.message)
        dialog.accept()

    page.on("dialog", say_yes)

    def record(request: Request) -> None:
        if "/api/v1/" in request.url:
            tab.sent.append((request.method, request.url, request.post_data_json if request.post_data else None))

    page.on("request", record)
    try:
        yield tab
    finally:
        context.close()
    assert not foreign, f"Studio fetched from elsewhere: {foreign}"
    assert not errors, f"uncaught errors in the page: {errors}"


def offer_id_from(page: Page) -> str:
    expect(page).to_have_url(re.compile(r"#offers/act_[0-9a-z]+$"))
    return page.url.rsplit("/", 1)[1]


def lifecycle_enabled(tab: Studio, *, activate: bool, pause: bool, archive: bool) -> None:
    for name, enabled in (("Activate", activate), ("Pause", pause), ("Archive", archive)):
        button = tab.button(name)
        if enabled:
            expect(button).to_be_enabled()
        else:
            expect(button).to_be_disabled()
    expect(tab.button("Delete")).to_be_enabled()


def row_of(page: Page, table: str, name: str) -> Locator:
    return (
        page.get_by_role("table", name=table)
        .get_by_role("row")
        .filter(has=page.get_by_role("rowheader", name=name, exact=True))
    )


# --------------------------------------------------------------------------
# Sign-in
# --------------------------------------------------------------------------


def test_sign_in_keeps_the_key_in_session_storage_only(
    studio: Studio, tenant: Tenant, http_server: ServerProcess
) -> None:
    page = studio.page
    page.goto(f"{studio.base}/studio")
    expect(page.get_by_role("heading", name="Sign in to Arbiter Studio")).to_be_visible()
    studio.shot("sign-in")

    studio.label("API key").fill("arb_0000000000000000_not-a-key")
    studio.button("Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not accepted")
    expect(studio.label("API key")).to_be_visible()  # still at sign-in

    studio.sign_in(tenant.key)
    assert page.evaluate("() => Object.values(sessionStorage)") == [tenant.key]
    assert page.evaluate("() => localStorage.length") == 0

    studio.button("Sign out").click()
    expect(studio.label("API key")).to_be_visible()
    assert page.evaluate("() => sessionStorage.length") == 0

    # A key revoked mid-session: the next call answers 401 and Studio goes back to sign-in, forgetting the key.
    studio.sign_in(tenant.key)
    key_id = "key_" + tenant.key.split("_")[1]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "arbiter.server",
            "keys",
            "--db",
            str(backends.database(http_server.db)),
            "revoke",
            key_id,
        ],
        capture_output=True,
        timeout=CLI_TIMEOUT,
        check=True,
    )
    studio.nav("Categories")
    expect(studio.label("API key")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("not accepted")
    assert page.evaluate("() => sessionStorage.length") == 0
    # Signing in again with a good key goes back to the page the refusal interrupted.
    studio.label("API key").fill(create_admin_key(http_server.db, tenant.id))
    studio.button("Sign in").click()
    expect(page.get_by_role("heading", name="Categories", level=1)).to_be_visible()


# --------------------------------------------------------------------------
# Offers: create with every section, list, edit, lifecycle
# --------------------------------------------------------------------------


def test_create_an_offer_then_list_edit_and_walk_its_lifecycle(studio: Studio, tenant: Tenant) -> None:
    page = studio.page
    studio.sign_in(tenant.key)
    studio.new_offer()

    studio.label("Name").fill("Premium Credit Card Upgrade")
    studio.label("Short description").fill("Upgrade to our premium rewards card with 3x points")
    studio.label("Category").select_option(label="Credit cards")
    studio.label("Sub-category").select_option(label="Premium")
    studio.label("Priority").select_option("high")
    expect(studio.label("Status")).to_have_value("draft")  # left alone: saves as draft
    expect(studio.label("Mandatory")).not_to_be_checked()
    studio.label("Tags").fill("rewards, upgrade, q1-campaign")
    studio.label("Propensity threshold").fill("0.65")
    studio.label("Recency (days)").fill("30")
    studio.label("Required segments").fill("high_value, credit_eligible")
    studio.label("Model reference").fill("model_propensity_cc_v3")
    studio.label("Max impressions").fill("50000")
    studio.label("Max daily budget").fill("2500")
    studio.label("Cost per action").fill("1.5")
    studio.label("Start date").fill("2030-03-15T00:00")
    studio.label("End date").fill("2030-06-15T23:59:59")
    days = page.get_by_role("group", name="Days of week")
    for day in ("Mon", "Tue", "Wed", "Thu", "Fri"):
        days.get_by_label(day, exact=True).check()
    studio.label("Time window start").fill("08:00")
    studio.label("Time window end").fill("20:00")
    # The category's custom fields, rendered from its schema; the computed one is read-only and shows its formula.
    studio.label("Annual fee").fill("95")
    studio.label("Tier").select_option("platinum")
    expect(studio.label("Monthly fee")).to_have_value("annual_fee / 12")
    expect(studio.label("Monthly fee")).not_to_be_editable()
    studio.shot("offer-form")

    studio.button("Save").click()
    offer_id = offer_id_from(page)
    expect(page.get_by_role("status")).to_contain_text("created as draft")
    expect(page.get_by_role("heading", name="Premium Credit Card Upgrade", level=1)).to_be_visible()

    # The create sent no status (left alone) and exactly the sections filled in.
    (created_body,) = studio.bodies("POST", r"/api/v1/actions$")
    assert "status" not in created_body and "mandatory" not in created_body
    assert created_body["customFields"] == {"annual_fee": 95, "tier": "platinum"}
    stored = tenant.ok("GET", f"/api/v1/actions/{offer_id}")
    assert stored["status"] == "draft"
    assert (stored["categoryId"], stored["subCategoryId"], stored["priority"]) == ("cat_cards", "sub_premium", "high")
    assert stored["tags"] == ["rewards", "upgrade", "q1-campaign"]
    assert stored["qualification"] == {
        "propensityThreshold": 0.65,
        "recency": 30,
        "requiredSegments": ["high_value", "credit_eligible"],
        "modelReference": "model_propensity_cc_v3",
    }
    assert stored["budget"] == {"maxImpressions": 50000, "maxDailyBudget": 2500, "costPerAction": 1.5}
    schedule = stored["schedule"]
    assert (schedule["startDate"], schedule["endDate"]) == ("2030-03-15T00:00:00Z", "2030-06-15T23:59:59Z")
    assert schedule["daysOfWeek"] == [1, 2, 3, 4, 5]
    assert schedule["timeWindow"] == {"start": "08:00", "end": "20:00"}
    assert stored["customFields"]["annual_fee"] == 95 and stored["customFields"]["tier"] == "platinum"

    # The detail page shows what is stored, in UTC as typed, and only the legal moves.
    expect(studio.label("Start date")).to_have_value(re.compile(r"^2030-03-15T00:00(:00)?$"))
    expect(studio.label("Annual fee")).to_have_value("95")
    lifecycle_enabled(studio, activate=True, pause=False, archive=True)
    studio.shot("offer-detail")

    studio.button("Activate").click()
    expect(page.get_by_role("status")).to_contain_text("now active")
    lifecycle_enabled(studio, activate=False, pause=True, archive=True)
    assert tenant.ok("GET", f"/api/v1/actions/{offer_id}")["status"] == "active"

    studio.button("Pause").click()
    expect(page.get_by_role("status")).to_contain_text("now paused")
    lifecycle_enabled(studio, activate=True, pause=False, archive=True)
    assert tenant.ok("GET", f"/api/v1/actions/{offer_id}")["status"] == "paused"

    # An edit sends only what changed; a cleared field travels as null.
    studio.label("Short description").fill("Now with 4x points")
    studio.label("Max impressions").fill("")
    studio.button("Save").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    assert studio.bodies("PATCH", rf"/api/v1/actions/{offer_id}$")[-1] == {
        "shortDesc": "Now with 4x points",
        "budget": {"maxImpressions": None},
    }
    edited = tenant.ok("GET", f"/api/v1/actions/{offer_id}")
    assert edited["shortDesc"] == "Now with 4x points"
    assert "maxImpressions" not in edited["budget"] and edited["budget"]["costPerAction"] == 1.5
    assert edited["qualification"] == stored["qualification"] and edited["schedule"] == stored["schedule"]
    expect(studio.label("Max impressions")).to_have_value("")

    studio.button("Archive").click()
    expect(page.get_by_role("status")).to_contain_text("now archived")
    lifecycle_enabled(studio, activate=False, pause=False, archive=False)
    expect(studio.button("Save")).to_be_disabled()  # archived is read-only
    expect(studio.label("Name")).to_be_disabled()
    assert tenant.ok("GET", f"/api/v1/actions/{offer_id}")["status"] == "archived"
    lifecycle_moves = [b for b in studio.bodies("PATCH", rf"/api/v1/actions/{offer_id}$") if "status" in b]
    assert lifecycle_moves == [{"status": "active"}, {"status": "paused"}, {"status": "archived"}]

    # The list shows it with its columns, and the filters find it.
    studio.nav("Offers")
    row = row_of(page, "Offers", "Premium Credit Card Upgrade")
    updated = tenant.ok("GET", f"/api/v1/actions/{offer_id}")["updatedAt"]
    expect(row.locator("th, td")).to_have_text(
        [
            "Premium Credit Card Upgrade",
            "Credit cards",
            "high",
            "archived",
            "No",
            f"{updated[:16].replace('T', ' ')} UTC",
        ]
    )
    studio.shot("offers-list")
    studio.label("Status").select_option("active")
    expect(page.get_by_role("table", name="Offers")).to_contain_text("No offers match.")
    studio.label("Status").select_option("archived")
    expect(row).to_be_visible()
    studio.label("Tag").fill("rewards, upgrade")
    studio.label("Tag").press("Enter")
    expect(row).to_be_visible()
    studio.label("Tag").fill("nope")
    studio.label("Tag").press("Enter")
    expect(row).to_have_count(0)
    assert any("tags=rewards%2Cupgrade" in url or "tags=rewards,upgrade" in url for _, url, _ in studio.sent)

    studio.label("Tag").fill("")
    studio.label("Tag").press("Enter")
    row.get_by_role("link", name="Premium Credit Card Upgrade").click()
    expect(page).to_have_url(re.compile(rf"#offers/{offer_id}$"))
    expect(studio.label("Name")).to_have_value("Premium Credit Card Upgrade")


def test_a_rejected_save_shows_the_servers_words_beside_each_field_and_keeps_the_input(
    studio: Studio, tenant: Tenant
) -> None:
    page = studio.page
    expected = tenant.violations(
        "POST",
        "/api/v1/actions",
        {"name": "probe", "categoryId": "cat_cards", "qualification": {"propensityThreshold": 1.5}},
    )
    threshold_words = expected["qualification.propensityThreshold"]
    fee_words = expected["customFields.annual_fee"]

    studio.sign_in(tenant.key)
    studio.new_offer()
    studio.label("Name").fill("Threshold offer")
    studio.label("Category").select_option(label="Credit cards")
    studio.label("Propensity threshold").fill("1.5")
    studio.label("Recency (days)").fill("7")
    studio.label("Tier").select_option("gold")
    studio.button("Save").click()

    for label, words in (("Propensity threshold", threshold_words), ("Annual fee", fee_words)):
        control = studio.label(label)
        expect(control).to_have_attribute("aria-invalid", "true")
        error_id = f"err-{control.get_attribute('id')}"
        expect(control).to_have_attribute("aria-describedby", re.compile(rf"\b{error_id}\b"))
        expect(page.locator(f"#{error_id}")).to_have_text(words)
        # The message sits right after its input, not only in a banner.
        assert control.evaluate("(el, id) => el.nextElementSibling && el.nextElementSibling.id === id", error_id)
    expect(page.get_by_role("alert")).to_be_visible()
    studio.shot("offer-form-errors")

    # Nothing typed is lost.
    expect(page).to_have_url(re.compile(r"#offers/new$"))
    expect(studio.label("Name")).to_have_value("Threshold offer")
    expect(studio.label("Propensity threshold")).to_have_value("1.5")
    expect(studio.label("Recency (days)")).to_have_value("7")
    expect(studio.label("Tier")).to_have_value("gold")
    expect(studio.label("Category")).to_have_value("cat_cards")

    studio.label("Propensity threshold").fill("0.5")
    studio.label("Annual fee").fill("0")
    studio.button("Save").click()
    offer_id = offer_id_from(page)
    expect(page.locator(".field-error")).to_have_count(0)
    stored = tenant.ok("GET", f"/api/v1/actions/{offer_id}")
    assert stored["qualification"]["propensityThreshold"] == 0.5 and stored["qualification"]["recency"] == 7
    assert stored["status"] == "draft"

    # An error that names no field goes to the banner, with the server's message.
    status, answer = tenant.call("POST", "/api/v1/actions", {"name": "Threshold offer"})
    assert status == 409, answer
    studio.nav("Offers")
    studio.new_offer()
    studio.label("Name").fill("Threshold offer")
    studio.button("Save").click()
    expect(page.get_by_role("alert")).to_contain_text(answer["error"]["message"])
    expect(studio.label("Name")).to_have_value("Threshold offer")


# --------------------------------------------------------------------------
# Delete: suggests archive when the offer has history
# --------------------------------------------------------------------------


def test_delete_suggests_archive_for_an_offer_with_history_and_can_force(studio: Studio, tenant: Tenant) -> None:
    page = studio.page
    scratch = tenant.ok("POST", "/api/v1/actions", {"name": "Scratch offer"})
    historic = tenant.ok("POST", "/api/v1/actions", {"name": "Historic offer", "status": "active"})
    tenant.ok(
        "POST",
        "/api/v1/outcomes",
        {"customerId": "c-1", "offerId": historic["id"], "type": "impression", "idempotencyKey": "studio-history-1"},
    )

    studio.sign_in(tenant.key)
    row_of(page, "Offers", "Scratch offer").get_by_role("link").click()
    studio.button("Delete").click()
    expect(page).to_have_url(re.compile(r"#offers$"))
    expect(page.get_by_role("status")).to_contain_text("deleted")
    expect(row_of(page, "Offers", "Scratch offer")).to_have_count(0)
    assert tenant.call("GET", f"/api/v1/actions/{scratch['id']}")[0] == 404

    row_of(page, "Offers", "Historic offer").get_by_role("link").click()
    studio.button("Delete").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("interaction history")
    expect(alert).to_contain_text("archive it instead")
    expect(alert.get_by_role("button", name="Archive instead")).to_be_enabled()
    assert tenant.ok("GET", f"/api/v1/actions/{historic['id']}")["status"] == "active"  # still there
    alert.get_by_role("button", name="Delete anyway").click()
    expect(page).to_have_url(re.compile(r"#offers$"))
    assert [m.split("”")[0] for m in studio.confirms] == [
        "Delete “Scratch offer",
        "Delete “Historic offer",
        "Delete “Historic offer",
    ]
    assert "anyway" in studio.confirms[-1]
    assert tenant.call("GET", f"/api/v1/actions/{historic['id']}")[0] == 404
    deletes = [url for m, url, _ in studio.sent if m == "DELETE"]
    assert deletes[-2:] == [
        f"{studio.base}/api/v1/actions/{historic['id']}",
        f"{studio.base}/api/v1/actions/{historic['id']}?force=true",
    ]


# --------------------------------------------------------------------------
# Categories: list, create with a schema, edit, sub-categories
# --------------------------------------------------------------------------


def test_categories_are_created_and_edited_with_their_custom_field_schema(studio: Studio, tenant: Tenant) -> None:
    page = studio.page
    bad_formula = {
        "name": "Probe",
        "customFields": [
            {"key": "rate", "label": "Base rate", "type": "number", "required": True, "defaultValue": 5},
            {"key": "monthly", "type": "computed", "formula": "rate / / 12", "outputType": "number"},
        ],
    }
    formula_words = tenant.violations("POST", "/api/v1/categories", bad_formula)["customFields[1].formula"]

    studio.sign_in(tenant.key)
    studio.nav("Categories")
    expect(row_of(page, "Categories", "Credit cards")).to_contain_text("annual_fee (number)")
    studio.shot("categories")

    studio.button("New category").click()
    studio.label("Category id").fill("cat_loans")
    studio.label("Name").fill("Loans")
    studio.label("Description").fill("Personal loans")
    studio.button("Add field").click()
    first = page.get_by_role("group", name="Field 1")
    first.get_by_label("Key", exact=True).fill("rate")
    first.get_by_label("Label", exact=True).fill("Base rate")
    first.get_by_label("Type", exact=True).select_option("number")
    first.get_by_label("Required", exact=True).check()
    first.get_by_label("Default value", exact=True).fill("5")
    studio.button("Add field").click()
    second = page.get_by_role("group", name="Field 2")
    second.get_by_label("Key", exact=True).fill("monthly")
    second.get_by_label("Type", exact=True).select_option("computed")
    second.get_by_label("Formula", exact=True).fill("rate / / 12")
    second.get_by_label("Output type", exact=True).select_option("number")
    studio.shot("category-form")
    studio.button("Save").click()

    formula = second.get_by_label("Formula", exact=True)
    expect(formula).to_have_attribute("aria-invalid", "true")
    expect(page.locator(f"#err-{formula.get_attribute('id')}")).to_have_text(formula_words)
    expect(first.get_by_label("Key", exact=True)).to_have_value("rate")  # kept

    formula.fill("rate / 12")
    studio.button("Save").click()
    expect(page).to_have_url(re.compile(r"#categories/cat_loans$"))
    expect(page.get_by_role("heading", name="Sub-categories")).to_be_visible()  # the edit view is up
    stored = tenant.ok("GET", "/api/v1/categories/cat_loans")
    assert (stored["name"], stored["description"], stored["status"]) == ("Loans", "Personal loans", "active")
    fields = {f["key"]: f for f in stored["customFields"]}
    assert [f["key"] for f in stored["customFields"]] == ["rate", "monthly"]
    assert (fields["rate"]["type"], fields["rate"]["label"], fields["rate"]["required"]) == (
        "number",
        "Base rate",
        True,
    )
    assert fields["rate"]["defaultValue"] == 5
    assert (fields["monthly"]["type"], fields["monthly"]["formula"], fields["monthly"]["outputType"]) == (
        "computed",
        "rate / 12",
        "number",
    )

    # Edit: only the changed key travels.
    studio.label("Description").fill("Personal and car loans")
    studio.button("Save").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    assert studio.bodies("PATCH", r"/api/v1/categories/cat_loans$")[-1] == {"description": "Personal and car loans"}
    assert tenant.ok("GET", "/api/v1/categories/cat_loans")["description"] == "Personal and car loans"

    studio.label("Sub-category id").fill("sub_car")
    studio.label("Sub-category name").fill("Car loans")
    studio.button("Add sub-category").click()
    expect(page.get_by_role("status")).to_contain_text("Car loans")
    expect(page.get_by_role("rowheader", name="Car loans")).to_be_visible()
    subs = tenant.ok("GET", "/api/v1/categories/cat_loans/sub-categories")["data"]
    assert [(s["id"], s["name"]) for s in subs] == [("sub_car", "Car loans")]

    # The offer form renders the new schema: labels (or keys), the computed formula read-only, the sub-category.
    studio.nav("Offers")
    studio.new_offer()
    studio.label("Category").select_option(label="Loans")
    expect(studio.label("Base rate")).to_be_editable()
    expect(studio.label("monthly")).to_have_value("rate / 12")
    expect(studio.label("monthly")).not_to_be_editable()
    studio.label("Sub-category").select_option(label="Car loans")


# --------------------------------------------------------------------------
# Decide playground
# --------------------------------------------------------------------------


def test_decide_playground_shows_ranked_offers_and_why_candidates_dropped(studio: Studio, tenant: Tenant) -> None:
    page = studio.page
    tenant.ok(
        "POST",
        "/api/v1/actions",
        {"name": "VIP lounge", "status": "active", "qualification": {"requiredSegments": ["vip"]}},
    )
    everyday = tenant.ok("POST", "/api/v1/actions", {"name": "Everyday cashback", "status": "active"})
    tenant.ok("POST", "/api/v1/actions", {"name": "Still a draft"})

    studio.sign_in(tenant.key)
    studio.nav("Decide")
    studio.label("Customer id").fill("cust-42")
    studio.label("Segments").fill("regular, web")
    studio.label("Attributes (JSON)").fill("{not json")
    studio.button("Decide").click()
    attributes = studio.label("Attributes (JSON)")
    expect(attributes).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#err-d-attributes")).to_contain_text("not valid JSON")

    attributes.fill('{"loyalty_score": 40}')
    studio.button("Decide").click()
    expect(row_of(page, "Offers", "Everyday cashback")).to_contain_text("1")
    vip = row_of(page, "Candidates", "VIP lounge")
    expect(vip).to_contain_text("missing_segments")
    expect(vip).to_contain_text("qualification")
    expect(row_of(page, "Candidates", "Everyday cashback")).to_contain_text("selected")
    expect(row_of(page, "Candidates", "Still a draft")).to_have_count(0)  # only active offers are candidates
    studio.shot("decide")

    (body,) = studio.bodies("POST", r"/api/v1/decide$")
    assert body == {
        "customerId": "cust-42",
        "segments": ["regular", "web"],
        "attributes": {"loyalty_score": 40},
        "explain": True,
        "dryRun": True,
    }
    stats = tenant.ok("GET", f"/api/v1/actions/{everyday['id']}/stats")
    assert not stats.get("lifetimeImpressions")  # a dry run records nothing
