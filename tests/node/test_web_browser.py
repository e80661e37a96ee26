"""The web view in a real headless browser (Chromium via Selenium) against a real node.

The page must show what the node reports (its height, a trade's price),
update on its own when a new trade is committed, and show a proof the
gateway checked. Skipped, saying how to install them, where Chromium or
its driver is missing; CI installs both (``.ci/run``).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest

from clearing import reference_case_path
from ledger.keys import SigningKey
from market import transactions as txn
from node.client.clients import Client
from node.keys import load_key

pytestmark = pytest.mark.slow

INSTALL = "apt-get install chromium chromium-driver"
WAIT_S = 30  # bound on every wait for the page; the page normally follows in well under 1 s
SLOT = 5


def browser_paths() -> tuple[str, str]:
    """Chromium and ChromeDriver, or skip the test saying how to get them."""
    pytest.importorskip("selenium", reason="selenium is missing: pip install -e '.[test]'")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        pytest.skip(f"no headless Chromium / ChromeDriver on this machine: {INSTALL}")
    return chromium, driver


@pytest.fixture
def browser(tmp_path: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    profile = tempfile.mkdtemp(prefix="chromium-", dir=tmp_path)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1400,1200",
    ):
        options.add_argument(flag)
    chrome = webdriver.Chrome(options=options, service=Service(driver))
    try:
        yield chrome
    finally:
        chrome.quit()


def trade(buyer: Client, seller: Client, price: int, quantity: int) -> int:
    """A resting ask and a crossing bid; return the height of the block with the trade."""
    seller.place_order("electricity", SLOT, "ask", price, quantity)
    bid = buyer.place_order("electricity", SLOT, "bid", price, quantity)
    assert bid.events, "the bid did not trade"
    return buyer.wait_committed(bid.tx_id)


def test_the_page_shows_the_node_and_follows_a_new_trade(make_net, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser_paths()
    net = make_net(replicas=0, operator_args=("--web", "127.0.0.1:0", "--block-interval-ms", "20"))
    url = net.operator.web_url
    assert url is not None, net.operator.log_tail()
    case = json.loads(reference_case_path().read_text(encoding="utf-8"))
    network = {k: v for k, v in case["network"].items() if k != "peer_bus"}
    with (
        Client.connect(net.operator.address, key=load_key(net.operator_key)) as operator,
        Client.connect(net.operator.address, key=SigningKey.from_seed(b"\x01" * 32)) as buyer,
        Client.connect(net.operator.address, key=SigningKey.from_seed(b"\x02" * 32)) as seller,
    ):
        operator.wait_committed(operator.submit(txn.SetNetwork(json.dumps(network))).tx_id)
        buyer.wait_committed(buyer.register("C1", bus="1", role="consumer").tx_id)
        seller.wait_committed(seller.register("G12", bus="4", role="producer").tx_id)
        trade(buyer, seller, price=1234, quantity=5_000)
        resting = seller.place_order("electricity", SLOT, "ask", 1500, 7_000)  # stays in the book
        seller.wait_committed(resting.tx_id)
        height = int(operator.status()["height"])  # blocks stored; nothing else is sent now

        browser.get(url)
        wait = WebDriverWait(browser, WAIT_S)
        text = lambda css: browser.find_element(By.CSS_SELECTOR, css).text  # noqa: E731
        rows = lambda price: browser.find_elements(  # noqa: E731
            By.CSS_SELECTOR, f'#trades tr[data-price="{price}"]'
        )
        wait.until(lambda _: text("#height") == str(height))
        wait.until(lambda _: rows(1234))
        wait.until(lambda _: "1500" in text("#book tbody") and "7000" in text("#book tbody"))
        lines = browser.find_elements(By.CSS_SELECTOR, "#feeder svg line")
        assert len(lines) == len(network["lines"])  # the published feeder is drawn
        wait.until(lambda _: text("#live") == "live")

        # a new trade reaches the page by itself: websocket push, no reload
        assert not rows(1357)
        browser.execute_script("window.sameDocument = true")
        new_height = trade(buyer, seller, price=1357, quantity=2_000)
        wait.until(lambda _: rows(1357))
        wait.until(lambda _: int(text("#height")) >= new_height + 1)
        assert int(text("#height")) == int(operator.status()["height"])
        assert browser.execute_script("return window.sameDocument === true")

        # the newest block's first result, proven by the node and checked by the gateway
        browser.find_elements(By.CSS_SELECTOR, "#blocks button.prove-result")[0].click()
        wait.until(lambda _: browser.find_elements(By.CSS_SELECTOR, "#blocks .proof.ok"))
        proof = text("#blocks .proof.ok")
        assert "results root" in proof and "gateway ✓" in proof and "browser ✓" in proof

        # the page's own hashing on every leaf of every block, and on tampered paths
        browser.set_script_timeout(WAIT_S)
        verdicts = browser.execute_async_script(RECHECK_ALL)
        assert verdicts["checked"] > 10, verdicts
        assert verdicts["bad"] == [] and verdicts["tampered_passed"] == [], verdicts


RECHECK_ALL = """
const done = arguments[arguments.length - 1];
(async () => {
  const out = { checked: 0, bad: [], tampered_passed: [] };
  const { blocks } = await getJSON("/api/blocks?limit=50");
  for (const block of blocks) {
    const queries = block.transactions.map((t) => `tx=${t.tx_id}`)
      .concat(block.results.map((r) => `height=${block.height}&index=${r.index}`));
    for (const query of queries) {
      const proof = await getJSON(`/api/proof?${query}`);
      out.checked += 1;
      if (!proof.verified || (await recheckInBrowser(proof)) !== "browser ✓") out.bad.push(query);
      if (proof.path.length) {
        const first = proof.path[0];
        const flipped = (first[0] === "0" ? "1" : "0") + first.slice(1);
        const forged = { ...proof, path: [flipped, ...proof.path.slice(1)] };
        if ((await recheckInBrowser(forged)) === "browser ✓") out.tampered_passed.push(query);
      }
    }
  }
  return out;
})().then(done, (error) => done({ checked: 0, bad: [String(error)], tampered_passed: [] }));
"""
