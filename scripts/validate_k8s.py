"""Validate the Kubernetes manifests offline: ``kustomize build`` each directory, then check
every resource against the Kubernetes JSON schemas shipped in the ``kubernetes-validate`` package
(strict: unknown fields fail) and every Strimzi ``KafkaTopic`` against the schema shipped in
``deploy/k8s/schemas/``. Any other kind fails: there is no schema for it here.

    python scripts/validate_k8s.py --kustomize .cache/go-bin/kustomize \
        deploy/k8s/base deploy/k8s/overlays/example

Runs in the deploy-tools virtualenv (``make deploy-check``), which has kubernetes-validate,
jsonschema and PyYAML.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parent.parent
CRD_SCHEMAS = {
    ("kafka.strimzi.io/v1beta2", "KafkaTopic"): ROOT / "deploy/k8s/schemas/kafkatopic_v1beta2.json"
}
K8S_VERSION = "1.33.0"


def validate(docs: list[dict[str, Any]], where: str) -> list[str]:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kustomize", default="kustomize")
    parser.add_argument("dirs", nargs="+")
    args = parser.parse_args(argv)
    errors: list[str] = []
    for d in args.dirs:
        built = subprocess.run(
            [args.kustomize, "build", d], check=True, capture_output=True, text=True
        ).stdout
        docs = [doc for doc in yaml.safe_load_all(built) if doc]
        errs = validate(docs, d)
        errors += errs
        kinds: dict[str, int] = {}
        for doc in docs:
            kinds[doc["kind"]] = kinds.get(doc["kind"], 0) + 1
        print(f"{d}: {len(docs)} resources, {len(errs)} invalid ({kinds})")
    for e in errors:
        print(e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
