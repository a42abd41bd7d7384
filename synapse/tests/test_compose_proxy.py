"""The compose file's nginx proxy (read, not run: no Docker engine here) lets large bodies through only
to the upload endpoints; every other request is held to a small limit before it reaches a web process."""
import re
from pathlib import Path

import yaml
from django.urls import reverse

ROOT = Path(__file__).resolve().parents[2]


def nginx() -> str:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return compose["configs"]["nginx"]["content"].replace("$$", "$")  # compose's escape for a literal $


def megabytes(value: str) -> int:
    assert value.endswith("m"), value
    return int(value[:-1])


def test_only_the_upload_endpoints_take_large_bodies():
    config = nginx()
    server_limit = re.search(r"^\s{4}client_max_body_size (\S+);", config, re.M)
    assert server_limit and megabytes(server_limit.group(1)) <= 12  # Django itself refuses JSON over 10 MB
    upload = re.search(r"location ~ (\S+) \{\s*client_max_body_size (\S+);", config)
    assert upload and megabytes(upload.group(2)) >= 1024
    pattern = re.compile(upload.group(1))
    uploads = [
        reverse("cycles:data-profiling", args=[7]),
        reverse("cycles:request-upload", args=[7]),
        reverse("api-cycle-report-population-files", args=[7]),
        reverse("api-request-evidence", args=[7]),
    ]
    assert all(pattern.match(path) for path in uploads), uploads
    others = ["/api/v1/cycles/", "/api/v1/cycle-reports/7/", "/cycle-reports/7/planning/", "/requests/7/",
              "/api/v1/requests/7/evidence/extra", "/login/"]
    assert not any(pattern.match(path) for path in others)
