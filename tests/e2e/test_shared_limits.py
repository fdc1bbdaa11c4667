"""Issue 11: several replicas share their limits through Redis, as the rendered site configures them.

Two real LiteLLM proxies (two pods of one Deployment) run from the rendered config and env against a real
Redis-compatible server (Debian's valkey-server or redis-server, with a password as Thinkube's Valkey has).
A model deployment has rpm: 3, and the router (usage-based-routing-v2, the strategy that enforces a
deployment's rpm) counts in Redis: three requests in all are admitted, spread over both proxies, then each
proxy refuses. The same site without Redis admits each proxy's own share on each: more than the limit.

Without the database keys cannot carry limits, so the limit is the one the router enforces (README).
LiteLLM counts requests per minute in a window keyed by the UTC minute (``%H-%M`` in its rpm keys): every
request of a probe must land in one window that no earlier request touched, wherever in the minute the test
starts. A probe starts at once when enough of the minute is left for it (its budget scaled with the load),
else just after the next minute boundary; a probe that straddles a boundary anyway has spent part of the new
window, so the repeat waits for the boundary after that.

A proxy counts in memory and exchanges its counts with Redis every DEFAULT_REDIS_SYNC_INTERVAL (1 s in
LiteLLM 1.108.7: a push of its increments, then a read of the keys it counted): a burst faster than that is
admitted by each proxy on its own count. The shared probe is therefore paced, one request per two sync
periods and a margin, as traffic that the replicas share; a burst is what the test without Redis sends.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.e2e.rendered import chat, container_env, mocked, proxy, render, rendered_config, running, serving_container
from tests.servers import ValkeyServer, scaled

pytestmark = pytest.mark.e2e
RPM = 3
PROBE_SECONDS = 5  # a probe's requests besides its pacing, idle (12 took 0.4-1.8 s at a load factor of 4): scaled
BOUNDARY_MARGIN = 0.5  # seconds past a minute boundary before a probe starts (the proxies' clocks are this one's)
SYNC_PACE = 2.5  # seconds between shared requests: LiteLLM's Redis sync period (1 s) twice, and a margin
SECRET = {"LITELLM_MASTER_KEY": "sk-" + "s" * 40, "LITELLM_SALT_KEY": "salt-" + "s" * 20, "ADMIN_PASSWORD": "ui-pw",
          "CLIENT_SECRET": "client-secret", "REDIS_PASSWORD": "valkey-pw-7",
          "PROXY_ADMIN_ID": "0b7e4a52-5c1e-4d6f-9a0e-3f6b2d8c1a47"}


def site(redis: str, replicas: int) -> str:
    return f"""\
domain: example.com
gitops: {{flux: {{url: "https://git.example.org/gitops.git"}}}}
discovery: {{platformScaling: false}}
replicas: {replicas}
cache: {{enabled: false}}
drain: {{enabled: false}}
{redis}
models:
  - {{name: limited, model: openai/gpt-4o-mini, rpm: {RPM}}}
router: {{routingStrategy: usage-based-routing-v2, numRetries: 0}}
"""


def _window() -> int:
    """LiteLLM's rpm window: the UTC minute (epoch seconds have no leap seconds: minutes align with UTC's)."""
    return int(time.time() // 60)


def _fresh_window(budget: float, touched: int | None) -> None:
    """Return when the current window is one no probe touched and at least ``budget`` seconds of it are left."""
    into = time.time() % 60
    if _window() == touched or 60 - into < budget:
        time.sleep(60 - into + BOUNDARY_MARGIN)


def admitted(proxies: tuple, requests: int = 4 * RPM, pace: float = 0.0, attempts: int = 3) -> tuple[int, list[int]]:
    """Requests admitted out of ``requests``, alternating over the proxies, one every ``pace`` seconds, all
    within one minute window that no earlier request of this test counted in."""
    budget = min(pace * requests + scaled(PROBE_SECONDS), 60 - 2 * BOUNDARY_MARGIN)
    touched: int | None = None  # the last window a straddling probe spent requests in
    for _ in range(attempts):
        _fresh_window(budget, touched)
        window, started = _window(), time.monotonic()
        statuses = []
        for index in range(requests):
            if index:
                time.sleep(pace)
            status, body = chat(proxies[index % len(proxies)], SECRET["LITELLM_MASTER_KEY"], "limited")
            assert status in (200, 429), (status, body)
            if status == 429:
                assert "No deployments available" in str(body), body
            statuses.append(status)
        took, touched = time.monotonic() - started, _window()
        print(f"probe of {len(statuses)} requests in {took:.1f} s (budget {budget:.1f} s), "
              f"{'within one window' if touched == window else 'straddling a minute boundary'}")
        if touched == window:
            return statuses.count(200), statuses
    raise AssertionError(f"every probe straddled a minute boundary (budget {budget:.1f} s each)")


@pytest.fixture(scope="module")
def valkey(tmp_path_factory: pytest.TempPathFactory):
    with ValkeyServer(tmp_path_factory.mktemp("valkey"), password=SECRET["REDIS_PASSWORD"]) as server:
        yield server


def _pair(work: Path, site_yaml: str) -> tuple:
    docs = render(work / "repo", "pair", site_yaml)
    config = mocked(rendered_config(docs))
    env = container_env(serving_container(docs), SECRET)
    return proxy(work, config, env, "pod-a"), proxy(work, config, env, "pod-b"), config


def test_two_proxies_share_a_models_rpm_through_redis(valkey: ValkeyServer, tmp_path: Path) -> None:
    redis = f"redis: {{enabled: true, host: 127.0.0.1, port: {valkey.port}, passwordSecret: REDIS_PASSWORD}}"
    first, second, config = _pair(tmp_path, site(redis, replicas=2))
    assert config["router_settings"]["redis_host"] == "127.0.0.1"
    assert config["general_settings"]["coordination_redis"]["password"] == "os.environ/REDIS_PASSWORD"
    with running(first, second):
        # RPM requests admitted (A B A), then each proxy refuses (B A B): the count is one, kept in Redis
        count, statuses = admitted((first, second), requests=2 * RPM, pace=SYNC_PACE)
        assert count == RPM, f"both proxies together admitted {count} of {statuses}"
        assert statuses == [200] * RPM + [429] * RPM, statuses  # admitted first, then each proxy refuses
        assert 200 in statuses[1::2] and 200 in statuses[0::2], statuses  # each proxy served some of the limit
        keys = valkey.command("KEYS", "*:rpm:*")
        assert b"rpm" in keys, keys  # the counter lives in Redis, not in either process


def test_without_redis_each_proxy_counts_alone(tmp_path: Path) -> None:
    first, second, config = _pair(tmp_path, site("", replicas=1))
    assert "redis_host" not in config["router_settings"]
    with running(first, second):
        count, statuses = admitted((first, second))
    per_proxy = (statuses[0::2].count(200), statuses[1::2].count(200))
    # each proxy enforces the limit on its own count (LiteLLM 1.108.7 in memory admits rpm - 1 per process:
    # its pre-call check and its success callback both count a request), so the pair admits twice one
    # proxy's share, beyond the deployment's rpm
    assert per_proxy[0] == per_proxy[1] >= 1, statuses
    assert count == sum(per_proxy) > RPM, f"two proxies without Redis admitted only {count}: {statuses}"
