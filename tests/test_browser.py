"""Our front end in a real browser (marker `comfyui`): the OS's Chromium, driven by Playwright, against a real
ComfyUI with our package installed. What a user does: open each shipped workflow from the template browser, press
Run, watch the live loss curve, hover and click the router heatmap. Any error from our JS fails the test.
Screenshots go to the artifacts folder ($SELMA_TEST_ARTIFACTS in CI).

Skipped without Playwright (`pip install -e ".[browser]"`) or without Chromium (`apt-get install chromium
chromium-driver`; $SELMA_CHROMIUM names another binary). Nothing here downloads a browser."""

from __future__ import annotations

import json
import os
import re
import shutil
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.comfyui

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO / "example_workflows"
TEMPLATES = sorted(p.stem for p in WORKFLOWS.glob("*.json"))
OUR_SCRIPTS = "/extensions/comfyui-selma/"
EXTENSIONS = {"Selma.TrainLoss", "Selma.RouterInspector"}
# Chromium as the machine's closed network needs it: no background connections, no sandbox as root, no GPU.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip
RUN_TIMEOUT_MS = 300_000
# The help panel asks for docs/<NodeId>/<locale>.md first and falls back to docs/<NodeId>.md, the one page we ship:
# that first 404 is the front end's lookup, not a fault of ours.
LOCALE_PAGE = re.compile(r"/extensions/comfyui-selma/docs/\w+/[a-z]{2}(-[A-Za-z]+)?\.md$")


def chromium_binary() -> str:
    path = os.environ.get("SELMA_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.skip("no Chromium here (apt-get install chromium chromium-driver, or set SELMA_CHROMIUM)")
    return path


class OurErrors:
    """Errors that come from our extensions: uncaught exceptions whose stack passes through our scripts, and
    console errors that name them (a failed import, or the front end reporting that one of our hooks threw)."""

    def __init__(self, page) -> None:
        self.found: list[str] = []
        self.scripts: dict[str, int] = {}  # our scripts the page fetched: file name -> HTTP status
        page.on("pageerror", self._on_exception)
        page.on("console", self._on_console)
        page.on("response", self._on_response)

    def _on_response(self, response) -> None:
        if LOCALE_PAGE.search(response.url):
            return
        if OUR_SCRIPTS in response.url:
            self.scripts[response.url.rsplit("/", 1)[-1].split("?")[0]] = response.status
            if response.status >= 400:
                self.found.append(f"{response.url}: HTTP {response.status}")

    def _on_exception(self, error) -> None:
        text = f"{error}\n{error.stack or ''}"
        if OUR_SCRIPTS in text or "Selma." in text:
            self.found.append(text)

    def _on_console(self, message) -> None:
        if message.type != "error":
            return
        where = message.location.get("url", "")
        if LOCALE_PAGE.search(where):
            return
        if OUR_SCRIPTS in where or OUR_SCRIPTS in message.text or "Selma." in message.text:
            self.found.append(f"{message.text} ({where})")


@pytest.fixture(scope="module")
def browser(comfy_server):
    sync_api = pytest.importorskip("playwright.sync_api", reason='Playwright is not installed (".[browser]")')
    binary = chromium_binary()
    # A returning user: without this, the front end opens its first-run template dialog over the canvas.
    request = urllib.request.Request(
        f"{comfy_server.url}/settings/Comfy.TutorialCompleted", data=b"true", method="POST",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    urllib.request.urlopen(request, timeout=30).close()
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=binary, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, comfy_server, artifacts_dir, request):
    """ComfyUI's front end, open and ready (our extensions registered), in a fresh browser context; a screenshot
    of the end state is kept, and the test fails on any error from our scripts."""
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    errors = page.selma_errors = OurErrors(page)
    page.goto(comfy_server.url)
    page.wait_for_function(
        "window.app?.graph && app.extensions.some(e => e.name === 'Selma.RouterInspector')", timeout=120_000
    )
    page.wait_for_timeout(500)  # the front end finishes its own start-up work
    yield page
    page.screenshot(path=str(artifacts_dir / f"{request.node.name}.png"))
    context.close()
    assert errors.found == [], "errors from our extension:\n" + "\n".join(errors.found)


def open_template(page, name: str) -> None:
    """The template browser, as a user opens it: Browse Templates, our package's section, the workflow's card."""
    page.evaluate("app.extensionManager.command.execute('Comfy.BrowseTemplates')")
    page.get_by_text("comfyui-selma", exact=True).first.click()
    page.locator(f"[data-testid=template-workflow-{name}]").click()
    expected = json.loads((WORKFLOWS / f"{name}.json").read_text())
    page.wait_for_function(
        "ids => ids.every(id => app.graph.getNodeById(id)) && app.graph._nodes.length === ids.length",
        arg=[n["id"] for n in expected["nodes"]],
        timeout=30_000,
    )
    page.wait_for_timeout(300)  # the front end's checks of the loaded workflow (their toasts) come right after


def test_our_extensions_register_in_the_front_end(page):
    names = set(page.evaluate("app.extensions.map(e => e.name)"))
    assert EXTENSIONS <= names
    assert page.selma_errors.scripts == {p.name: 200 for p in (REPO / "web").glob("*.js")}


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_shipped_workflow_opens_from_the_template_browser_with_every_node_and_widget(page, name):
    open_template(page, name)
    saved = {n["id"]: n for n in json.loads((WORKFLOWS / f"{name}.json").read_text())["nodes"]}
    loaded = {n["id"]: n for n in page.evaluate("app.graph.serialize().nodes")}
    assert {i: n["type"] for i, n in loaded.items()} == {i: n["type"] for i, n in saved.items()}
    unknown = page.evaluate("app.graph._nodes.filter(n => !LiteGraph.registered_node_types[n.type]).map(n => n.type)")
    assert unknown == [], f"node types the front end does not know: {unknown}"
    for node_id, node in saved.items():  # a widget the node lacks would drop or shift the saved values
        assert loaded[node_id].get("widgets_values", []) == node["widgets_values"], (node_id, node["type"])
    dialogs = page.evaluate("[...document.querySelectorAll('.p-dialog')].map(d => d.innerText)")
    assert not any("missing" in d.lower() for d in dialogs), dialogs
    alerts = page.evaluate("[...document.querySelectorAll('.p-toast-message')].map(t => t.innerText)")
    assert alerts == [], f"the front end warned on loading {name}: {alerts}"  # e.g. its schema validation


def set_widget(page, node_type: str, widget: str, value) -> None:
    page.evaluate(
        """([type, name, value]) => {
            for (const node of app.graph._nodes.filter(n => n.comfyClass === type))
                node.widgets.find(w => w.name === name).value = value;
        }""",
        [node_type, widget, value],
    )


def fresh_run_name(page, run_name: str) -> None:
    """A run folder of its own, so every stage runs again (not ComfyUI's cache or a finished run of another
    test) — what a user does to start a new run."""
    for node_type in ("SelmaGeneratePrompts", "SelmaDatasetWriter", "SelmaTrainExpert"):
        set_widget(page, node_type, "run_name", run_name)


def press_run(page) -> None:
    page.get_by_role("button", name="Run", exact=True).first.click()


def test_the_live_loss_curve_draws_a_real_training_run(page, comfy_server, artifacts_dir):
    open_template(page, "selma_train_expert")
    fresh_run_name(page, "browser_loss")
    before = curve_pixels(page.screenshot(clip=node_box(page, "SelmaTrainExpert")))
    press_run(page)
    state = "app.graph._nodes.find(n => n.comfyClass === 'SelmaTrainExpert').selmaLoss"
    page.wait_for_function(f"{state}?.step > 0 && {state}.step === {state}.total", timeout=RUN_TIMEOUT_MS)
    losses = page.evaluate(f"{state}.losses")
    log = comfy_server.output_dir / "selma" / "browser_loss" / "experts" / "shapes_counting" / "train_log.jsonl"
    logged = [json.loads(line)["loss"] for line in log.read_text().splitlines()]
    assert losses == pytest.approx(logged, rel=1e-6)  # every step's loss, as the trainer logged it
    shot = page.screenshot(clip=node_box(page, "SelmaTrainExpert"))
    (artifacts_dir / "loss_curve_node.png").write_bytes(shot)
    after = curve_pixels(shot)
    assert after - before > 300, f"no loss curve drawn on the node ({before} -> {after} bluish pixels)"


def node_box(page, node_type: str) -> dict:
    """The node's rectangle on the page, after centring the view on it at 100% zoom."""
    return page.evaluate(
        """type => {
            const node = app.graph._nodes.find(n => n.comfyClass === type);
            app.canvas.ds.scale = 1;
            app.canvas.centerOnNode(node);
            app.canvas.setDirty(true, true);
            app.canvas.draw(true, true);
            const rect = app.canvas.canvas.getBoundingClientRect();
            const [x, y] = app.canvas.ds.convertOffsetToCanvas([node.pos[0], node.pos[1]]);
            return { x: rect.left + x, y: rect.top + y, width: node.size[0], height: node.size[1] };
        }""",
        node_type,
    )


def curve_pixels(png: bytes) -> int:
    """Bluish pixels: web/selma_train_loss.js draws the steps and their moving average in translucent light blue
    over the node's grey, anti-aliased; on a node only the output socket of type IMAGE is blue as well."""
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    return sum(count for count, (r, g, b) in image.getcolors(1 << 24) if b - r > 20 and b > 60)


def test_the_router_inspector_draws_a_real_run_and_follows_the_mouse(page, comfy_server, artifacts_dir):
    open_template(page, "selma_styleinject_inspect")
    fresh_run_name(page, "browser_router")
    press_run(page)
    state = "app.graph._nodes.find(n => n.comfyClass === 'SelmaRouterInspector').selmaRouter"
    page.wait_for_function(f"{state}?.data?.layers?.length > 0", timeout=RUN_TIMEOUT_MS)
    data = page.evaluate(f"{state}.data")
    history = comfy_server.get_json("/history")
    reports = [
        out["selma_router"][0]
        for entry in history.values()
        for out in entry["outputs"].values()
        if "selma_router" in out and out["selma_router"][0]["layers"] == data["layers"]
    ]
    assert reports and data["probabilities"] == reports[-1]["probabilities"]  # the run's numbers, as sent

    box = node_box(page, "SelmaRouterInspector")
    before = page.screenshot(clip=box)
    grid = page.evaluate(f"{state}.grid")
    assert grid and grid["steps"] == data["steps"] and grid["layers"] == len(data["layers"])
    step, layer = data["steps"] // 2, len(data["layers"]) // 2
    page.mouse.move(
        box["x"] + grid["x"] + (step + 0.5) * grid["cellW"], box["y"] + grid["y"] + (layer + 0.5) * grid["cellH"]
    )
    page.wait_for_function(f"{state}.hover?.step === {step} && {state}.hover?.layer === {layer}", timeout=10_000)
    page.evaluate("app.canvas.draw(true, true)")
    hovered = page.screenshot(clip=box)
    (artifacts_dir / "router_inspector_hover.png").write_bytes(hovered)
    assert hovered != before, "hovering a cell drew no tooltip"

    # The chips: the second one switches the heatmap from the cond to the uncond branch.
    chips = page.evaluate(f"{state}.hits.map(h => [h.x, h.y, h.w, h.h])")
    assert len(chips) >= 2
    x, y, w, h = chips[1]
    page.mouse.click(box["x"] + x + w / 2, box["y"] + y + h / 2)
    page.wait_for_function(f"{state}.branch === 1", timeout=10_000)
    page.mouse.move(box["x"] - 50, box["y"] - 50)
    page.evaluate("app.canvas.draw(true, true)")
    assert page.screenshot(clip=box) != before, "the uncond branch draws the same heatmap as cond"


def test_the_node_help_panel_shows_our_page(page):
    """Select a node and press the selection toolbox's info button: the front end's help panel shows the node's
    page from web/docs/ (not only its one-line description)."""
    page.evaluate(
        """() => {
            app.graph.clear();
            const node = LiteGraph.createNode("SelmaMergeExperts");
            node.pos = [400, 200];
            app.graph.add(node);
        }"""
    )
    box = node_box(page, "SelmaMergeExperts")
    page.mouse.click(box["x"] + 60, box["y"] - 15)  # its title bar: selects it, and the toolbox appears
    page.locator("[data-testid=info-button]").click()
    page.get_by_text("In short:").first.wait_for(timeout=15_000)
    text = page.evaluate("document.body.innerText")
    assert "SELMA Merge Experts" in text and "Outputs" in text
