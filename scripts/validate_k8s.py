"""Validate the Kubernetes manifests offline. For each directory: ``kustomize build`` it, then

- schemas: every resource against the Kubernetes JSON schemas shipped in ``kubernetes-validate``
  (strict: unknown fields fail), every Strimzi ``KafkaTopic`` and ``KafkaUser`` against
  ``deploy/k8s/schemas/``; any other kind fails (there is no schema for it here);
- structure: the set-up Job (``wangge ops setup``, named ``wangge-setup-<hash>``, non-root like the
  Deployments, the role passwords from the services' own Secrets, ``--no-topics`` exactly when
  the build has KafkaTopics), an initContainer ``wangge ops wait <service>`` in every Deployment
  with the service's own credentials and image, references to the hashed names of the generated
  ConfigMap and Secrets only, no fingerprint left in the output, the TLS files mounted where the
  config says, the topics and the Kafka users (label ``strimzi.io/cluster``) and the services in
  the namespaces the layout intends (``LAYOUTS``), the Kafka address in the topics' namespace,
  each service (and its initContainer) logging in to Kafka as its own principal and the Job as
  ``wangge-ops``, with the password Strimzi writes for that KafkaUser, which the build has;
- rolling: in a copy of ``deploy/k8s``, one change at a time (a literal added to each generated
  ConfigMap and Secret, a new image tag), built again: the generated object is renamed, exactly
  the Deployments that read it get a new pod template (they roll), and the Job gets a new name
  exactly when it reads it (a Job's pod template cannot change; a new Job runs).

    python scripts/validate_k8s.py --kustomize .cache/go-bin/kustomize \\
        deploy/k8s/base deploy/k8s/topics deploy/k8s/overlays/example \\
        deploy/k8s/overlays/single-namespace

Runs in the deploy-tools virtualenv (``make deploy-check``), which has kubernetes-validate,
jsonschema and PyYAML.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
CRD_SCHEMAS = {
    ("kafka.strimzi.io/v1beta2", "KafkaTopic"): K8S / "schemas/kafkatopic_v1beta2.json",
    ("kafka.strimzi.io/v1beta2", "KafkaUser"): K8S / "schemas/kafkauser_v1beta2.json",
}
K8S_VERSION = "1.33.0"
SERVICES = ("intake", "dispatch", "feedback")
STRIMZI_CLUSTER = "wangge"
IMAGE_PLACEHOLDER = "wangge"  # the base's image name, which the overlays replace
# Each workload's Kafka principal: the KafkaUser (deploy/k8s/users) it logs in as.
KAFKA_USERS = {**{f"wangge-{s}": f"wangge-{s}" for s in SERVICES}, "wangge-setup": "wangge-ops"}
# Names the pods reference that no kustomization generates: Strimzi's cluster CA Secret and the
# Secrets its User Operator writes for the KafkaUsers (their password).
EXTERNAL = {"wangge-cluster-ca-cert", *KAFKA_USERS.values()}
# What each directory is meant to render: (services' namespace, topics' namespace); None: none.
LAYOUTS: dict[str, tuple[str | None, str | None]] = {
    "deploy/k8s/base": (None, None),
    "deploy/k8s/topics": (None, None),
    "deploy/k8s/users": (None, None),
    "deploy/k8s/minio": (None, None),  # the photos' object store, in the services' namespace
    "deploy/k8s/overlays/example": ("wangge", "kafka"),  # (a) topics where the Kafka cluster is
    "deploy/k8s/overlays/single-namespace": ("wangge", "wangge"),  # (b) one namespace
}
HASHED = re.compile(r"^(?P<base>.+)-[a-z0-9]{10}$")
PROBE = "VALIDATE_K8S_PROBE=1"

Doc = dict[str, Any]


# --- schemas ---------------------------------------------------------------------------------


def validate(docs: list[Doc], where: str) -> list[str]:
    errors = []
    for doc in docs:
        kind, api = doc.get("kind"), doc.get("apiVersion")
        name = f"{where}: {kind}/{doc.get('metadata', {}).get('name')}"
        crd = CRD_SCHEMAS.get((api, kind))  # type: ignore[arg-type]
        try:
            if crd is not None:
                jsonschema.validate(doc, json.loads(crd.read_text()))
            else:
                kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            errors.append(f"{name}: no schema for {api} {kind}")
        except (kubernetes_validate.ValidationError, jsonschema.ValidationError) as exc:
            errors.append(f"{name}: {getattr(exc, 'message', exc)}")
    return errors


# --- reading a build -------------------------------------------------------------------------


def build(kustomize: str, path: Path) -> list[Doc]:
    out = subprocess.run(
        [kustomize, "build", str(path)], check=True, capture_output=True, text=True
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def name_of(doc: Doc) -> str:
    return str(doc["metadata"]["name"])


def pod_spec(doc: Doc) -> Doc:
    spec: Doc = doc["spec"]["template"]["spec"]
    return spec


def containers(doc: Doc) -> list[Doc]:
    spec = pod_spec(doc)
    return [*spec.get("initContainers", []), *spec["containers"]]


def references(doc: Doc) -> Iterator[tuple[str, str]]:
    """(kind, name) of every ConfigMap and Secret a workload's pod template reads."""
    spec = pod_spec(doc)
    for c in containers(doc):
        for src in c.get("envFrom", []):
            if "configMapRef" in src:
                yield "ConfigMap", src["configMapRef"]["name"]
            if "secretRef" in src:
                yield "Secret", src["secretRef"]["name"]
        for env in c.get("env", []):
            ref = env.get("valueFrom", {})
            if "configMapKeyRef" in ref:
                yield "ConfigMap", ref["configMapKeyRef"]["name"]
            if "secretKeyRef" in ref:
                yield "Secret", ref["secretKeyRef"]["name"]
    for vol in spec.get("volumes", []):
        if "configMap" in vol:
            yield "ConfigMap", vol["configMap"]["name"]
        if "secret" in vol:
            yield "Secret", vol["secret"]["secretName"]


def env_value(container: Doc, var: str) -> str | None:
    """A container's variable set to a literal value."""
    for env in container.get("env", []):
        if env["name"] == var and "value" in env:
            return str(env["value"])
    return None


def env_ref(container: Doc, var: str) -> tuple[str, str] | None:
    """(Secret name, key) a container's variable comes from."""
    for env in container.get("env", []):
        ref = env.get("valueFrom", {}).get("secretKeyRef")
        if env["name"] == var and ref:
            return ref["name"], ref["key"]
    return None


def unhashed(name: str) -> str:
    m = HASHED.match(name)
    return m.group("base") if m else name


def generated(docs: list[Doc]) -> dict[tuple[str, str], str]:
    """Generated ConfigMaps and Secrets (the ones with a hash suffix): (kind, generator name) ->
    rendered name."""
    return {
        (d["kind"], unhashed(name_of(d))): name_of(d)
        for d in docs
        if d["kind"] in ("ConfigMap", "Secret") and HASHED.match(name_of(d))
    }


def config_data(docs: list[Doc]) -> dict[str, str]:
    cms = [d for d in of_kind(docs, "ConfigMap") if unhashed(name_of(d)) == "wangge-config"]
    return dict(cms[0].get("data", {})) if cms else {}


# --- structure -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Build:
    """What the structure checks share: one directory's build, its workloads and topics, and the
    layout it is meant to render."""

    docs: list[Doc]
    where: str
    deployments: dict[str, Doc]
    jobs: list[Doc]
    topics: list[Doc]
    users: list[Doc]  # the KafkaUsers
    workloads: list[Doc]  # the Deployments, then the Jobs
    layout: tuple[str | None, str | None] | None  # LAYOUTS[where]; None: not a known directory
    is_overlay: bool

    @classmethod
    def of(cls, docs: list[Doc], where: str) -> Build:
        deployments = {name_of(d): d for d in of_kind(docs, "Deployment")}
        jobs = of_kind(docs, "Job")
        topics = of_kind(docs, "KafkaTopic")
        users = of_kind(docs, "KafkaUser")
        workloads = [*deployments.values(), *jobs]
        return cls(
            docs=docs,
            where=where,
            deployments=deployments,
            jobs=jobs,
            topics=topics,
            users=users,
            workloads=workloads,
            layout=LAYOUTS.get(where),
            is_overlay=where.startswith("deploy/k8s/overlays/") or where not in LAYOUTS,
        )

    # Read only by the checks that need them (a build they do not reach is not parsed further).
    @cached_property
    def topics_ns(self) -> set[str | None]:
        return {t["metadata"].get("namespace") for t in self.topics}

    @cached_property
    def users_ns(self) -> set[str | None]:
        return {u["metadata"].get("namespace") for u in self.users}

    @cached_property
    def services_ns(self) -> set[str | None]:
        return {d["metadata"].get("namespace") for d in self.workloads}

    @cached_property
    def gens(self) -> dict[tuple[str, str], str]:
        return generated(self.docs)

    @cached_property
    def config(self) -> dict[str, str]:
        return config_data(self.docs)

    @property
    def job(self) -> Doc:
        """The set-up Job (the checks after ``check_deployment_names`` run with exactly one)."""
        return self.jobs[0]

    @property
    def job_container(self) -> Doc:
        container: Doc = pod_spec(self.job)["containers"][0]
        return container


def check_topic_labels(b: Build) -> list[str]:
    return [
        f"{t['kind']}/{name_of(t)}: no strimzi.io/cluster: {STRIMZI_CLUSTER}"
        for t in [*b.topics, *b.users]
        if t["metadata"].get("labels", {}).get("strimzi.io/cluster") != STRIMZI_CLUSTER
    ]


def check_left_in_output(b: Build) -> list[str]:
    """No local-config object and no fingerprint Secret in what is applied."""
    errors = []
    for d in b.docs:
        if "config.kubernetes.io/local-config" in d["metadata"].get("annotations", {}):
            errors.append(f"{d['kind']}/{name_of(d)}: a local-config object in the output")
        if d["kind"] == "Secret" and unhashed(name_of(d)) == "wangge-setup":
            errors.append(f"Secret/{name_of(d)}: the Job's fingerprint is in the output")
    return errors


def check_namespaces(b: Build) -> list[str]:
    """The services and the topics in the namespaces the layout intends; the services in one."""
    errors = []
    topics_ns, got_services, want = b.topics_ns, b.services_ns, b.layout
    if want is not None:
        if b.workloads and got_services != {want[0]}:
            errors.append(
                f"services in namespaces {sorted(map(str, got_services))}, want {want[0]}"
            )
        if b.topics and topics_ns != {want[1]}:
            errors.append(f"topics in namespaces {sorted(map(str, topics_ns))}, want {want[1]}")
        if b.users and b.users_ns != {want[1]}:  # the User Operator watches where topics go
            errors.append(
                f"Kafka users in namespaces {sorted(map(str, b.users_ns))}, want {want[1]}"
            )
    if len(got_services) > 1:
        errors.append(f"the services are spread over namespaces {sorted(map(str, got_services))}")
    return errors


def check_deployment_names(b: Build) -> list[str]:
    if sorted(b.deployments) != sorted(f"wangge-{s}" for s in SERVICES):
        return [f"Deployments {sorted(b.deployments)}, want one per service"]
    return []


def check_setup_job(b: Build) -> list[str]:
    """The set-up Job's name, command, restarts, topics and administrator credentials."""
    errors = []
    job, job_c = b.job, b.job_container
    if not re.fullmatch(r"wangge-setup-[a-z0-9]{10}", name_of(job)):
        errors.append(f"Job/{name_of(job)}: not named wangge-setup-<hash> (kustomizeconfig.yaml)")
    if job_c.get("command") != ["wangge", "ops", "setup"]:
        errors.append(f"Job: runs {job_c.get('command')}, want wangge ops setup")
    if pod_spec(job).get("restartPolicy") != "Never" or "backoffLimit" not in job["spec"]:
        errors.append("Job: want restartPolicy Never and a backoffLimit")
    if ("--no-topics" in job_c.get("args", [])) != bool(b.topics):
        errors.append(
            "Job: --no-topics must be given exactly when KafkaTopics are in the build "
            "(one owner of the topics: the Topic Operator or the Job)"
        )
    admin = env_ref(job_c, "DATABASE_URL")
    if admin is None or unhashed(admin[0]) != "wangge-setup-db":
        errors.append(f"Job: DATABASE_URL from {admin}, want Secret wangge-setup-db")
    return errors


def check_job_security(b: Build) -> list[str]:
    """The Job runs as the Deployments do (non-root), with no service account token."""
    errors = []
    job, job_c = b.job, b.job_container
    first = next(iter(b.deployments.values()))
    if pod_spec(job).get("securityContext") != pod_spec(first).get("securityContext"):
        errors.append(f"Job: its pod securityContext differs from Deployment/{name_of(first)}'s")
    if job_c.get("securityContext") != pod_spec(first)["containers"][0].get("securityContext"):
        errors.append(f"Job: its container securityContext differs from {name_of(first)}'s")
    if pod_spec(job).get("automountServiceAccountToken") is not False:
        errors.append("Job: mounts a service account token (it needs no API access)")
    return errors


def check_images(b: Build) -> list[str]:
    images = {c["image"] for w in b.workloads for c in containers(w)}
    if b.is_overlay and (len(images) != 1 or IMAGE_PLACEHOLDER in images):
        return [f"images {sorted(images)}: want one, the overlay's (not the placeholder)"]
    return []


def check_wait_containers(b: Build) -> list[str]:
    """In every Deployment, one initContainer ``wangge ops wait <service>`` like the service's own
    container; the Job gives each service's role the password the service connects with."""
    errors = []
    job_c = b.job_container
    for svc in SERVICES:
        dep = b.deployments.get(f"wangge-{svc}")
        if dep is None:
            continue
        where_d = f"Deployment/wangge-{svc}"
        main = pod_spec(dep)["containers"][0]
        inits = pod_spec(dep).get("initContainers", [])
        if len(inits) != 1 or inits[0].get("command", [])[:4] != ["wangge", "ops", "wait", svc]:
            errors.append(f"{where_d}: want one initContainer running wangge ops wait {svc}")
            continue
        init = inits[0]
        for field in ("image", "envFrom", "securityContext"):
            if init.get(field) != main.get(field):
                errors.append(f"{where_d}: the initContainer's {field} differs from the service's")
        if env_ref(init, "DATABASE_URL") != env_ref(main, "DATABASE_URL"):
            errors.append(f"{where_d}: the initContainer does not use the service's DATABASE_URL")
        if env_ref(job_c, f"WANGGE_{svc.upper()}_DATABASE_URL") != env_ref(main, "DATABASE_URL"):
            errors.append(f"Job: WANGGE_{svc.upper()}_DATABASE_URL is not {svc}'s DATABASE_URL")
    return errors


def check_references(b: Build) -> list[str]:
    """The hashed names only; nothing unresolved but what the overlay says is external."""
    errors = []
    names = {(d["kind"], name_of(d)) for d in b.docs}
    for w in b.workloads:
        for kind, ref in references(w):
            if (kind, ref) in names:
                if not HASHED.match(ref):
                    errors.append(
                        f"{w['kind']}/{name_of(w)}: {kind} {ref} has no hash suffix "
                        "(a change to it would not roll the pods)"
                    )
                continue
            if (kind, ref) in b.gens:
                errors.append(f"{w['kind']}/{name_of(w)}: {kind} {ref} by its unhashed name")
            elif b.is_overlay and ref not in EXTERNAL:
                errors.append(f"{w['kind']}/{name_of(w)}: {kind} {ref} is not in the build")
    return errors


def check_tls_mounts(b: Build) -> list[str]:
    """TLS files where the config says, in every container that reads the config."""
    errors = []
    for var in ("KAFKA_SSL_CAFILE", "KAFKA_SSL_CERTFILE", "KAFKA_SSL_KEYFILE"):
        if not b.config.get(var):
            continue
        folder = str(Path(b.config[var]).parent)
        for w in b.workloads:
            for c in containers(w):
                mounts = {m["mountPath"].rstrip("/") for m in c.get("volumeMounts", [])}
                if folder not in mounts:
                    errors.append(f"{w['kind']}/{name_of(w)}/{c['name']}: {var} not mounted")
    return errors


def check_kafka_principals(b: Build) -> list[str]:
    """Each service and its initContainer log in as the service's own Kafka principal, the Job as
    wangge-ops, with the password of that KafkaUser's Secret; the build has the KafkaUser when it
    has any (an overlay with the users)."""
    errors = []
    users = {name_of(u) for u in b.users}
    for w in b.workloads:
        base = unhashed(name_of(w)) if w["kind"] == "Job" else name_of(w)
        want = KAFKA_USERS.get(base)
        if want is None:
            continue
        for c in containers(w):
            where = f"{w['kind']}/{name_of(w)}/{c['name']}"
            if env_value(c, "KAFKA_SASL_USERNAME") != want:
                errors.append(f"{where}: KAFKA_SASL_USERNAME is not {want}")
            if env_ref(c, "KAFKA_SASL_PASSWORD") != (want, "password"):
                errors.append(f"{where}: KAFKA_SASL_PASSWORD not from Secret {want}, key password")
        if users and want not in users:
            errors.append(f"{w['kind']}/{name_of(w)}: logs in as {want}, no such KafkaUser")
    return errors


# Secrets only some services read (docs/operations.md): (Secret, key) -> the services that read it
HELD_BY = {
    ("wangge-s3", "WANGGE_S3_ACCESS_KEY"): {"intake", "dispatch"},
    ("wangge-s3", "WANGGE_S3_SECRET_KEY"): {"intake", "dispatch"},
    ("wangge-media", "WANGGE_MEDIA_LINK_KEY"): {"intake", "dispatch"},
    ("wangge-session", "WANGGE_SESSION_KEY"): {"dispatch", "feedback"},
}
MINIO = "wangge-minio"


def check_held_keys(b: Build) -> list[str]:
    """The object store's keys and the photo links' key in intake and dispatch only, the session
    key in dispatch and feedback, each from its own Secret; the photos' ConfigMap read by intake
    and dispatch only."""
    errors = []
    for svc in SERVICES:
        dep = b.deployments.get(f"wangge-{svc}")
        if dep is None:
            continue
        main = pod_spec(dep)["containers"][0]
        for (secret, key), holders in HELD_BY.items():
            got = env_ref(main, key)
            want = (secret, key) if svc in holders else None
            if (got and (unhashed(got[0]), got[1])) != want:
                errors.append(f"Deployment/wangge-{svc}: {key} from {got}, want {want}")
        reads = {unhashed(name) for kind, name in references(dep) if kind == "ConfigMap"}
        want_photos = svc in ("intake", "dispatch")
        if ("wangge-photos" in reads) != want_photos:
            errors.append(
                f"Deployment/wangge-{svc}: ConfigMap wangge-photos "
                + ("not read (intake and dispatch read it)" if want_photos else "read")
            )
    return errors


def check_minio(b: Build) -> list[str]:
    """With MinIO in the build: the services' endpoint is its Service, and their keys are its
    root user's, from a Secret of the build."""
    minio = [d for d in of_kind(b.docs, "StatefulSet") if name_of(d) == MINIO]
    if not minio:
        return []
    errors = []
    photos = [d for d in of_kind(b.docs, "ConfigMap") if unhashed(name_of(d)) == "wangge-photos"]
    endpoint = photos[0].get("data", {}).get("WANGGE_S3_ENDPOINT") if photos else None
    if endpoint != f"http://{MINIO}:9000":
        errors.append(f"MinIO in the build, WANGGE_S3_ENDPOINT {endpoint!r}: not its Service")
    if not any(d["kind"] == "Service" and name_of(d) == MINIO for d in b.docs):
        errors.append(f"StatefulSet/{MINIO}: no Service {MINIO}")
    secrets = {name for (kind, _), name in b.gens.items() if kind == "Secret"}
    c = pod_spec(minio[0])["containers"][0]
    for var, key in (
        ("MINIO_ROOT_USER", "WANGGE_S3_ACCESS_KEY"),
        ("MINIO_ROOT_PASSWORD", "WANGGE_S3_SECRET_KEY"),
    ):
        got = env_ref(c, var)
        if not got or (unhashed(got[0]), got[1]) != ("wangge-s3", key):
            errors.append(f"StatefulSet/{MINIO}: {var} from {got}, want wangge-s3 {key}")
        elif b.is_overlay and got[0] not in secrets:
            errors.append(f"StatefulSet/{MINIO}: Secret {got[0]} is not in the build")
    return errors


def check_kafka_address(b: Build) -> list[str]:
    """The Kafka cluster is where its Topic Operator watches: the topics' namespace."""
    bootstrap = b.config.get("KAFKA_BOOTSTRAP_SERVERS")
    if not (bootstrap and len(b.topics_ns) == 1 and len(b.services_ns) == 1):
        return []
    (tns,), (sns,) = b.topics_ns, b.services_ns
    service = f"{STRIMZI_CLUSTER}-kafka-bootstrap"
    ok = {f"{service}.{tns}.svc", f"{service}.{tns}.svc.cluster.local"}
    if tns == sns:
        ok.add(service)
    hosts = {h.strip().rsplit(":", 1)[0] for h in bootstrap.split(",")}
    if not hosts <= ok:
        return [f"KAFKA_BOOTSTRAP_SERVERS {sorted(hosts)}: not the cluster in {tns}"]
    return []


# The checks of a build with the Deployments and the one set-up Job, in the order they report.
JOB_CHECKS: tuple[Callable[[Build], list[str]], ...] = (
    check_setup_job,
    check_job_security,
    check_images,
    check_wait_containers,
    check_references,
    check_tls_mounts,
    check_kafka_principals,
    check_kafka_address,
    check_held_keys,
    check_minio,
)


def structure(docs: list[Doc], where: str) -> list[str]:
    b = Build.of(docs, where)
    errors = [*check_topic_labels(b), *check_left_in_output(b), *check_namespaces(b)]
    if not b.deployments:
        return errors
    errors += check_deployment_names(b)
    if len(b.jobs) != 1:
        return [*errors, f"{len(b.jobs)} Jobs, want the set-up Job"]
    for check in JOB_CHECKS:
        errors += check(b)
    return errors


# --- rolling ---------------------------------------------------------------------------------


def kustomization_files(copy_root: Path, where: str) -> list[Path]:
    """The kustomization files of ``where`` (its own and its subdirectories'), then the base's."""
    own = sorted((copy_root / where).rglob("kustomization.yaml"), key=lambda p: len(p.parts))
    base = copy_root / "deploy/k8s/base/kustomization.yaml"
    return [*own, *([base] if base not in own else [])]


def edit(path: Path, change: Any) -> None:
    doc = yaml.safe_load(path.read_text())
    change(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def generator_file(files: list[Path], kind: str, name: str) -> Path | None:
    key = "configMapGenerator" if kind == "ConfigMap" else "secretGenerator"
    for f in files:
        if any(g.get("name") == name for g in yaml.safe_load(f.read_text()).get(key, [])):
            return f
    return None


def add_literal(kind: str, name: str) -> Any:
    key = "configMapGenerator" if kind == "ConfigMap" else "secretGenerator"

    def change(doc: Doc) -> None:
        for g in doc[key]:
            if g.get("name") == name:
                g.setdefault("literals", []).append(PROBE)

    return change


def new_image_tag(doc: Doc) -> None:
    images = doc.setdefault("images", [])
    found = [i for i in images if i.get("name") == IMAGE_PLACEHOLDER]
    if not found:
        images.append({"name": IMAGE_PLACEHOLDER, "newTag": "validate-probe"})
    for i in found:
        i["newTag"] = f"{i.get('newTag', 'latest')}-validate-probe"


def snapshot(docs: list[Doc]) -> tuple[dict[str, Any], str, dict[tuple[str, str], str]]:
    templates = {name_of(d): d["spec"]["template"] for d in of_kind(docs, "Deployment")}
    jobs = of_kind(docs, "Job")
    return templates, name_of(jobs[0]) if jobs else "", generated(docs)


def rolling(kustomize: str, where: str, docs: list[Doc]) -> tuple[list[str], int]:
    """Build a copy with one change at a time and compare; returns (errors, changes tried)."""
    if not of_kind(docs, "Deployment") or not of_kind(docs, "Job"):
        return [], 0
    errors: list[str] = []
    templates, job, gens = snapshot(docs)
    readers = {
        name_of(w): set(references(w))
        for w in [*of_kind(docs, "Deployment"), *of_kind(docs, "Job")]
    }
    job_reads = readers[job]
    tried = 0
    with tempfile.TemporaryDirectory() as tmp:
        copy_root = Path(tmp)
        changes: list[tuple[str, tuple[str, str] | None]] = [
            (f"{kind} {gen}: a literal added", (kind, gen)) for kind, gen in sorted(gens)
        ]
        changes.append(("a new image tag", None))
        for label, what in changes:
            shutil.rmtree(copy_root / "deploy", ignore_errors=True)
            shutil.copytree(K8S, copy_root / "deploy/k8s")
            files = kustomization_files(copy_root, where)
            if what is None:
                images_file = next(
                    (f for f in files if yaml.safe_load(f.read_text()).get("images")),
                    copy_root / where / "kustomization.yaml",
                )
                edit(images_file, new_image_tag)
            else:
                target = generator_file(files, *what)
                if target is None:
                    errors.append(f"{label}: no kustomization here generates it")
                    continue
                edit(target, add_literal(*what))
            tried += 1
            after_t, after_job, after_gens = snapshot(build(kustomize, copy_root / where))
            if what is not None and after_gens.get(what) == gens[what]:
                errors.append(f"{label}: its name did not change (no hash suffix?)")
            reader_key = (what[0], gens[what]) if what is not None else None
            for dep, tmpl in templates.items():
                reads = what is None or reader_key in readers[dep]
                rolled = after_t.get(dep) != tmpl
                if reads and not rolled:
                    errors.append(f"{label}: Deployment/{dep} reads it but would not roll")
                if not reads and rolled:
                    errors.append(f"{label}: Deployment/{dep} does not read it but would roll")
            job_reads_it = what is None or reader_key in job_reads
            if job_reads_it and after_job == job:
                errors.append(
                    f"{label}: the Job reads it but keeps its name {job} "
                    "(`kubectl apply` would be refused: a Job's pod template cannot change)"
                )
            if not job_reads_it and after_job != job:
                errors.append(f"{label}: the Job does not read it but would run again")
    return errors, tried


# --- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kustomize", default="kustomize")
    parser.add_argument("dirs", nargs="+")
    args = parser.parse_args(argv)
    failed = False
    for d in args.dirs:
        where = Path(d).resolve().relative_to(ROOT).as_posix()
        docs = build(args.kustomize, ROOT / where)
        errs = [f"{where}: {e}" for e in validate(docs, "schema") + structure(docs, where)]
        roll_errs, tried = rolling(args.kustomize, where, docs)
        errs += [f"{where}: {e}" for e in roll_errs]
        kinds: dict[str, int] = {}
        for doc in docs:
            kinds[doc["kind"]] = kinds.get(doc["kind"], 0) + 1
        placed = [
            f"{kinds[kind]} {kind} in "
            + "/".join(
                sorted({str(x["metadata"].get("namespace", "-")) for x in of_kind(docs, kind)})
            )
            for kind in ("Deployment", "Job", "KafkaTopic", "KafkaUser")
            if kinds.get(kind)
        ]
        jobs = [name_of(j) for j in of_kind(docs, "Job")]
        print(
            f"{where}: {len(docs)} resources {kinds}; "
            + ", ".join(placed)
            + (f"; Job {jobs[0]}" if jobs else "")
            + (f"; {tried} changes rebuilt" if tried else "")
            + f"; {len(errs)} problems"
        )
        for e in errs:
            print(e, file=sys.stderr)
        failed = failed or bool(errs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
