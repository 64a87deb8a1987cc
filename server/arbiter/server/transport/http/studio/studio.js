// Arbiter Studio: a small single-page UI over the REST API (/api/v1) on the same origin.
// Plain ES2020 module, no build step and no libraries; every view is built with DOM calls
// (never innerHTML with data), so names typed by users cannot inject markup.

const API = "/api/v1";
const KEY_STORAGE = "arbiter.studio.apiKey"; // sessionStorage only: the key dies with the tab
const PAGE_LIMIT = 50;

const PRIORITIES = ["low", "medium", "high", "critical"];
const STATUSES = ["draft", "active", "paused", "archived"];
// The offer lifecycle (docs/rules.md "Offers"); archived is terminal.
const LEGAL_MOVES = {
  draft: ["active", "archived"],
  active: ["paused", "archived"],
  paused: ["active", "archived"],
  archived: [],
};
const LIFECYCLE_BUTTONS = [
  { label: "Activate", target: "active" },
  { label: "Pause", target: "paused" },
  { label: "Archive", target: "archived" },
];
const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]; // index = day number, 0 = Sunday
const FIELD_TYPES = ["text", "number", "boolean", "select", "date", "computed"];
const OUTPUT_TYPES = ["number", "text", "boolean"];
// Which funnel step each drop reason belongs to, for the Decide playground.
const DROP_STEPS = {
  schedule_not_started: "schedule",
  schedule_ended: "schedule",
  schedule_day: "schedule",
  schedule_time_window: "schedule",
  missing_segments: "qualification",
  below_propensity_threshold: "qualification",
  recency: "qualification",
  contact_policy: "contact policy",
  max_impressions_reached: "budget",
  daily_budget_exhausted: "budget",
  category_archived: "hierarchy",
  ranked_below_limit: "arbitration",
};

// ---------------------------------------------------------------------------
// DOM helpers
// ---------------------------------------------------------------------------

/** Build an element: h("input", {id: "x", type: "text", onInput: fn}, ...children). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "for") el.htmlFor = value;
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name.startsWith("on") && typeof value === "function")
      el.addEventListener(name.slice(2).toLowerCase(), value);
    else if (name === "value") el.value = value;
    else if (name === "checked" || name === "selected") el[name] = Boolean(value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

/** Append children (nested arrays flattened; null, undefined and false skipped). */
function append(el, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replace an element's children; like append, it flattens arrays and skips null/false. */
function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

function options(values, selected, labels = {}) {
  return values.map((v) => h("option", { value: v, selected: v === selected }, labels[v] ?? v));
}

const main = () => document.getElementById("main");

// Each render bumps the sequence; an async render whose turn has passed stops quietly,
// so a slow answer never paints over the page the user moved to.
let renderSeq = 0;

function startView(title, ...content) {
  const seq = ++renderSeq;
  document.title = `${title} · Arbiter Studio`;
  const root = main();
  fill(root, ...content);
  return () => seq === renderSeq;
}

function heading(text) {
  return h("h1", { tabindex: "-1" }, text);
}

// ---------------------------------------------------------------------------
// Messages: a banner (role=alert) for errors, a polite status line for successes
// ---------------------------------------------------------------------------

let flash = null; // a message to show after the next navigation ("Offer deleted.")

function showBanner(message, ...extra) {
  const banner = document.getElementById("banner");
  fill(banner, h("p", {}, message), ...extra);
  banner.classList.add("visible");
}

function clearBanner() {
  const banner = document.getElementById("banner");
  banner.replaceChildren();
  banner.classList.remove("visible");
}

function showStatus(message) {
  document.getElementById("status").textContent = message;
}

function clearMessages() {
  clearBanner();
  showStatus("");
}

/** Report a failed call: field violations go beside their fields (when a form is given), the rest to the banner. */
function reportError(error, form) {
  if (error instanceof ApiError && error.handled) return; // 401: already back at sign-in
  if (!(error instanceof ApiError)) {
    showBanner(`Something went wrong: ${error.message || error}`);
    return;
  }
  const unplaced = form ? showFieldErrors(form, error.violations) : error.violations;
  const lines = unplaced.map((v) => h("li", {}, v.field ? `${v.field}: ${v.description}` : v.description));
  const placed = error.violations.length - unplaced.length;
  if (placed > 0 && !unplaced.length) {
    // Every message already sits beside its field; the banner only says where to look.
    showBanner(
      `The server did not accept this: ${placed === 1 ? "1 field needs" : `${placed} fields need`} attention.`,
    );
    return;
  }
  const lead = placed > 0 ? `${error.message} — see also the highlighted fields.` : error.message;
  showBanner(lead, lines.length ? h("ul", {}, lines) : null);
}

// ---------------------------------------------------------------------------
// The REST client
// ---------------------------------------------------------------------------

class ApiError extends Error {
  constructor(httpStatus, body) {
    const err = (body && body.error) || {};
    super(err.message || `The server answered ${httpStatus}.`);
    this.httpStatus = httpStatus;
    this.status = err.status || "";
    this.details = Array.isArray(err.details) ? err.details : [];
    const info = this.details.find((d) => String(d["@type"] || "").endsWith("google.rpc.ErrorInfo"));
    this.reason = info ? info.reason : "";
    this.violations = this.details
      .filter((d) => String(d["@type"] || "").endsWith("google.rpc.BadRequest"))
      .flatMap((d) => d.fieldViolations || []);
    this.handled = false;
  }
}

function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE);
}

// Calls in flight: while any is, the page says it is busy (aria-busy on <body>), for assistive
// technology and for the browser tests, which wait for a page to settle.
let pendingCalls = 0;

function markBusy(change) {
  pendingCalls += change;
  document.body.setAttribute("aria-busy", pendingCalls > 0 ? "true" : "false");
}

async function api(method, path, body) {
  markBusy(+1);
  try {
    return await callApi(method, path, body);
  } finally {
    markBusy(-1);
  }
}

async function callApi(method, path, body) {
  const headers = { Accept: "application/json", Authorization: `Bearer ${apiKey()}` };
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(API + path, init);
  } catch (cause) {
    throw new Error(`the server could not be reached (${cause.message})`);
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null; // an HTML error page from a proxy: report the status alone
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    if (response.status === 401) {
      // A bad, revoked or expired key: forget it and go back to sign-in.
      error.handled = true;
      signOut(`Your API key was not accepted (${error.message}). Sign in again.`);
    }
    throw error;
  }
  return data;
}

function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(name, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/** Every item of a paginated list, following nextCursor. */
async function listAll(path) {
  const items = [];
  let cursor;
  for (let page = 0; page < 100; page += 1) {
    const sep = path.includes("?") ? "&" : "?";
    const answer = await api("GET", `${path}${sep}limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    items.push(...(answer.data || []));
    const next = answer.pagination && answer.pagination.nextCursor;
    if (!answer.pagination || !answer.pagination.hasMore || !next) break;
    cursor = next;
  }
  return items;
}

const enc = encodeURIComponent;

// ---------------------------------------------------------------------------
// Field errors: a <p class="field-error"> right after the control, linked by aria-describedby
// ---------------------------------------------------------------------------

function clearFieldErrors(form) {
  for (const el of form.querySelectorAll(".field-error")) el.remove();
  for (const el of form.querySelectorAll("[aria-invalid]")) {
    el.removeAttribute("aria-invalid");
    setDescribedBy(el, el.dataset.hints || "");
  }
}

function setDescribedBy(el, ids) {
  if (ids.trim()) el.setAttribute("aria-describedby", ids.trim());
  else el.removeAttribute("aria-describedby");
}

/** The control a violation path names, trying shorter paths ("schedule.daysOfWeek[2]" → "schedule.daysOfWeek"). */
function controlFor(form, path) {
  let p = path;
  while (p) {
    // data-also: a control that also answers for a wider path (the window's end for "schedule.timeWindow").
    const el =
      form.querySelector(`[data-path="${CSS.escape(p)}"]`) || form.querySelector(`[data-also="${CSS.escape(p)}"]`);
    if (el) return el;
    const cut = Math.max(p.lastIndexOf("."), p.lastIndexOf("["));
    if (cut <= 0) break;
    p = p.slice(0, cut);
  }
  return null;
}

/** Put each violation beside its control; returns the ones no control claims. */
function showFieldErrors(form, violations) {
  const unplaced = [];
  const byControl = new Map();
  for (const v of violations) {
    const el = controlFor(form, v.field || "");
    if (!el) {
      unplaced.push(v);
      continue;
    }
    // A violation on a sub-path (days[2]) quotes that path so the message stays precise.
    const exact = el.dataset.path === v.field || el.dataset.also === v.field;
    const text = exact ? v.description : `${v.field}: ${v.description}`;
    if (!byControl.has(el)) byControl.set(el, []);
    byControl.get(el).push(text);
  }
  let first = null;
  for (const [el, texts] of byControl) {
    const id = `err-${el.id}`;
    const p = h("p", { class: "field-error", id }, texts.join(" "));
    if (el.tagName === "FIELDSET") el.append(p);
    else el.after(p);
    el.setAttribute("aria-invalid", "true");
    setDescribedBy(el, `${el.dataset.hints || ""} ${id}`);
    first = first || el;
  }
  if (first) (first.tagName === "FIELDSET" ? first.querySelector("input") || first : first).focus();
  return unplaced;
}

/** A labelled control in a .field wrapper; `hint` text is linked with aria-describedby. */
function field(labelText, control, hint) {
  const parts = [h("label", { for: control.id }, labelText), control];
  if (hint) {
    const hintId = `hint-${control.id}`;
    control.dataset.hints = hintId;
    setDescribedBy(control, hintId);
    parts.push(h("p", { class: "hint", id: hintId }, hint));
  }
  return h("div", { class: "field" }, parts);
}

function section(legend, ...content) {
  return h("fieldset", { class: "section" }, h("legend", {}, legend), h("div", { class: "grid" }, content));
}

// ---------------------------------------------------------------------------
// Value conversions between the form and the JSON resource
// ---------------------------------------------------------------------------

const splitList = (text) =>
  text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);

/** A datetime-local value ("2026-03-15T08:00" or with seconds) as an RFC 3339 UTC instant. */
function localInputToInstant(value) {
  if (!value) return undefined;
  const withSeconds = value.length === 16 ? `${value}:00` : value.slice(0, 19);
  return `${withSeconds}Z`;
}

/** An RFC 3339 instant as a datetime-local value, in UTC (what the form shows and edits). */
function instantToLocalInput(instant) {
  if (!instant) return "";
  const date = new Date(instant);
  if (Number.isNaN(date.getTime())) return "";
  return date.toISOString().slice(0, 19);
}

/** The instant in the canonical form the form produces, so edits compare equal when untouched. */
function canonicalInstant(instant) {
  return instant ? localInputToInstant(instantToLocalInput(instant)) : undefined;
}

function formatInstant(instant) {
  if (!instant) return "—";
  const date = new Date(instant);
  return Number.isNaN(date.getTime()) ? instant : `${date.toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

function formatNumber(value) {
  if (value === undefined || value === null) return "—";
  if (typeof value !== "number") return String(value);
  return Number.isInteger(value) ? String(value) : String(Number(value.toFixed(4)));
}

/** A number input's value: undefined when blank, NaN when the browser holds text that is not a number. */
function numberValue(input) {
  if (input.validity && input.validity.badInput) return Number.NaN;
  return input.value.trim() === "" ? undefined : Number(input.value);
}

const blankToUndefined = (text) => (text.trim() === "" ? undefined : text.trim());
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

// ---------------------------------------------------------------------------
// Categories cache (offers list and form need names and schemas)
// ---------------------------------------------------------------------------

let categoriesCache = null;

async function loadCategories(refresh = false) {
  if (!categoriesCache || refresh) {
    try {
      categoriesCache = await listAll("/categories");
    } catch (error) {
      if (error instanceof ApiError && error.httpStatus === 403)
        categoriesCache = []; // a decide-only key
      else throw error;
    }
  }
  return categoriesCache;
}

// ---------------------------------------------------------------------------
// Sign-in
// ---------------------------------------------------------------------------

let returnTo = null; // the page a refused key interrupted, to come back to after signing in again

function signOut(message, kind = "error") {
  sessionStorage.removeItem(KEY_STORAGE);
  categoriesCache = null;
  flash = message ? { kind, text: message } : null;
  returnTo = kind === "error" && location.hash && location.hash !== "#signin" ? location.hash : null;
  if (location.hash !== "#signin") location.hash = "#signin";
  else route();
}

function renderSignIn() {
  document.getElementById("nav").hidden = true;
  const input = h("input", {
    id: "api-key",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
  });
  const form = h(
    "form",
    { class: "card narrow", novalidate: true },
    field("API key", input, "Paste a key created with “arbiter keys create”. It is kept in this tab only."),
    h("button", { type: "submit", class: "primary" }, "Sign in"),
  );
  startView("Sign in", heading("Sign in to Arbiter Studio"), form);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearMessages();
    clearFieldErrors(form);
    const key = input.value.trim();
    if (!key) {
      showFieldErrors(form, [{ field: "apiKey", description: "Paste an API key." }]);
      return;
    }
    sessionStorage.setItem(KEY_STORAGE, key);
    try {
      // Any key role may list offers, so this checks the key without needing admin rights.
      await api("GET", "/actions?limit=1");
    } catch (error) {
      if (!(error instanceof ApiError && error.httpStatus === 401)) {
        sessionStorage.removeItem(KEY_STORAGE);
        reportError(error);
      }
      return;
    }
    location.hash = returnTo || "#offers";
    returnTo = null;
  });
  input.dataset.path = "apiKey";
  input.focus();
}

// ---------------------------------------------------------------------------
// Offers list
// ---------------------------------------------------------------------------

const offerFilters = { status: "", categoryId: "", tag: "" };

async function renderOfferList() {
  const table = h("table", { class: "data" });
  const more = h("button", { type: "button", hidden: true }, "Load more");
  const statusFilter = h(
    "select",
    { id: "filter-status" },
    options(["", ...STATUSES], offerFilters.status, { "": "Any" }),
  );
  const categoryFilter = h("select", { id: "filter-category" }, h("option", { value: "" }, "Any"));
  const tagFilter = h("input", { id: "filter-tag", type: "search", value: offerFilters.tag });
  const filters = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter offers" },
    field("Status", statusFilter),
    field("Category", categoryFilter),
    field("Tag", tagFilter),
    h("button", { type: "submit" }, "Filter"),
  );
  const alive = startView(
    "Offers",
    h(
      "div",
      { class: "page-head" },
      heading("Offers"),
      h("button", { type: "button", class: "primary", onClick: () => (location.hash = "#offers/new") }, "New offer"),
    ),
    filters,
    table,
    more,
  );

  let categories = [];
  try {
    categories = await loadCategories();
  } catch (error) {
    reportError(error);
  }
  if (!alive()) return;
  const categoryNames = Object.fromEntries(categories.map((c) => [c.id, c.name]));
  append(
    categoryFilter,
    categories.map((c) => h("option", { value: c.id, selected: c.id === offerFilters.categoryId }, c.name)),
  );

  const body = h("tbody");
  fill(
    table,
    h("caption", {}, "Offers"),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["Name", "Category", "Priority", "Status", "Mandatory", "Updated"].map((c) => h("th", { scope: "col" }, c)),
      ),
    ),
    body,
  );
  let cursor = null;

  async function loadPage() {
    more.disabled = true;
    try {
      const answer = await api(
        "GET",
        `/actions${query({
          status: offerFilters.status,
          categoryId: offerFilters.categoryId,
          tags: offerFilters.tag,
          limit: PAGE_LIMIT,
          cursor,
        })}`,
      );
      if (!alive()) return;
      for (const offer of answer.data || []) {
        body.append(
          h(
            "tr",
            {},
            h("th", { scope: "row" }, h("a", { href: `#offers/${enc(offer.id)}` }, offer.name)),
            h("td", {}, offer.categoryId ? categoryNames[offer.categoryId] || offer.categoryId : "—"),
            h("td", {}, offer.priority || "medium"),
            h("td", {}, h("span", { class: `badge ${offer.status}` }, offer.status)),
            h("td", {}, offer.mandatory ? "Yes" : "No"),
            h("td", {}, formatInstant(offer.updatedAt)),
          ),
        );
      }
      if (!body.children.length) body.append(h("tr", {}, h("td", { colspan: 6, class: "empty" }, "No offers match.")));
      const page = answer.pagination || {};
      cursor = page.hasMore ? page.nextCursor : null;
      more.hidden = !cursor;
    } catch (error) {
      reportError(error);
    } finally {
      more.disabled = false;
    }
  }

  function refilter() {
    offerFilters.status = statusFilter.value;
    offerFilters.categoryId = categoryFilter.value;
    offerFilters.tag = splitList(tagFilter.value).join(","); // tags: a comma list, all of them must match
    body.replaceChildren();
    cursor = null;
    clearBanner();
    loadPage();
  }
  statusFilter.addEventListener("change", refilter);
  categoryFilter.addEventListener("change", refilter);
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    refilter();
  });
  more.addEventListener("click", loadPage);
  await loadPage();
}

// ---------------------------------------------------------------------------
// Offer form (create and edit) with lifecycle buttons
// ---------------------------------------------------------------------------

/** The offer as the form sees it: every key present, unset values undefined, lists empty → undefined. */
function offerShape(offer) {
  const q = offer.qualification || {};
  const b = offer.budget || {};
  const s = offer.schedule || {};
  const tw = s.timeWindow || {};
  const list = (l) => (Array.isArray(l) && l.length ? l : undefined);
  return {
    name: offer.name || undefined,
    shortDesc: offer.shortDesc || undefined,
    categoryId: offer.categoryId || undefined,
    subCategoryId: offer.subCategoryId || undefined,
    priority: offer.priority || "medium",
    status: offer.status || "draft",
    mandatory: Boolean(offer.mandatory),
    tags: list(offer.tags),
    qualification: {
      propensityThreshold: q.propensityThreshold ?? undefined,
      recency: q.recency ?? undefined,
      requiredSegments: list(q.requiredSegments),
      modelReference: q.modelReference || undefined,
    },
    budget: {
      maxImpressions: b.maxImpressions ?? undefined,
      maxDailyBudget: b.maxDailyBudget ?? undefined,
      costPerAction: b.costPerAction ?? undefined,
    },
    schedule: {
      startDate: canonicalInstant(s.startDate),
      endDate: canonicalInstant(s.endDate),
      daysOfWeek: list(s.daysOfWeek),
      timeWindow: { start: tw.start || undefined, end: tw.end || undefined },
      timezone: s.timezone || undefined,
    },
    customFields: { ...(offer.customFields || {}) },
  };
}

/** Only the filled-in parts of an object (undefined keys dropped); undefined when nothing is left. */
function filled(obj) {
  const out = {};
  for (const [k, v] of Object.entries(obj)) {
    if (v === undefined) continue;
    if (v && typeof v === "object" && !Array.isArray(v)) {
      const inner = filled(v);
      if (inner !== undefined) out[k] = inner;
    } else out[k] = v;
  }
  return Object.keys(out).length ? out : undefined;
}

/** The create body: only what the user filled in; an untouched Status (draft) is not sent. */
function createBody(shape) {
  const body = filled({
    ...shape,
    status: shape.status === "draft" ? undefined : shape.status,
    mandatory: shape.mandatory || undefined,
  });
  return { name: shape.name ?? "", ...body };
}

/** The PATCH body: changed keys only; nested objects key by key; null clears. */
function patchBody(before, after, computedKeys) {
  const patch = {};
  for (const key of ["name", "shortDesc", "categoryId", "subCategoryId", "priority", "status", "mandatory", "tags"]) {
    if (!same(before[key], after[key])) patch[key] = after[key] ?? null;
  }
  for (const sectionKey of ["qualification", "budget", "schedule"]) {
    const changes = {};
    for (const key of Object.keys(after[sectionKey])) {
      const a = before[sectionKey][key];
      const b = after[sectionKey][key];
      if (same(a, b)) continue;
      if (key === "timeWindow") {
        // The window travels as one {start, end} pair; both blank clears it.
        changes.timeWindow =
          b.start === undefined && b.end === undefined ? null : { start: b.start ?? null, end: b.end ?? null };
      } else changes[key] = b ?? null;
    }
    if (Object.keys(changes).length) patch[sectionKey] = changes;
  }
  const custom = {};
  const keys = new Set([...Object.keys(before.customFields), ...Object.keys(after.customFields)]);
  for (const key of keys) {
    if (computedKeys.has(key)) continue; // computed at decision time, never written
    if (!same(before.customFields[key], after.customFields[key])) custom[key] = after.customFields[key] ?? null;
  }
  if (Object.keys(custom).length) patch.customFields = custom;
  return patch;
}

/** A custom-field control from its schema definition; `value` is the offer's stored value. */
function customFieldControl(def, value) {
  const id = `cf-${def.key}`;
  const path = `customFields.${def.key}`;
  const label = def.label || def.key;
  const dflt = def.defaultValue;
  const notes = [];
  if (def.required) notes.push("Required.");
  let control;
  switch (def.type) {
    case "computed":
      // Read-only: the category's formula gives the value at decision time.
      control = h("input", { id, type: "text", readonly: true, value: def.formula || "", class: "formula" });
      control.dataset.path = path;
      notes.push(`Computed (${def.outputType || "value"}) from the formula; not editable here.`);
      return field(label, control, notes.join(" "));
    case "number":
      control = h("input", { id, type: "number", step: "any", value: value ?? "", placeholder: dflt ?? "" });
      break;
    case "boolean":
      control = h(
        "select",
        { id },
        h(
          "option",
          { value: "" },
          dflt === undefined || dflt === null ? "(not set)" : `(default: ${dflt ? "Yes" : "No"})`,
        ),
        h("option", { value: "true", selected: value === true }, "Yes"),
        h("option", { value: "false", selected: value === false }, "No"),
      );
      break;
    case "select":
      control = h(
        "select",
        { id },
        h("option", { value: "" }, dflt === undefined || dflt === null ? "(not set)" : `(default: ${dflt})`),
        (def.options || []).map((o) => h("option", { value: o, selected: o === value }, o)),
      );
      break;
    case "date":
      control = h("input", { id, type: "date", value: value ?? "" });
      break;
    default:
      control = h("input", { id, type: "text", value: value ?? "", placeholder: dflt ?? "" });
  }
  if (dflt !== undefined && dflt !== null && def.type !== "select" && def.type !== "boolean") {
    notes.push(`Default: ${dflt}.`);
  }
  control.dataset.path = path;
  control.dataset.key = def.key;
  control.dataset.type = def.type;
  if (def.required) control.setAttribute("aria-required", "true");
  return field(label, control, notes.join(" ") || undefined);
}

function readCustomField(control) {
  const raw = control.value;
  switch (control.dataset.type) {
    case "number":
      return numberValue(control);
    case "boolean":
      return raw === "" ? undefined : raw === "true";
    case "select":
    case "date":
      return raw === "" ? undefined : raw;
    default:
      return blankToUndefined(raw);
  }
}

async function renderOfferForm(offerId) {
  const isNew = offerId === null;
  const alive = startView(
    isNew ? "New offer" : "Offer",
    heading(isNew ? "New offer" : "Offer"),
    h("p", { class: "loading" }, "Loading…"),
  );
  let original = null;
  let categories = [];
  try {
    [categories, original] = await Promise.all([
      loadCategories(),
      isNew ? Promise.resolve(null) : api("GET", `/actions/${enc(offerId)}`),
    ]);
  } catch (error) {
    if (alive()) {
      fill(main(), heading(isNew ? "New offer" : "Offer"), h("p", {}, h("a", { href: "#offers" }, "Back to offers")));
      reportError(error);
    }
    return;
  }
  if (!alive()) return;

  const start = offerShape(original || {});
  const $ = {}; // the form's controls by name
  const input = (name, attrs) => ($[name] = h("input", { id: `f-${name}`, ...attrs }));

  input("name", { type: "text", value: start.name ?? "", required: true, "aria-required": "true", maxlength: 255 });
  $.shortDesc = h("textarea", { id: "f-shortDesc", rows: 2 }, start.shortDesc ?? "");
  $.categoryId = h("select", { id: "f-categoryId" });
  $.subCategoryId = h("select", { id: "f-subCategoryId" });
  input("tags", { type: "text", value: (start.tags || []).join(", ") });
  $.priority = h("select", { id: "f-priority" }, options(PRIORITIES, start.priority));
  $.status = h("select", { id: "f-status" });
  input("mandatory", { type: "checkbox", checked: start.mandatory });
  const q = start.qualification;
  input("propensityThreshold", { type: "number", step: "any", value: q.propensityThreshold ?? "" });
  input("recency", { type: "number", step: "1", value: q.recency ?? "" });
  input("requiredSegments", { type: "text", value: (q.requiredSegments || []).join(", ") });
  input("modelReference", { type: "text", value: q.modelReference ?? "" });
  const b = start.budget;
  input("maxImpressions", { type: "number", step: "1", value: b.maxImpressions ?? "" });
  input("maxDailyBudget", { type: "number", step: "any", value: b.maxDailyBudget ?? "" });
  input("costPerAction", { type: "number", step: "any", value: b.costPerAction ?? "" });
  const s = start.schedule;
  input("startDate", { type: "datetime-local", step: "1", value: instantToLocalInput(s.startDate) });
  input("endDate", { type: "datetime-local", step: "1", value: instantToLocalInput(s.endDate) });
  input("timeWindowStart", { type: "time", value: s.timeWindow.start ?? "" });
  input("timeWindowEnd", { type: "time", value: s.timeWindow.end ?? "" });
  input("timezone", { type: "text", value: s.timezone ?? "", placeholder: "e.g. Europe/Paris" });
  const dayBoxes = DAYS.map((day, i) =>
    h("input", { id: `f-day-${i}`, type: "checkbox", value: String(i), checked: (s.daysOfWeek || []).includes(i) }),
  );
  const days = h(
    "fieldset",
    { id: "f-daysOfWeek", class: "days", "aria-describedby": "hint-f-daysOfWeek" },
    h("legend", {}, "Days of week"),
    h(
      "div",
      { class: "day-boxes" },
      dayBoxes.map((box, i) => h("span", { class: "day" }, box, h("label", { for: box.id }, DAYS[i]))),
    ),
    h("p", { class: "hint", id: "hint-f-daysOfWeek" }, "None ticked means every day."),
  );
  days.dataset.hints = "hint-f-daysOfWeek";

  // Violation paths (camelCase, relative to the offer) → controls.
  const paths = {
    name: "name",
    shortDesc: "shortDesc",
    categoryId: "categoryId",
    subCategoryId: "subCategoryId",
    tags: "tags",
    priority: "priority",
    status: "status",
    mandatory: "mandatory",
    propensityThreshold: "qualification.propensityThreshold",
    recency: "qualification.recency",
    requiredSegments: "qualification.requiredSegments",
    modelReference: "qualification.modelReference",
    maxImpressions: "budget.maxImpressions",
    maxDailyBudget: "budget.maxDailyBudget",
    costPerAction: "budget.costPerAction",
    startDate: "schedule.startDate",
    endDate: "schedule.endDate",
    timeWindowStart: "schedule.timeWindow.start",
    timeWindowEnd: "schedule.timeWindow.end",
    timezone: "schedule.timezone",
  };
  for (const [name, path] of Object.entries(paths)) $[name].dataset.path = path;
  days.dataset.path = "schedule.daysOfWeek";

  const customBox = h("div", { class: "grid" });
  const customSection = h(
    "fieldset",
    { class: "section", id: "f-customFields" },
    h("legend", {}, "Custom fields"),
    customBox,
  );
  customSection.dataset.path = "customFields";
  $.timeWindowEnd.dataset.also = "schedule.timeWindow"; // "start and end must differ" shows beside the end

  const saveButton = h("button", { type: "submit", class: "primary" }, "Save");
  const formBody = h(
    "fieldset",
    { class: "form-body" },
    section(
      "Basic info",
      field("Name", $.name),
      field("Short description", $.shortDesc),
      field("Category", $.categoryId),
      field("Sub-category", $.subCategoryId),
      field("Tags", $.tags, "Comma separated."),
    ),
    section(
      "Priority and status",
      field("Priority", $.priority, "Low 25, medium 50, high 70, critical 90."),
      field("Status", $.status, isNew ? "New offers save as draft unless you choose active." : undefined),
      h(
        "div",
        { class: "field checkbox" },
        $.mandatory,
        h("label", { for: $.mandatory.id }, "Mandatory"),
        h(
          "p",
          { class: "hint", id: "hint-f-mandatory" },
          "Bypasses qualification and budget; non-bypassable contact policies still apply.",
        ),
      ),
    ),
    section(
      "Qualification",
      field("Propensity threshold", $.propensityThreshold, "Between 0 and 1."),
      field("Recency (days)", $.recency, "Minimum days since the customer last got this offer."),
      field("Required segments", $.requiredSegments, "Comma separated; the customer needs all of them."),
      field("Model reference", $.modelReference),
    ),
    section(
      "Budget",
      field("Max impressions", $.maxImpressions, "Lifetime cap."),
      field("Max daily budget", $.maxDailyBudget, "Spend per day; needs a cost per action."),
      field("Cost per action", $.costPerAction, "Spent per impression."),
    ),
    section(
      "Schedule",
      field("Start date", $.startDate, "UTC."),
      field("End date", $.endDate, "UTC."),
      days,
      field("Time window start", $.timeWindowStart, "HH:MM in the offer's time zone."),
      field("Time window end", $.timeWindowEnd, "HH:MM; may wrap past midnight."),
      field("Timezone", $.timezone, "IANA name; blank uses the tenant's."),
    ),
    customSection,
  );
  $.mandatory.dataset.hints = "hint-f-mandatory";
  setDescribedBy($.mandatory, "hint-f-mandatory");
  const form = h(
    "form",
    { id: "offer-form", class: "card", novalidate: true },
    formBody,
    h("div", { class: "actions" }, saveButton),
  );
  // novalidate: the server is the one judge of values, so its messages are the ones shown.

  const title = heading(isNew ? "New offer" : original.name);
  const badge = h("span", { class: "badge" });
  const toolbar = h("div", { class: "toolbar", role: "group", "aria-label": "Lifecycle" });
  const lifecycle = LIFECYCLE_BUTTONS.map(({ label, target }) =>
    h("button", { type: "button", onClick: () => move(target) }, label),
  );
  const deleteButton = h("button", { type: "button", class: "danger", onClick: () => remove(false) }, "Delete");
  if (!isNew) append(toolbar, h("span", {}, "Status: ", badge), lifecycle, deleteButton);
  const meta = h("p", { class: "meta" });
  fill(
    main(),
    h("p", { class: "crumbs" }, h("a", { href: "#offers" }, "Offers"), " / ", isNew ? "New offer" : original.id),
    title,
    isNew ? null : toolbar,
    isNew ? null : meta,
    form,
  );
  document.title = `${isNew ? "New offer" : original.name} · Arbiter Studio`;
  if (document.activeElement === document.body) title.focus({ preventScroll: true });

  // --- hierarchy: category select, then its sub-categories, then its custom fields
  function fillCategories(selected) {
    const known = categories.some((c) => c.id === selected);
    fill(
      $.categoryId,
      h("option", { value: "" }, "(none)"),
      categories.map((c) =>
        h(
          "option",
          { value: c.id, selected: c.id === selected },
          c.status === "archived" ? `${c.name} (archived)` : c.name,
        ),
      ),
      selected && !known ? h("option", { value: selected, selected: true }, selected) : null,
    );
  }

  let subLoad = 0;
  async function fillSubCategories(categoryId, selected) {
    const turn = ++subLoad;
    fill($.subCategoryId, h("option", { value: "" }, "(none)"));
    $.subCategoryId.disabled = !categoryId;
    if (!categoryId) return;
    try {
      const subs = await listAll(`/categories/${enc(categoryId)}/sub-categories`);
      if (turn !== subLoad || !alive()) return;
      append(
        $.subCategoryId,
        subs.map((sub) => h("option", { value: sub.id, selected: sub.id === selected }, sub.name)),
      );
      if (selected && !subs.some((sub) => sub.id === selected)) {
        $.subCategoryId.append(h("option", { value: selected, selected: true }, selected));
      }
    } catch (error) {
      reportError(error);
    }
  }

  let schema = [];
  function renderCustomFields(categoryId, values) {
    const category = categories.find((c) => c.id === categoryId);
    schema = (category && category.customFields) || [];
    fill(
      customBox,
      schema.length
        ? schema.map((def) => customFieldControl(def, values[def.key]))
        : h(
            "p",
            { class: "hint" },
            categoryId ? "This category defines no custom fields." : "Choose a category to fill its custom fields.",
          ),
    );
  }

  function readCustom() {
    const values = {};
    for (const control of customBox.querySelectorAll("[data-key]")) {
      const v = readCustomField(control);
      if (v !== undefined) values[control.dataset.key] = v;
    }
    return values;
  }

  // Everything from building the form to wiring it runs without an await, so no input is live before
  // its listeners are; the sub-categories arrive later (their own turn counter drops stale answers).
  fillCategories(start.categoryId);
  renderCustomFields(start.categoryId, start.customFields);
  fillSubCategories(start.categoryId, start.subCategoryId);
  $.categoryId.addEventListener("change", () => {
    // Values typed for keys the new category also defines carry over.
    const typed = readCustom();
    fillSubCategories($.categoryId.value, undefined);
    renderCustomFields($.categoryId.value, typed);
  });

  // --- status select and lifecycle buttons follow the stored status
  function showStatusControls() {
    const current = original ? original.status : "draft";
    const legal = LEGAL_MOVES[current] || [];
    const choices = isNew ? ["draft", "active"] : [current, ...legal];
    const keep = $.status.value && choices.includes($.status.value) ? $.status.value : current;
    fill($.status, ...options(choices, keep));
    if (!original) return;
    badge.textContent = current;
    badge.className = `badge ${current}`;
    LIFECYCLE_BUTTONS.forEach(({ target }, i) => {
      lifecycle[i].disabled = !legal.includes(target);
    });
    meta.textContent = `${original.id} · created ${formatInstant(original.createdAt)} · updated ${formatInstant(original.updatedAt)}`;
    // Archived offers are read-only (only Delete stays).
    const readOnly = current === "archived";
    formBody.disabled = readOnly;
    saveButton.disabled = readOnly;
    saveButton.title = readOnly ? "Archived offers are read-only" : "";
  }
  showStatusControls();

  function readForm() {
    const problems = [];
    const num = (name) => {
      const v = numberValue($[name]);
      if (Number.isNaN(v)) problems.push({ field: paths[name], description: "must be a number" });
      return Number.isNaN(v) ? undefined : v;
    };
    const custom = readCustom();
    for (const control of customBox.querySelectorAll("[data-type=number]")) {
      if (Number.isNaN(custom[control.dataset.key])) {
        problems.push({ field: control.dataset.path, description: "must be a number" });
        delete custom[control.dataset.key];
      }
    }
    const days = dayBoxes.filter((box) => box.checked).map((box) => Number(box.value));
    const shape = {
      name: blankToUndefined($.name.value),
      shortDesc: blankToUndefined($.shortDesc.value),
      categoryId: $.categoryId.value || undefined,
      subCategoryId: $.subCategoryId.value || undefined,
      priority: $.priority.value,
      status: $.status.value,
      mandatory: $.mandatory.checked,
      tags: splitList($.tags.value).length ? splitList($.tags.value) : undefined,
      qualification: {
        propensityThreshold: num("propensityThreshold"),
        recency: num("recency"),
        requiredSegments: splitList($.requiredSegments.value).length ? splitList($.requiredSegments.value) : undefined,
        modelReference: blankToUndefined($.modelReference.value),
      },
      budget: {
        maxImpressions: num("maxImpressions"),
        maxDailyBudget: num("maxDailyBudget"),
        costPerAction: num("costPerAction"),
      },
      schedule: {
        startDate: localInputToInstant($.startDate.value),
        endDate: localInputToInstant($.endDate.value),
        daysOfWeek: days.length ? days : undefined,
        timeWindow: { start: $.timeWindowStart.value || undefined, end: $.timeWindowEnd.value || undefined },
        timezone: blankToUndefined($.timezone.value),
      },
      customFields: custom,
    };
    return { shape, problems };
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearMessages();
    clearFieldErrors(form);
    const { shape, problems } = readForm();
    if (problems.length) {
      showFieldErrors(form, problems);
      showBanner("Some values are not numbers — see the highlighted fields.");
      return;
    }
    saveButton.disabled = true;
    try {
      if (isNew) {
        const created = await api("POST", "/actions", createBody(shape));
        flash = { kind: "status", text: `Offer “${created.name}” created as ${created.status}.` };
        location.hash = `#offers/${enc(created.id)}`;
      } else {
        const computed = new Set(schema.filter((d) => d.type === "computed").map((d) => d.key));
        const patch = patchBody(offerShape(original), shape, computed);
        if (!Object.keys(patch).length) {
          showStatus("Nothing changed.");
          return;
        }
        const saved = await api("PATCH", `/actions/${enc(original.id)}`, patch);
        flash = { kind: "status", text: "Saved." };
        // Re-render from the server's answer (what is stored, defaults included).
        if (location.hash === `#offers/${enc(saved.id)}`) route();
        else location.hash = `#offers/${enc(saved.id)}`;
      }
    } catch (error) {
      // The form is left exactly as typed; only the messages are added.
      reportError(error, form);
    } finally {
      if (alive()) showStatusControls();
      if (alive() && (!original || original.status !== "archived")) saveButton.disabled = false;
    }
  });

  async function move(target) {
    clearMessages();
    if (
      target === "archived" &&
      !window.confirm(`Archive “${original.name}”? Archived offers are read-only and cannot be reactivated.`)
    )
      return;
    for (const button of lifecycle) button.disabled = true;
    try {
      const updated = await api("PATCH", `/actions/${enc(original.id)}`, { status: target });
      // Only the lifecycle changed: keep whatever the user has typed in the form.
      original = { ...original, status: updated.status, updatedAt: updated.updatedAt };
      $.status.value = "";
      showStatus(`Offer “${original.name}” is now ${updated.status}.`);
    } catch (error) {
      reportError(error);
    } finally {
      if (alive()) showStatusControls();
    }
  }

  async function remove(force) {
    clearMessages();
    const question = force
      ? `Delete “${original.name}” anyway? Its outcomes stay for reporting; its counters go.`
      : `Delete “${original.name}” permanently?`;
    if (!window.confirm(question)) return;
    deleteButton.disabled = true;
    try {
      await api("DELETE", `/actions/${enc(original.id)}${force ? "?force=true" : ""}`);
      flash = { kind: "status", text: `Offer “${original.name}” deleted.` };
      location.hash = "#offers";
    } catch (error) {
      if (error instanceof ApiError && error.httpStatus === 409 && error.reason === "OFFER_HAS_HISTORY") {
        const canArchive = (LEGAL_MOVES[original.status] || []).includes("archived");
        showBanner(
          error.message,
          h(
            "p",
            {},
            "This offer has interaction history: archive it instead to keep it for reporting, or delete it anyway.",
          ),
          h(
            "div",
            { class: "banner-actions" },
            canArchive ? h("button", { type: "button", onClick: () => move("archived") }, "Archive instead") : null,
            h("button", { type: "button", class: "danger", onClick: () => remove(true) }, "Delete anyway"),
          ),
        );
      } else reportError(error);
    } finally {
      deleteButton.disabled = false;
    }
  }
}

// ---------------------------------------------------------------------------
// Categories: list, create, edit (with the custom-field schema) and sub-categories
// ---------------------------------------------------------------------------

async function renderCategories() {
  const alive = startView(
    "Categories",
    h(
      "div",
      { class: "page-head" },
      heading("Categories"),
      h(
        "button",
        { type: "button", class: "primary", onClick: () => (location.hash = "#categories/new") },
        "New category",
      ),
    ),
    h("p", { class: "loading" }, "Loading…"),
  );
  let categories;
  try {
    categories = await loadCategories(true);
  } catch (error) {
    if (alive()) reportError(error);
    return;
  }
  if (!alive()) return;
  const rows = categories.map((c) =>
    h(
      "tr",
      {},
      h("th", { scope: "row" }, h("a", { href: `#categories/${enc(c.id)}` }, c.name)),
      h("td", {}, h("code", {}, c.id)),
      h("td", {}, h("span", { class: `badge ${c.status || "active"}` }, c.status || "active")),
      h("td", {}, (c.customFields || []).map((f) => `${f.key} (${f.type})`).join(", ") || "—"),
      h("td", {}, c.description || ""),
    ),
  );
  const table = h(
    "table",
    { class: "data" },
    h("caption", {}, "Categories"),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["Name", "Id", "Status", "Custom fields", "Description"].map((c) => h("th", { scope: "col" }, c)),
      ),
    ),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 5, class: "empty" }, "No categories yet."))),
  );
  main().querySelector(".loading").replaceWith(table);
}

/** The editor of one custom-field definition; `index` names its paths (customFields[i].key …). */
function fieldEditor(def, onRemove) {
  const row = h("fieldset", { class: "field-def" });
  const legend = h("legend");
  const uid = `fd-${Math.random().toString(36).slice(2, 9)}`;
  const c = {
    key: h("input", {
      id: `${uid}-key`,
      type: "text",
      value: def.key || "",
      pattern: "[a-z][a-z0-9_]*",
      spellcheck: "false",
    }),
    label: h("input", { id: `${uid}-label`, type: "text", value: def.label || "" }),
    type: h("select", { id: `${uid}-type` }, options(FIELD_TYPES, def.type || "text")),
    required: h("input", { id: `${uid}-required`, type: "checkbox", checked: Boolean(def.required) }),
    defaultValue: h("input", {
      id: `${uid}-defaultValue`,
      type: "text",
      value: def.defaultValue === undefined || def.defaultValue === null ? "" : String(def.defaultValue),
    }),
    options: h("input", { id: `${uid}-options`, type: "text", value: (def.options || []).join(", ") }),
    formula: h("input", {
      id: `${uid}-formula`,
      type: "text",
      value: def.formula || "",
      class: "formula",
      spellcheck: "false",
    }),
    outputType: h(
      "select",
      { id: `${uid}-outputType` },
      options(["", ...OUTPUT_TYPES], def.outputType || "", { "": "(choose)" }),
    ),
  };
  const wrap = {
    key: field("Key", c.key, "Lowercase letters, digits and _."),
    label: field("Label", c.label),
    type: field("Type", c.type),
    required: h("div", { class: "field checkbox" }, c.required, h("label", { for: c.required.id }, "Required")),
    defaultValue: field("Default value", c.defaultValue),
    options: field("Options", c.options, "Comma separated."),
    formula: field("Formula", c.formula, "e.g. base_rate * (1 - customer.loyalty_score * 0.01)"),
    outputType: field("Output type", c.outputType),
  };
  function showRelevant() {
    const type = c.type.value;
    wrap.options.hidden = type !== "select";
    wrap.formula.hidden = type !== "computed";
    wrap.outputType.hidden = type !== "computed";
    wrap.required.hidden = type === "computed";
    wrap.defaultValue.hidden = type === "computed";
  }
  c.type.addEventListener("change", showRelevant);
  showRelevant();
  append(
    row,
    legend,
    h("div", { class: "grid" }, Object.values(wrap)),
    h("button", { type: "button", class: "link-button", onClick: () => onRemove(row) }, "Remove field"),
  );
  return {
    row,
    /** Renumber (after an add or remove): legend and violation paths follow the position. */
    setIndex(i) {
      legend.textContent = `Field ${i + 1}`;
      for (const [name, control] of Object.entries(c)) control.dataset.path = `customFields[${i}].${name}`;
    },
    read() {
      const type = c.type.value;
      const out = { key: c.key.value.trim(), type };
      if (c.label.value.trim()) out.label = c.label.value.trim();
      if (type === "computed") {
        out.formula = c.formula.value.trim();
        if (c.outputType.value) out.outputType = c.outputType.value;
        return out;
      }
      if (c.required.checked) out.required = true;
      const raw = c.defaultValue.value.trim();
      if (raw !== "") {
        // The default keeps the field's JSON type; a value that does not parse goes as typed for the server to judge.
        if (type === "number" && raw !== "" && !Number.isNaN(Number(raw))) out.defaultValue = Number(raw);
        else if (type === "boolean" && (raw === "true" || raw === "false")) out.defaultValue = raw === "true";
        else out.defaultValue = raw;
      }
      if (type === "select") out.options = splitList(c.options.value);
      return out;
    },
  };
}

/** A category's schema in the shape the editor produces, for change detection. */
function canonicalFields(fields) {
  return (fields || []).map((f) => {
    const out = { key: f.key, type: f.type };
    if (f.label) out.label = f.label;
    if (f.type === "computed") {
      out.formula = f.formula || "";
      if (f.outputType) out.outputType = f.outputType;
      return out;
    }
    if (f.required) out.required = true;
    if (f.defaultValue !== undefined && f.defaultValue !== null) out.defaultValue = f.defaultValue;
    if (f.type === "select") out.options = f.options || [];
    return out;
  });
}

async function renderCategoryForm(categoryId) {
  const isNew = categoryId === null;
  const alive = startView(
    isNew ? "New category" : "Category",
    heading(isNew ? "New category" : "Category"),
    h("p", { class: "loading" }, "Loading…"),
  );
  let original = null;
  if (!isNew) {
    try {
      original = await api("GET", `/categories/${enc(categoryId)}`);
    } catch (error) {
      if (alive()) {
        fill(main(), heading("Category"), h("p", {}, h("a", { href: "#categories" }, "Back to categories")));
        reportError(error);
      }
      return;
    }
    if (!alive()) return;
  }
  const cat = original || {};
  const idInput = h("input", { id: "c-id", type: "text", placeholder: "cat_… (optional)", spellcheck: "false" });
  idInput.dataset.path = "categoryId";
  const name = h("input", {
    id: "c-name",
    type: "text",
    value: cat.name || "",
    required: true,
    "aria-required": "true",
  });
  name.dataset.path = "name";
  const description = h("textarea", { id: "c-description", rows: 2 }, cat.description || "");
  description.dataset.path = "description";
  const status = h("select", { id: "c-status" }, options(["active", "archived"], cat.status || "active"));
  status.dataset.path = "status";

  const editors = [];
  const fieldList = h("div", { class: "field-defs" });
  const fieldsSet = h(
    "fieldset",
    { class: "section", id: "c-customFields" },
    h("legend", {}, "Custom fields"),
    fieldList,
  );
  fieldsSet.dataset.path = "customFields";
  function renumber() {
    editors.forEach((e, i) => e.setIndex(i));
  }
  function addEditor(def) {
    const editor = fieldEditor(def, (row) => {
      editors.splice(
        editors.findIndex((e) => e.row === row),
        1,
      );
      row.remove();
      renumber();
    });
    editors.push(editor);
    fieldList.append(editor.row);
    renumber();
    return editor;
  }
  for (const def of cat.customFields || []) addEditor(def);
  const addButton = h(
    "button",
    {
      type: "button",
      onClick: () => {
        addEditor({ type: "text" }).row.querySelector("input").focus();
      },
    },
    "Add field",
  );
  fieldsSet.append(addButton);

  const save = h("button", { type: "submit", class: "primary" }, "Save");
  const form = h(
    "form",
    { id: "category-form", class: "card", novalidate: true },
    section(
      "Category",
      isNew ? field("Category id", idInput, "Leave blank for a server-assigned id.") : null,
      field("Name", name),
      field("Description", description),
      field("Status", status, "Offers in an archived category are not decided."),
    ),
    fieldsSet,
    h("div", { class: "actions" }, save),
  );

  const subsBox = h("section", { class: "card", "aria-labelledby": "subs-title" });
  fill(
    main(),
    h("p", { class: "crumbs" }, h("a", { href: "#categories" }, "Categories"), " / ", isNew ? "New category" : cat.id),
    heading(isNew ? "New category" : cat.name),
    form,
    isNew ? null : subsBox,
  );

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearMessages();
    clearFieldErrors(form);
    const fields = editors.map((e) => e.read());
    save.disabled = true;
    try {
      if (isNew) {
        const body = { name: name.value.trim(), customFields: fields };
        if (description.value.trim()) body.description = description.value.trim();
        if (status.value !== "active") body.status = status.value;
        const created = await api("POST", `/categories${query({ categoryId: idInput.value.trim() })}`, body);
        categoriesCache = null;
        flash = { kind: "status", text: `Category “${created.name}” created.` };
        location.hash = `#categories/${enc(created.id)}`;
      } else {
        const patch = {};
        if (name.value.trim() !== (cat.name || "")) patch.name = name.value.trim();
        if (description.value.trim() !== (cat.description || "")) patch.description = description.value.trim();
        if (status.value !== (cat.status || "active")) patch.status = status.value;
        // The schema is one list: any change sends the whole new list.
        if (!same(fields, canonicalFields(cat.customFields))) patch.customFields = fields;
        if (!Object.keys(patch).length) {
          showStatus("Nothing changed.");
          return;
        }
        await api("PATCH", `/categories/${enc(cat.id)}`, patch);
        categoriesCache = null;
        flash = { kind: "status", text: "Saved." };
        route();
      }
    } catch (error) {
      reportError(error, form);
    } finally {
      save.disabled = false;
    }
  });

  if (!isNew) await renderSubCategories(cat, subsBox, alive);
}

async function renderSubCategories(cat, box, alive) {
  const list = h("tbody");
  const subId = h("input", { id: "s-id", type: "text", placeholder: "sub_… (optional)", spellcheck: "false" });
  subId.dataset.path = "subCategoryId";
  const subName = h("input", { id: "s-name", type: "text" });
  subName.dataset.path = "name";
  const subDesc = h("input", { id: "s-description", type: "text" });
  subDesc.dataset.path = "description";
  const form = h(
    "form",
    { class: "inline-form", novalidate: true, "aria-label": "Add a sub-category" },
    field("Sub-category id", subId),
    field("Sub-category name", subName),
    field("Sub-category description", subDesc),
    h("button", { type: "submit" }, "Add sub-category"),
  );
  append(
    box,
    h("h2", { id: "subs-title" }, "Sub-categories"),
    h(
      "table",
      { class: "data" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["Name", "Id", "Description"].map((c) => h("th", { scope: "col" }, c)),
        ),
      ),
      list,
    ),
    form,
  );
  async function load() {
    try {
      const subs = await listAll(`/categories/${enc(cat.id)}/sub-categories`);
      if (!alive()) return;
      fill(
        list,
        ...(subs.length
          ? subs.map((s) =>
              h(
                "tr",
                {},
                h("th", { scope: "row" }, s.name),
                h("td", {}, h("code", {}, s.id)),
                h("td", {}, s.description || ""),
              ),
            )
          : [h("tr", {}, h("td", { colspan: 3, class: "empty" }, "No sub-categories yet."))]),
      );
    } catch (error) {
      reportError(error);
    }
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearMessages();
    clearFieldErrors(form);
    const body = { name: subName.value.trim() };
    if (subDesc.value.trim()) body.description = subDesc.value.trim();
    try {
      const created = await api(
        "POST",
        `/categories/${enc(cat.id)}/sub-categories${query({ subCategoryId: subId.value.trim() })}`,
        body,
      );
      showStatus(`Sub-category “${created.name}” added.`);
      for (const el of [subId, subName, subDesc]) el.value = "";
      await load();
    } catch (error) {
      reportError(error, form);
    }
  });
  await load();
}

// ---------------------------------------------------------------------------
// Decide playground
// ---------------------------------------------------------------------------

function renderDecide() {
  const customer = h("input", { id: "d-customerId", type: "text", spellcheck: "false" });
  customer.dataset.path = "customerId";
  const segments = h("input", { id: "d-segments", type: "text" });
  segments.dataset.path = "segments";
  const attributes = h("textarea", {
    id: "d-attributes",
    rows: 4,
    spellcheck: "false",
    placeholder: '{"loyalty_score": 40}',
  });
  attributes.dataset.path = "attributes";
  const limit = h("input", { id: "d-limit", type: "number", step: "1", min: "1", max: "50" });
  limit.dataset.path = "limit";
  const results = h("div", { class: "results", "aria-live": "polite" });
  const button = h("button", { type: "submit", class: "primary" }, "Decide");
  const form = h(
    "form",
    { class: "card", novalidate: true },
    h(
      "div",
      { class: "grid" },
      field("Customer id", customer),
      field("Segments", segments, "Comma separated."),
      field("Attributes (JSON)", attributes, "A JSON object; formulas see it as customer.*."),
      field("Limit", limit, "Blank means 5."),
    ),
    h("p", { class: "hint" }, "A dry run with explanations: nothing is recorded."),
    h("div", { class: "actions" }, button),
  );
  const alive = startView("Decide", heading("Decide playground"), form, results);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearMessages();
    clearFieldErrors(form);
    let attrs = {};
    if (attributes.value.trim()) {
      try {
        attrs = JSON.parse(attributes.value);
      } catch (error) {
        showFieldErrors(form, [{ field: "attributes", description: `not valid JSON: ${error.message}` }]);
        return;
      }
      if (!attrs || typeof attrs !== "object" || Array.isArray(attrs)) {
        showFieldErrors(form, [{ field: "attributes", description: 'must be a JSON object, like {"age": 40}' }]);
        return;
      }
    }
    const body = {
      customerId: customer.value.trim(),
      segments: splitList(segments.value),
      attributes: attrs,
      explain: true,
      dryRun: true,
    };
    const n = numberValue(limit);
    if (Number.isNaN(n)) {
      showFieldErrors(form, [{ field: "limit", description: "must be a number" }]);
      return;
    }
    if (n !== undefined) body.limit = n;
    button.disabled = true;
    try {
      const answer = await api("POST", "/decide", body);
      if (alive()) showDecision(results, answer);
    } catch (error) {
      reportError(error, form);
    } finally {
      button.disabled = false;
    }
  });
  customer.focus();
}

function showDecision(box, answer) {
  const offers = answer.offers || [];
  const candidates = answer.candidates || [];
  const offerRows = offers.map((o) =>
    h(
      "tr",
      {},
      h("td", {}, String(o.rank)),
      h("th", { scope: "row" }, h("a", { href: `#offers/${enc(o.offerId)}` }, o.name || o.offerId)),
      h("td", {}, formatNumber(o.score)),
      h("td", {}, formatNumber(o.propensity)),
      h("td", {}, o.propensitySource || "—"),
      h("td", {}, o.mandatory ? "Yes" : "No"),
    ),
  );
  const candidateRows = candidates.map((c) => {
    const reason = c.selected ? "selected" : c.reason || "dropped";
    return h(
      "tr",
      { class: c.selected ? "selected" : "dropped" },
      h("th", { scope: "row" }, c.name || c.offerId),
      h("td", {}, h("code", {}, c.offerId)),
      h("td", {}, h("span", { class: `fate ${c.selected ? "selected" : "dropped"}` }, reason)),
      h("td", {}, c.selected ? "—" : DROP_STEPS[reason] || "—"),
      h("td", {}, c.message || ""),
      h("td", {}, formatNumber(c.score)),
      h("td", {}, formatNumber(c.propensity)),
    );
  });
  const cols = (names) =>
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        names.map((n) => h("th", { scope: "col" }, n)),
      ),
    );
  fill(
    box,
    h("p", { class: "meta" }, `Decision ${answer.decisionId || "—"} at ${formatInstant(answer.decisionTime)}`),
    h(
      "table",
      { class: "data", id: "decided-offers" },
      h("caption", {}, "Offers"),
      cols(["Rank", "Name", "Score", "Propensity", "Propensity source", "Mandatory"]),
      h(
        "tbody",
        {},
        offerRows.length ? offerRows : h("tr", {}, h("td", { colspan: 6, class: "empty" }, "No offer qualified.")),
      ),
    ),
    h(
      "table",
      { class: "data", id: "candidates" },
      h("caption", {}, "Candidates"),
      cols(["Name", "Offer id", "Fate", "Step", "Message", "Score", "Propensity"]),
      h(
        "tbody",
        {},
        candidateRows.length ? candidateRows : h("tr", {}, h("td", { colspan: 7, class: "empty" }, "No candidates.")),
      ),
    ),
  );
}

// ---------------------------------------------------------------------------
// Router
// ---------------------------------------------------------------------------

const ROUTES = [
  [/^#offers$/, () => renderOfferList(), "offers"],
  [/^#offers\/new$/, () => renderOfferForm(null), "offers"],
  [/^#offers\/([^/]+)$/, (m) => renderOfferForm(decodeURIComponent(m[1])), "offers"],
  [/^#categories$/, () => renderCategories(), "categories"],
  [/^#categories\/new$/, () => renderCategoryForm(null), "categories"],
  [/^#categories\/([^/]+)$/, (m) => renderCategoryForm(decodeURIComponent(m[1])), "categories"],
  [/^#decide$/, () => renderDecide(), "decide"],
];

function route() {
  clearMessages();
  if (flash) {
    if (flash.kind === "error") showBanner(flash.text);
    else showStatus(flash.text);
    flash = null;
  }
  if (!apiKey()) {
    renderSignIn();
    return;
  }
  const hash = location.hash;
  const match = ROUTES.map(([pattern, render, sectionName]) => [hash.match(pattern), render, sectionName]).find(
    ([m]) => m,
  );
  if (!match) {
    location.replace("#offers"); // fires hashchange, which routes again
    return;
  }
  const [m, render, sectionName] = match;
  const nav = document.getElementById("nav");
  nav.hidden = false;
  for (const link of nav.querySelectorAll("a")) {
    if (link.dataset.section === sectionName) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  Promise.resolve(render(m)).catch((error) => reportError(error));
  const h1 = main().querySelector("h1");
  if (h1 && document.activeElement === document.body) h1.focus({ preventScroll: true });
}

function start() {
  document.getElementById("sign-out").addEventListener("click", () => signOut("Signed out.", "status"));
  document.querySelector(".skip-link").addEventListener("click", (event) => {
    event.preventDefault(); // the hash is the router's, so focus instead of navigating
    main().focus();
  });
  window.addEventListener("hashchange", route);
  route();
}

start();
