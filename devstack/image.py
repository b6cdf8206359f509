"""What ``deploy/Dockerfile`` builds, rebuilt without a container engine.

No container engine runs on the project's machines, so the image is checked by doing what its
build stage does, line by line: the build context is the repository minus ``.dockerignore``
(docker-py's own implementation of its rules), each ``COPY`` copies from that context and fails
as ``docker build`` would when a source is missing or ignored, each ``RUN`` runs in a shell with
the container paths the stage uses (``/src``, ``/dist``, ``/opt/venv``) mapped under a temporary
root. The result is the virtual environment the runtime stage copies (``COPY --from=build
/opt/venv``): ``tests/ops/test_image.py`` runs ``wangge`` and every service from it, outside the
repository, against the real Kafka and PostgreSQL.

What this does not reproduce: the base image itself (this machine's Python runs the build, not
the image's), ``USER``/``HEALTHCHECK`` (checked by hadolint and the unit tests), layer caching.
"""

from __future__ import annotations

import ast
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from email.parser import Parser
from importlib.metadata import packages_distributions
from pathlib import Path
from zipfile import ZipFile

from docker.utils.build import exclude_paths
from dockerfile_parse import DockerfileParser

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
# The container paths the build stage may use; each maps to a directory under the build root.
STAGE_PATHS = ("/src", "/dist", "/opt/venv")


class ImageBuildError(RuntimeError):
    """The build stage would fail in ``docker build`` (or uses what this rebuild cannot map)."""


@dataclass
class BuiltImage:
    root: Path  # the temporary root the container paths map under
    context: frozenset[str]  # the files of the build context, relative to it
    wheels: list[Path] = field(default_factory=list)

    def host(self, container_path: str) -> Path:
        return self.root / container_path.lstrip("/")

    @property
    def venv(self) -> Path:
        return self.host("/opt/venv")

    def bin(self, name: str) -> Path:
        return self.venv / "bin" / name


def dockerignore_patterns(context: Path) -> list[str]:
    path = context / ".dockerignore"
    if not path.exists():
        return []
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def context_files(context: Path, dockerfile: Path = DOCKERFILE) -> frozenset[str]:
    """The regular files ``docker build`` sends, relative to the context (docker-py's rules)."""
    rel_dockerfile = os.path.relpath(dockerfile, context)
    paths = exclude_paths(str(context), dockerignore_patterns(context), dockerfile=rel_dockerfile)
    return frozenset(p for p in paths if (context / p).is_file() and not (context / p).is_symlink())


def build_stage(dockerfile_text: str, name: str = "build") -> list[tuple[str, str]]:
    """``(instruction, value)`` of the stage ``FROM … AS <name>``, in order."""
    parser = DockerfileParser(fileobj=io.BytesIO(dockerfile_text.encode()))
    out: list[tuple[str, str]] = []
    inside = False
    for item in parser.structure:
        instruction, value = item["instruction"], item["value"]
        if instruction == "FROM":
            words = value.split()
            inside = len(words) >= 3 and words[-2].upper() == "AS" and words[-1] == name
            continue
        if inside and instruction != "COMMENT":
            out.append((instruction, value))
    if not out:
        raise ImageBuildError(f"no stage named {name!r} in the Dockerfile")
    return out


def _map_paths(command: str, image: BuiltImage, *, strict: bool = True) -> str:
    def repl(m: re.Match[str]) -> str:
        return str(image.host(m.group(0)))

    pattern = r"(?<![\w./-])(?:" + "|".join(re.escape(p) for p in STAGE_PATHS) + r")(?=[/\s]|$)"
    mapped = re.sub(pattern, repl, command)
    for token in shlex.split(mapped) if strict else ():
        if token.startswith("/") and not token.startswith(str(image.root)):
            raise ImageBuildError(
                f"RUN uses {token}, outside the paths this rebuild maps ({', '.join(STAGE_PATHS)})"
            )
    return mapped


def _copy(image: BuiltImage, context: Path, value: str, workdir: str) -> None:
    args = shlex.split(value)
    flags = [a for a in args if a.startswith("--")]
    if any(f.startswith("--from") for f in flags):
        raise ImageBuildError(f"COPY {value}: --from in the build stage is not supported")
    *sources, dest = [a for a in args if not a.startswith("--")]
    dest_path = dest if dest.startswith("/") else f"{workdir.rstrip('/')}/{dest}"
    target = image.host(dest_path)
    into_dir = dest.endswith("/") or dest in (".", "./") or len(sources) > 1
    for source in sources:
        src = os.path.normpath(source)
        if src == ".":
            chosen = sorted(image.context)
            base = ""
        else:
            chosen = sorted(f for f in image.context if f == src or f.startswith(src + "/"))
            base = src
        if not chosen:
            raise ImageBuildError(
                f"COPY {source}: not found in the build context (missing, or excluded by "
                ".dockerignore)"
            )
        for rel in chosen:
            if rel == src:  # a single file
                out = target / Path(rel).name if into_dir else target
            else:  # a directory's contents go into the destination
                out = target / os.path.relpath(rel, base or ".")
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(context / rel, out)


def build(root: Path, context: Path = ROOT, dockerfile: Path = DOCKERFILE) -> BuiltImage:
    """Run the Dockerfile's build stage under ``root``; the image's venv is ``.venv``."""
    image = BuiltImage(root=root, context=context_files(context, dockerfile))
    workdir = "/"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    # `python` in RUN is this interpreter (the image's would be the base image's)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    for instruction, value in build_stage(dockerfile.read_text()):
        if instruction == "WORKDIR":
            workdir = value if value.startswith("/") else f"{workdir.rstrip('/')}/{value}"
            image.host(workdir).mkdir(parents=True, exist_ok=True)
        elif instruction == "ENV":
            for pair in shlex.split(value):
                key, _, val = pair.partition("=")
                val = re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), ""), val)
                env[key] = _map_paths(val, image, strict=False)
        elif instruction == "COPY":
            _copy(image, context, value, workdir)
        elif instruction == "RUN":
            command = _map_paths(value, image)
            done = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", command],
                cwd=image.host(workdir),
                env=env,
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                raise ImageBuildError(f"RUN {value} failed:\n{done.stdout}\n{done.stderr}")
        elif instruction not in ("ARG", "LABEL"):
            raise ImageBuildError(f"{instruction} in the build stage: not supported here")
    image.wheels = sorted(image.host("/dist").glob("*.whl"))
    return image


# --- what the wheel imports ----------------------------------------------------------------------


def wheel_requirements(wheel: Path) -> set[str]:
    """The distributions the wheel requires unconditionally (no extra, no marker that is false
    here), normalised."""
    from packaging.requirements import Requirement

    with ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(z.read(name).decode())
    out: set[str] = set()
    for line in meta.get_all("Requires-Dist") or []:
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            out.add(_normal(req.name))
    return out


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imports(source: str) -> set[str]:
    """Top-level modules a file imports, except under ``if TYPE_CHECKING:``."""
    tree = ast.parse(source)
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def unresolved_imports(wheel: Path) -> dict[str, list[str]]:
    """Modules the wheel's code imports that neither the standard library, the wheel itself
    nor a distribution it requires provides: ``{module: [files importing it]}``."""
    requires = wheel_requirements(wheel)
    providers = {
        mod: {_normal(d) for d in dists} for mod, dists in packages_distributions().items()
    }
    with ZipFile(wheel) as z:
        py_files = [n for n in z.namelist() if n.endswith(".py")]
        own = {n.split("/")[0].removesuffix(".py") for n in py_files}
        missing: dict[str, list[str]] = {}
        for name in py_files:
            for mod in _imports(z.read(name).decode()):
                if mod in sys.stdlib_module_names or mod in own or mod == "__future__":
                    continue
                if providers.get(mod, set()) & requires:
                    continue
                missing.setdefault(mod, []).append(name)
    return missing


def top_level_packages(wheel: Path) -> set[str]:
    with ZipFile(wheel) as z:
        return {n.split("/")[0] for n in z.namelist() if "/" in n and ".dist-info" not in n}
