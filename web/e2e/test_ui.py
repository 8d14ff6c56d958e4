"""The web UI in headless Chromium against a real `opti serve` with the real model:
the reviewer's journey through queue and annotator, the two-reviewer conflict, the
dashboard's charts, settings, models, and role-aware navigation. Screenshots of every
page go to test-output/web/."""

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from conftest import wait_for

CSS = By.CSS_SELECTOR


def login(driver, server, token):
    driver.get(server.base + "/login")
    field = wait_for(driver, lambda d: d.find_element(CSS, "#token"))
    field.send_keys(token)
    driver.find_element(CSS, "#signin").click()
    wait_for(driver, lambda d: d.find_elements(CSS, "#whoami"), message="signed in")


def shot(driver, out_dir, name):
    w = driver.get_window_size()
    driver.save_screenshot(str(out_dir / f"{name}-{w['width']}x{w['height']}.png"))


def text(driver, selector):
    return driver.find_element(CSS, selector).text


def open_annotator(driver, server, item_id):
    driver.get(f"{server.base}/review/{item_id}")
    wait_for(driver, lambda d: d.find_elements(CSS, "#annotator"), message="annotator")
    # The image is decoded and the overlay laid out over it.
    wait_for(driver, lambda d: d.execute_script(
        "const i = document.getElementById('annotate-image'); return i && i.complete && i.naturalWidth > 0"))


def free_point(detections):
    """A normalised point on the image that no model box covers (drawing starts there)."""
    for y in (0.08, 0.3, 0.5, 0.7, 0.9):
        for x in (0.08, 0.3, 0.5, 0.7, 0.9):
            if not any(d["bbox"][0] <= x <= d["bbox"][2] and d["bbox"][1] <= y <= d["bbox"][3] for d in detections):
                return x, y
    raise AssertionError("no free spot on the image")


def drag(driver, element, start, delta):
    """Drags from a normalised point of `element` by `delta` pixels."""
    r = driver.execute_script("const b = arguments[0].getBoundingClientRect(); return [b.width, b.height];", element)
    ox, oy = start[0] * r[0] - r[0] / 2, start[1] * r[1] - r[1] / 2
    (ActionChains(driver).move_to_element_with_offset(element, int(ox), int(oy)).click_and_hold()
     .move_by_offset(delta[0] // 2, delta[1] // 2).move_by_offset(delta[0] - delta[0] // 2, delta[1] - delta[1] // 2)
     .release().perform())


def keys(driver, *ks):
    chain = ActionChains(driver)
    for k in ks:
        chain.send_keys(k)
    chain.perform()


def test_a_bad_token_is_refused_and_a_reviewer_sees_no_admin_pages(server, browser_factory, out_dir):
    d = browser_factory()
    d.get(server.base + "/")
    wait_for(d, lambda d: d.find_elements(CSS, "#token"), message="login page for visitors")
    d.find_element(CSS, "#token").send_keys("oq_not-a-real-token")
    d.find_element(CSS, "#signin").click()
    wait_for(d, lambda d: d.find_elements(CSS, "#login-error"))
    assert "not accepted" in text(d, "#login-error")
    shot(d, out_dir, "login")

    login(d, server, server.add_user("reviewer", "rex"))
    assert "rex · reviewer" in text(d, "#whoami")
    assert d.find_elements(CSS, "#nav-queue") and d.find_elements(CSS, "#nav-dashboard")
    assert not d.find_elements(CSS, "#nav-settings")
    assert not d.find_elements(CSS, "#nav-audit")
    assert not d.find_elements(CSS, "#nav-models")
    d.get(server.base + "/settings")
    wait_for(d, lambda d: "Admins only" in d.find_element(CSS, "main").text)


def test_reviewer_fixes_the_most_uncertain_item_by_keyboard_and_mouse(server, browser_factory, out_dir):
    ana = server.add_user("reviewer", "ana")
    admin = server.admin
    d = browser_factory()
    login(d, server, ana)
    d.get(server.base + "/queue")
    wait_for(d, lambda d: d.find_elements(CSS, ".queue-item"), message="queue rows")
    rows = d.find_elements(CSS, ".queue-item")
    pending = server.pending()
    assert len(rows) == len(pending) > 0
    confidences = [float(r.get_attribute("data-confidence")) for r in rows]
    assert confidences == sorted(confidences), "most uncertain first"
    assert text(d, "#queue-count") == str(len(pending))
    shot(d, out_dir, "queue")
    queue_before = server.get("/stats")["queue_size"]

    # The most uncertain item that has model boxes to correct.
    target = next(i for i in pending if i["detections"])
    d.find_element(CSS, f'.queue-item[data-id="{target["id"]}"] .open').click()
    wait_for(d, lambda d: d.find_elements(CSS, "#annotator"))
    open_annotator(d, server, target["id"])
    overlay = d.find_element(CSS, "#overlay")
    wait_for(d, lambda d: len(d.find_elements(CSS, "#overlay g.det")) == len(target["detections"]))
    assert "Your lease" in text(d, "#lease")
    claimed = server.get(f"/inspections/{target['id']}")
    assert claimed["status"] == "claimed" and claimed["claim"]["reviewer"] == "ana"

    # Keyboard: select the first box (B) and give it another class (1-4).
    classes = server.get("/me", ana)["classes"]
    new_class = next(c for c in classes if c != target["detections"][0]["class"])
    keys(d, "b", str(classes.index(new_class) + 1))
    wait_for(d, lambda d: d.find_element(CSS, '#overlay g.det[data-index="0"]').get_attribute("data-class") == new_class)
    # Mouse: move that box, then draw a new one on a free spot.
    first = target["detections"][0]["bbox"]
    centre = ((first[0] + first[2]) / 2, (first[1] + first[3]) / 2)
    drag(d, overlay, centre, (24, 16))
    start = free_point(target["detections"])
    keys(d, Keys.ESCAPE, "3")  # the next box drawn is a stain
    drag(d, overlay, start, (70, 50))
    wait_for(d, lambda d: len(d.find_elements(CSS, "#overlay g.det")) == len(target["detections"]) + 1)
    keys(d, "?")
    wait_for(d, lambda d: d.find_elements(CSS, "#help"))
    shot(d, out_dir, "annotator-help")
    keys(d, Keys.ESCAPE, "r")
    d.find_element(CSS, "#notes").send_keys("chipped edge, moved box")
    shot(d, out_dir, "annotator")
    d.find_element(CSS, "#submit").click()

    wait_for(d, lambda d: server.get(f"/inspections/{target['id']}")["status"] == "reviewed", message="reviewed")
    wait_for(d, lambda d: f"/review/{target['id']}" not in d.current_url, message="moved on to the next item")
    record = server.get(f"/inspections/{target['id']}")
    review = record["review"]
    assert review["reviewer"] == "ana" and review["verdict"] == "defective"
    assert review["notes"] == "chipped edge, moved box"
    boxes = review["detections"]
    assert len(boxes) == len(target["detections"]) + 1
    moved = boxes[0]
    assert moved["class"] == new_class and moved["confidence"] == 1.0
    assert moved["bbox"][0] > first[0] + 0.005 and moved["bbox"][1] > first[1] + 0.005, (moved, first)
    drawn = boxes[-1]
    assert drawn["class"] == "stain" and drawn["confidence"] == 1.0
    assert abs(drawn["bbox"][0] - start[0]) < 0.03 and abs(drawn["bbox"][1] - start[1]) < 0.03

    # The queue shrank (the next item is claimed by ana now, still in the queue; the reviewed one left it).
    d.get(server.base + "/queue")
    wait_for(d, lambda d: d.find_elements(CSS, "#queue-badge"))
    assert server.get("/stats")["queue_size"] == queue_before - 1
    wait_for(d, lambda d: text(d, "#queue-badge") == str(queue_before - 1))
    assert not d.find_elements(CSS, f'.queue-item[data-id="{target["id"]}"]')

    # The audit trail shows the change, before → after.
    a = browser_factory()
    login(a, server, admin)
    a.get(server.base + "/audit-trail")
    wait_for(a, lambda d: d.find_elements(CSS, ".audit-row"))
    entity = a.find_element(CSS, "#audit-entity")
    entity.send_keys(f"inspection/{target['id']}", Keys.TAB)
    wait_for(a, lambda d: d.find_elements(CSS, '.audit-row[data-action="reviewed"]')
             and all(f"inspection/{target['id']}" in r.text for r in d.find_elements(CSS, ".audit-row")))
    a.find_element(CSS, '.audit-row[data-action="reviewed"] button').click()
    diff = wait_for(a, lambda d: d.find_element(CSS, ".diff")).text
    assert new_class in diff and "defective" in diff and "reviewed" in diff
    shot(a, out_dir, "audit")


def test_two_reviewers_on_one_item_get_the_conflict_and_keep_their_work(server, browser_factory, out_dir):
    bob_token, cy_token = server.add_user("reviewer", "bob"), server.add_user("reviewer", "cy")
    bob, cy = browser_factory(), browser_factory(1920, 1080)
    login(bob, server, bob_token)
    login(cy, server, cy_token)
    item = next(i for i in server.pending() if i["detections"])
    open_annotator(bob, server, item["id"])
    wait_for(bob, lambda d: "Your lease" in text(d, "#lease"))

    open_annotator(cy, server, item["id"])
    wait_for(cy, lambda d: d.find_elements(CSS, "#claim-conflict"))
    assert "bob" in text(cy, "#claim-conflict")
    # cy works on it anyway: deletes a box, judges it defective.
    boxes = len(item["detections"])
    keys(cy, "b", "d", "r")
    wait_for(cy, lambda d: len(d.find_elements(CSS, "#overlay g.det")) == boxes - 1)

    keys(bob, "r", "n")  # bob: defective as the model says, submit and next
    wait_for(bob, lambda d: server.get(f"/inspections/{item['id']}")["status"] == "reviewed")

    keys(cy, "n")  # cy submits on the version read before bob's review
    wait_for(cy, lambda d: d.find_elements(CSS, "#submit-conflict"), message="409 shown")
    other = text(cy, "#other-result")
    assert "bob" in other and "defective" in other
    # cy's own work is still there, not silently dropped.
    assert cy.find_element(CSS, "#verdict-defective").get_attribute("aria-pressed") == "true"
    assert len(cy.find_elements(CSS, "#overlay g.det")) == boxes - 1
    assert cy.find_elements(CSS, "#unsaved")
    assert f"/review/{item['id']}" in cy.current_url
    shot(cy, out_dir, "conflict")
    stored = server.get(f"/inspections/{item['id']}")
    assert stored["review"]["reviewer"] == "bob" and len(stored["review"]["detections"]) == boxes

    cy.find_element(CSS, "#conflict-reload").click()
    wait_for(cy, lambda d: d.find_elements(CSS, "#record-status") and "reviewed" in text(d, "#record-status"))


def test_dashboard_draws_its_charts_with_the_live_numbers(server, browser_factory, out_dir):
    stats = server.get("/stats")
    for size in ((1920, 1080), (1366, 768)):
        d = browser_factory(*size)
        login(d, server, server.admin)
        d.get(server.base + "/dashboard")
        wait_for(d, lambda d: d.find_elements(CSS, "#chart-throughput svg"), message="throughput chart")
        wait_for(d, lambda d: d.find_elements(CSS, "#chart-drift svg"), message="drift chart")
        bars = d.find_elements(CSS, "#chart-throughput rect.bar")
        assert len(bars) == 2 * len(stats["throughput"]) == 48
        drawn = sum(float(b.get_attribute("data-value")) for b in bars)
        expected = sum(h["inspections"] + h["reviewed"] for h in stats["throughput"])
        assert drawn == expected > 0
        assert text(d, "#kpi-total .tile-value") == str(stats["total"])
        assert text(d, "#kpi-queue .tile-value") == str(stats["queue_size"])
        assert len(d.find_elements(CSS, "#chart-defects rect.bar")) == len(stats["defect_rate_by_class"])
        assert text(d, "#model-version") == stats["model_version"]
        drift = server.get("/drift/")
        assert f"baseline {drift['baseline_avg']:.3f}" in text(d, "#drift-numbers")
        shot(d, out_dir, "dashboard")


def test_admin_changes_settings_and_bad_values_are_refused(server, browser_factory, out_dir):
    d = browser_factory()
    login(d, server, server.admin)
    before = server.get("/config")
    d.get(server.base + "/settings")
    field = wait_for(d, lambda d: d.find_element(CSS, "#set-retrain-min"))
    field.clear()
    field.send_keys("37")
    d.find_element(CSS, "#settings-save").click()
    wait_for(d, lambda d: "Saved" in text(d, "#settings-message"))
    after = server.get("/config")
    assert after["value"]["retrain_min"] == 37 and after["version"] == before["version"] + 1
    assert after["value"]["threshold"] == before["value"]["threshold"]

    rate = d.find_element(CSS, "#set-audit-rate")
    rate.clear()
    rate.send_keys("1.5")
    d.find_element(CSS, "#settings-save").click()
    wait_for(d, lambda d: "audit_rate" in text(d, "#settings-message"))
    assert server.get("/config") == after
    shot(d, out_dir, "settings")


def test_admin_sees_models_with_lineage_and_the_retraining_panel(server, browser_factory, out_dir):
    d = browser_factory()
    login(d, server, server.admin)
    assert d.find_elements(CSS, "#nav-models") and d.find_elements(CSS, "#nav-settings")
    models = server.get("/models")
    d.get(server.base + "/model-registry")
    wait_for(d, lambda d: d.find_elements(CSS, ".model-row"))
    assert len(d.find_elements(CSS, ".model-row")) == len(models["items"])
    active = d.find_element(CSS, ".model-row.active")
    assert active.get_attribute("data-version") == models["active"]
    wait_for(d, lambda d: d.find_elements(CSS, "#jobs-table, #retrain-unavailable, .empty"))
    shot(d, out_dir, "models")
