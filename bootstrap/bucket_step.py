"""S3 (SeaweedFS): the cache bucket and a dedicated identity limited to it.

SeaweedFS serves an IAM API on its S3 port (when its IAM is writable): CreateUser,
CreateAccessKey and PutUserPolicy with an AWS policy document restrict the identity to the
cache bucket. The service generates the access key, so the key cannot be stored in sops before
it exists; instead it is stored right after, and any other key of this dedicated user (left by
a crash in between) is deleted on the next run, so no credential is orphaned.
"""

from __future__ import annotations

import json

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError, ClientError, ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError, SSLError,
)

from bootstrap import DEFAULT_TIMEOUT
from bootstrap.credentials import AdminLogin
from bootstrap.report import CREATED, DELETED, UNCHANGED, UPDATED, Report
from bootstrap.vault import Vault
from generator.errors import ServiceError
from generator.model import Site

SERVICE = "bucket"
POLICY_NAME = "litellm-cache"


class BucketFailed(ServiceError):
    pass


def bucket_policy(bucket: str) -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket", "s3:GetBucketLocation"],
            "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        }],
    }


def fresh_plan(site: Site) -> list[tuple[str, str]]:
    """What the step creates on a server that has none of it (``bootstrap --dry-run --offline``)."""
    user = site.bootstrap.s3.user or f"litellm-{site.namespace}"
    return [(f"bucket {site.s3.bucket}", ""), (f"identity {user}", ""), (f"policy {POLICY_NAME}", f"only {site.s3.bucket}"),
            ("access key", "in sops as S3_AWS_ACCESS_KEY_ID/SECRET")]


class BucketStep:
    def __init__(self, site: Site, login: AdminLogin, vault: Vault, report: Report, *,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        self.site, self.vault, self.report, self.timeout = site, vault, report, timeout
        settings = site.bootstrap.s3
        self.endpoint = (settings.endpoint or site.s3.endpoint).rstrip("/")
        self.bucket = site.s3.bucket
        self.user = settings.user or f"litellm-{site.namespace}"
        verify: bool | str = settings.ca_bundle or settings.verify_tls
        # One attempt per request, each connecting and answering within the timeout: a hung service fails
        # within that bound instead of retrying for minutes.
        config = Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1, "mode": "standard"},
                        connect_timeout=timeout, read_timeout=timeout)
        common = dict(endpoint_url=self.endpoint, region_name=site.s3.region, verify=verify, config=config)
        self.verify = verify
        self.config = config
        self.s3 = boto3.client("s3", aws_access_key_id=login.user, aws_secret_access_key=login.password, **common)
        self.iam = boto3.client("iam", aws_access_key_id=login.user, aws_secret_access_key=login.password, **common)

    def run(self) -> None:
        try:
            self._bucket()
            self._user()
            self._policy()
            self._access_key()
        except SSLError as exc:  # before BotoCoreError, its base
            raise BucketFailed(f"s3 at {self.endpoint}: TLS verification failed ({exc.kwargs.get('error', exc)}); set "
                               "bootstrap.s3.caBundle to the CA file that signed its certificate", unreachable=True) from exc
        except EndpointConnectionError as exc:
            raise BucketFailed(f"s3 at {self.endpoint}: unreachable ({exc})", unreachable=True) from exc
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise BucketFailed(f"s3 at {self.endpoint}: {exc.operation_name} failed: {error.get('Code')}: "
                               f"{error.get('Message', '')}".rstrip(": ")) from exc
        except (ReadTimeoutError, ConnectTimeoutError) as exc:
            raise BucketFailed(f"s3 at {self.endpoint}: no answer within {self.timeout:g} s ({type(exc).__name__})",
                               unreachable=True) from exc
        except BotoCoreError as exc:
            raise BucketFailed(f"s3 at {self.endpoint}: {exc}") from exc

    def _bucket(self) -> None:
        try:
            self.s3.head_bucket(Bucket=self.bucket)
            self.report.add(SERVICE, f"bucket {self.bucket}", UNCHANGED)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in {"404", "NoSuchBucket", "NotFound"}:
                raise
            if not self.vault.dry_run:
                self.s3.create_bucket(Bucket=self.bucket)
            self.report.add(SERVICE, f"bucket {self.bucket}", CREATED)

    def _user(self) -> None:
        try:
            self.iam.get_user(UserName=self.user)
            self.report.add(SERVICE, f"identity {self.user}", UNCHANGED)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchEntity":
                raise
            if not self.vault.dry_run:
                self.iam.create_user(UserName=self.user)
            self.report.add(SERVICE, f"identity {self.user}", CREATED)

    def _policy(self) -> None:
        desired = bucket_policy(self.bucket)
        current = None
        try:
            document = self.iam.get_user_policy(UserName=self.user, PolicyName=POLICY_NAME)["PolicyDocument"]
            current = json.loads(document) if isinstance(document, str) else document
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchEntity":
                raise
        if _same_policy(current, desired):
            self.report.add(SERVICE, f"policy {POLICY_NAME}", UNCHANGED, f"only {self.bucket}")
            return
        if not self.vault.dry_run:
            self.iam.put_user_policy(UserName=self.user, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(desired))
        self.report.add(SERVICE, f"policy {POLICY_NAME}", CREATED if current is None else UPDATED, f"only {self.bucket}")

    def _access_key(self) -> None:
        stored_id = self.vault.get("S3_AWS_ACCESS_KEY_ID")
        stored_secret = self.vault.get("S3_AWS_SECRET_ACCESS_KEY")
        keys = []
        if not (self.vault.dry_run and not self._user_exists()):
            keys = [k["AccessKeyId"] for k in self.iam.list_access_keys(UserName=self.user)["AccessKeyMetadata"]]
        if stored_id in keys and stored_secret:
            self.report.add(SERVICE, f"access key {stored_id}", UNCHANGED, "in sops")
        else:
            if not self.vault.dry_run:
                created = self.iam.create_access_key(UserName=self.user)["AccessKey"]
                stored_id = created["AccessKeyId"]
                self.vault.remember_many({"S3_AWS_ACCESS_KEY_ID": stored_id,
                                          "S3_AWS_SECRET_ACCESS_KEY": created["SecretAccessKey"]})
            self.report.add(SERVICE, "access key", CREATED, "in sops as S3_AWS_ACCESS_KEY_ID/SECRET")
        for orphan in sorted(k for k in keys if k != stored_id):
            if not self.vault.dry_run:
                self.iam.delete_access_key(UserName=self.user, AccessKeyId=orphan)
            self.report.add(SERVICE, f"access key {orphan}", DELETED, "not in sops (left by an interrupted run)")

    def _user_exists(self) -> bool:
        try:
            self.iam.get_user(UserName=self.user)
            return True
        except ClientError:
            return False


def _same_policy(current: dict | None, desired: dict) -> bool:
    if not current:
        return False
    def norm(doc: dict) -> list:
        out = []
        for st in doc.get("Statement", []):
            as_list = lambda v: sorted(v) if isinstance(v, list) else [v]  # noqa: E731
            out.append((st.get("Effect"), as_list(st.get("Action", [])), as_list(st.get("Resource", []))))
        return sorted(out)
    return norm(current) == norm(desired)
