"""The backup the migration Job takes before LiteLLM migrates: two init containers after the wait for PostgreSQL.

``backup-dump`` runs pg_dump (custom format: compressed, restored object by object by ``generator restore``)
into the pod's scratch emptyDir; ``backup-upload`` runs the site's own LiteLLM image, whose boto3 puts the
file into the cache bucket under ``backup.prefix`` and keeps the newest ``backup.keep``. Either failing fails
the Job before the migration starts, so no schema moves forward without a copy. Both run as the other
containers do: non-root, no privilege escalation, no capability, read-only root; they write only /backup.
"""

from __future__ import annotations

from typing import Any

from generator.model import Site
from generator.render.common import env_secret, env_value, hardened_container_security

DUMP_DIR = "/backup"
DUMP_FILE = f"{DUMP_DIR}/database.dump"
# Keys are <prefix><UTC time>-before-<image tag>.dump: the name sorts by time, and says which release migrated.
KEY_TIME_FORMAT = "%Y%m%dT%H%M%SZ"
# pg_dump reads the URL from the environment (sh expands it); libpq's connect timeout bounds an unreachable
# server, --lock-wait-timeout a table another session holds.
DUMP_SCRIPT = (
    'set -eu\n'
    f'pg_dump --format=custom --lock-wait-timeout=60000 --file={DUMP_FILE} --dbname="$DATABASE_URL"\n'
    f'echo "pg_dump: $(wc -c < {DUMP_FILE}) bytes"\n'
)
UPLOAD_SCRIPT = f"""\
import os, re, sys, time
import boto3
from botocore.config import Config
bucket, prefix, keep, label = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
s3 = boto3.client(
    "s3", endpoint_url=os.environ["S3_ENDPOINT_URL"], region_name=os.environ["S3_REGION_NAME"],
    aws_access_key_id=os.environ["S3_AWS_ACCESS_KEY_ID"], aws_secret_access_key=os.environ["S3_AWS_SECRET_ACCESS_KEY"],
    config=Config(connect_timeout=10, read_timeout=120, retries={{"total_max_attempts": 3, "mode": "standard"}},
                  s3={{"addressing_style": "path"}}))
key = f"{{prefix}}{{time.strftime('{KEY_TIME_FORMAT}', time.gmtime())}}-before-{{label}}.dump"
s3.upload_file("{DUMP_FILE}", bucket, key)
print(f"uploaded s3://{{bucket}}/{{key}}", flush=True)
ours = re.compile(re.escape(prefix) + r"\\d{{8}}T\\d{{6}}Z-before-[A-Za-z0-9_.-]+\\.dump$")
listed = {{o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
          for o in page.get("Contents", []) if ours.match(o["Key"])}}
found = sorted(listed | {{key}})  # the dump just written counts even where a listing lags behind the write
for old in found[:-keep]:
    s3.delete_object(Bucket=bucket, Key=old)
    print(f"removed s3://{{bucket}}/{{old}} (keeping the newest {{keep}})", flush=True)
"""
SMALL = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}}


def image_label(site: Site) -> str:
    """The release being migrated to, as a key part: the tag, else the digest's first 12 hex digits."""
    if site.image.tag:
        return site.image.tag
    return f"sha256-{site.image.digest.split(':', 1)[1][:12]}"


def backup_containers(site: Site) -> list[dict[str, Any]]:
    mount = [{"name": "backup", "mountPath": DUMP_DIR}]
    dump = {
        "name": "backup-dump",
        "image": site.backup_image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", DUMP_SCRIPT],
        "env": [env_secret("DATABASE_URL", "DATABASE_URL"), env_value("PGCONNECT_TIMEOUT", "10"),
                env_value("PGAPPNAME", "litellm-backup")],
        "resources": SMALL,
        "securityContext": hardened_container_security(),
        "volumeMounts": mount,
    }
    upload = {
        "name": "backup-upload",
        "image": site.image.reference,
        "imagePullPolicy": site.image.pull_policy,
        "command": ["python", "-c", UPLOAD_SCRIPT, site.s3.bucket, site.backup.prefix, str(site.backup.keep),
                    image_label(site)],
        "env": [env_secret("S3_AWS_ACCESS_KEY_ID", "S3_AWS_ACCESS_KEY_ID"),
                env_secret("S3_AWS_SECRET_ACCESS_KEY", "S3_AWS_SECRET_ACCESS_KEY"),
                env_value("S3_ENDPOINT_URL", site.s3.endpoint), env_value("S3_REGION_NAME", site.s3.region),
                env_value("PYTHONDONTWRITEBYTECODE", "1")],
        "resources": SMALL,
        "securityContext": hardened_container_security(),
        "volumeMounts": [{**mount[0], "readOnly": True}],
    }
    return [dump, upload]


def backup_volume(site: Site) -> dict[str, Any]:
    return {"name": "backup", "emptyDir": {"sizeLimit": site.backup.size_limit}}
