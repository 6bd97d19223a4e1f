"""deploy/: the Prometheus rules pass `promtool check rules` and their own unit tests
(`promtool test rules`), and the Grafana dashboards are well-formed. That every metric they
query exists in a real scrape is checked in tests/e2e/test_metrics.py."""

import json
import re
import shutil
import subprocess

import pytest
import yaml

from backend_common.paths import PROJECT_ROOT

DEPLOY = PROJECT_ROOT / "deploy"
RULES = sorted((DEPLOY / "prometheus" / "rules").glob("*.yml"))
RULE_TESTS = sorted((DEPLOY / "prometheus" / "tests").glob("*.yml"))
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
RUNBOOK = PROJECT_ROOT / "docs" / "runbook.md"

# Metric names in PromQL: what is not a function, keyword, label or duration. Ours all start
# with etp_; the others come from Prometheus itself (up) and node_exporter (disk).
METRIC = re.compile(r"\b(etp_[a-z0-9_]+|up|node_[a-z0-9_]+)\b(?!\s*\()")
FOREIGN = re.compile(r"^(up|node_[a-z0-9_]+)$")


def metric_names(expr: str) -> set[str]:
    without_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    without_matchers = re.sub(r"\{[^}]*\}", "{}", without_strings)
    return set(METRIC.findall(without_matchers))


def dashboard_queries() -> dict[str, list[str]]:
    """Every PromQL expression of each dashboard (its panels and its variables)."""
    queries: dict[str, list[str]] = {}
    for path in DASHBOARDS:
        document = json.loads(path.read_text())
        exprs = [
            target["expr"] for panel in document["panels"] for target in panel.get("targets", [])
        ]
        exprs += [
            variable["definition"].removeprefix("label_values(").split(",")[0]
            for variable in document["templating"]["list"]
            if variable["type"] == "query"
        ]
        queries[path.name] = exprs
    return queries


def rule_queries() -> list[str]:
    return [
        rule["expr"]
        for path in RULES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not installed (Debian's prometheus package; .ci/run installs it)")
    return path


def test_alert_rules_pass_promtool_check():
    result = subprocess.run(
        [promtool(), "check", "rules", *map(str, RULES)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_fire_on_their_unit_test_series():
    result = subprocess.run(
        [promtool(), "test", "rules", *map(str, RULE_TESTS)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_runbook_section_and_a_test():
    runbook = RUNBOOK.read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", heading.strip().lower()).replace(" ", "-")
        for heading in re.findall(r"^#+ (.+)$", runbook, flags=re.MULTILINE)
    }
    tested = "\n".join(path.read_text() for path in RULE_TESTS)
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                name = rule["alert"]
                url = rule["annotations"]["runbook_url"]
                assert url == f"docs/runbook.md#{name.lower()}", name
                assert name.lower() in anchors, f"{name} has no section in docs/runbook.md"
                assert f"alertname: {name}\n" in tested, f"{name} has no promtool test"


def test_dashboards_are_well_formed_grafana_documents():
    assert {path.stem for path in DASHBOARDS} == {
        "etp-overview",
        "etp-ingest",
        "etp-webhooks-jobs",
    }
    uids = set()
    for path in DASHBOARDS:
        document = json.loads(path.read_text())
        assert document["uid"] == path.stem
        uids.add(document["uid"])
        panel_ids = [panel["id"] for panel in document["panels"]]
        assert len(panel_ids) == len(set(panel_ids)), f"{path.name}: panel ids repeat"
        for panel in document["panels"]:
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["targets"], f"{path.name}: {panel['title']} queries nothing"
            for target in panel["targets"]:
                assert metric_names(target["expr"]), f"{path.name}: {target['expr']}"
    assert len(uids) == len(DASHBOARDS)


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            'sum by (job) (rate(etp_http_requests_total{status=~"5..", route!="up"}[5m]))',
            {"etp_http_requests_total"},
        ),
        (
            "histogram_quantile(0.99, sum by (le) (rate(etp_x_bucket[$__rate_interval])))",
            {"etp_x_bucket"},
        ),
        ('up{system="etp"} == 0', {"up"}),
        (
            "node_filesystem_avail_bytes / node_filesystem_size_bytes",
            {"node_filesystem_avail_bytes", "node_filesystem_size_bytes"},
        ),
    ],
)
def test_metric_names_are_read_out_of_promql(expr, names):
    assert metric_names(expr) == names


def test_only_up_and_node_exporter_come_from_elsewhere():
    names = {
        name for exprs in dashboard_queries().values() for e in exprs for name in metric_names(e)
    }
    names |= {name for expr in rule_queries() for name in metric_names(expr)}
    foreign = {name for name in names if FOREIGN.match(name)}
    assert foreign <= {"up", "node_filesystem_avail_bytes", "node_filesystem_size_bytes"}


def etp_metric_names() -> set[str]:
    """The etp_ names the dashboards and rules query (for the scrape check)."""
    names = {
        name for exprs in dashboard_queries().values() for e in exprs for name in metric_names(e)
    }
    names |= {name for expr in rule_queries() for name in metric_names(expr)}
    return {name for name in names if not FOREIGN.match(name)}
