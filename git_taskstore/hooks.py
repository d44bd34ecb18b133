"""Installing git-taskstore into a clone: the five hooks, the merge driver, the attribute.

Hooks go where ``git rev-parse --git-path hooks`` says, so linked worktrees share them.
Every hook is one template, ``resources/hook-tmpl``, a shim that execs ``hookrun`` with
the interpreter of this installation. Its id line carries a hash: a file holding the
current hash or an earlier one is ours, so reinstalling is idempotent (byte for byte) and
upgrades older versions in place. A hook that was there before is moved to
``<name>.pre-taskstore``; ``hookrun`` runs it first, and uninstall puts it back.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources

from .errors import TaskstoreError
from .git import DRIVER_DESCRIPTION, DRIVER_NAME, DRIVER_SCRIPT, Repo, driver_command
from .hookrun import HOOKS, LEGACY_SUFFIX, STORE_SEPARATOR

ATTRIBUTE = f"merge={DRIVER_NAME}"

ID_PREFIX = b"git-taskstore-hook-id: "
# The md5 of the template with its hash written as HASH (see template_hash). A change to
# the template changes it: move the old value to PRIOR_HASHES, so that installs of that
# version are still recognised as ours and upgraded.
CURRENT_HASH = b"d58c54df82292e5ec888474eb3c5d11e"
PRIOR_HASHES = (
    b"5f0d3c2a",  # the five 35-line shell scripts that chained the kept hook themselves
    b"ec435b3f0c2719f96236915b449a5dc8",  # the template before it named the stores
)
# The module the installed hooks run, in this installation.
HOOKRUN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hookrun.py")
TEMPLATE_START = b"# start templated\n"
TEMPLATE_END = b"# end templated\n"


def hook_template() -> bytes:
    """The one hook script, shipped as package data."""
    return resources.files(__package__).joinpath("resources", "hook-tmpl").read_bytes()


def template_hash(template: bytes) -> bytes:
    """What CURRENT_HASH must be for ``template``: its md5 with the hash written as HASH."""
    start = template.index(ID_PREFIX) + len(ID_PREFIX)
    end = start
    while template[end : end + 1].isalnum():
        end += 1
    return hashlib.md5(template[:start] + b"HASH" + template[end:]).hexdigest().encode()


def render_hook(stores: Sequence[str] = ()) -> bytes:
    """The template with this installation's interpreter and hookrun.py filled in, and
    the store folders the hooks guard (relative to the top; none: the default one)."""
    before, rest = hook_template().split(TEMPLATE_START)
    _, after = rest.split(TEMPLATE_END)
    values = (
        f"INSTALL_PYTHON={shlex.quote(sys.executable)}\nHOOKRUN={shlex.quote(HOOKRUN)}\n"
        f"STORES={shlex.quote(STORE_SEPARATOR.join(stores))}\n"
    ).encode()
    return before + TEMPLATE_START + values + TEMPLATE_END + after


def templated(path: str) -> dict[str, str]:
    """The templated values (INSTALL_PYTHON, HOOKRUN, STORES) of an installed hook of ours."""
    try:
        with open(path, "rb") as handle:
            text = handle.read().decode("utf-8", "surrogateescape")
    except OSError:
        return {}
    values = {}
    start, end = TEMPLATE_START.decode(), TEMPLATE_END.decode()
    if start in text and end in text:
        block = text.split(start, 1)[1].split(end, 1)[0]
        for line in block.splitlines():
            name, _, value = line.partition("=")
            parts = shlex.split(value) if value else []
            values[name] = parts[0] if parts else ""
    return values


def guarded_stores(repo: Repo) -> list[str]:
    """The store folders the installed hooks guard (from the top)."""
    stores = templated(os.path.join(repo.hooks_dir, HOOKS[0])).get("STORES", "")
    return [s for s in stores.split(STORE_SEPARATOR) if s]


def store_relpath(repo: Repo, store_dir: str) -> str:
    rel = os.path.relpath(store_dir, repo.top).replace(os.sep, "/")
    if STORE_SEPARATOR in rel or "\n" in rel or rel.startswith("../"):
        raise TaskstoreError(
            f"hooks can guard only a store inside the work tree whose path holds no "
            f"{STORE_SEPARATOR!r} or newline, not {rel!r}: choose another --store"
        )
    return rel


def is_ours(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    return any(ID_PREFIX + known in head for known in (CURRENT_HASH, *PRIOR_HASHES))


@dataclass
class InstallReport:
    hooks_dir: str
    written: list[str] = field(default_factory=list)  # installed or upgraded
    kept_aside: list[str] = field(default_factory=list)  # foreign hooks moved to .pre-taskstore
    unchanged: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)  # uninstall: foreign hooks put back
    removed: list[str] = field(default_factory=list)
    config_changed: bool = False
    attributes_changed: bool = False

    @property
    def changed(self) -> bool:
        return bool(
            self.written
            or self.kept_aside
            or self.restored
            or self.removed
            or self.config_changed
            or self.attributes_changed
        )


def check_hooks_path(repo: Repo, allow_hooks_path: bool) -> None:
    if repo.hooks_path and not allow_hooks_path:
        raise TaskstoreError(
            f"core.hooksPath is set ({repo.hooks_path}), so hooks are managed elsewhere: "
            "pass --hooks-path to install into that folder anyway, or run "
            '`git taskstore hook-run HOOK "$@"` from your own hooks'
        )


def install_hooks(
    repo: Repo, *, allow_hooks_path: bool = False, stores: Sequence[str] = ()
) -> InstallReport:
    """Install the five hooks, guarding ``stores`` (paths from the top) as well as the
    stores the hooks already guard."""
    check_hooks_path(repo, allow_hooks_path)
    report = InstallReport(repo.hooks_dir)
    os.makedirs(repo.hooks_dir, exist_ok=True)
    guarded = guarded_stores(repo)
    script = render_hook([*guarded, *(s for s in stores if s not in guarded)])
    for name in HOOKS:
        path = os.path.join(repo.hooks_dir, name)
        if os.path.lexists(path) and not is_ours(path):
            legacy = path + LEGACY_SUFFIX
            if os.path.lexists(legacy):
                raise TaskstoreError(
                    f"{path} is not ours and {legacy} already exists: move one of them "
                    "away, then install again"
                )
            os.replace(path, legacy)
            report.kept_aside.append(name)
        elif os.path.exists(path):
            with open(path, "rb") as handle:
                if handle.read() == script:
                    report.unchanged.append(name)
                    continue
        _write_executable(path, script)
        report.written.append(name)
    return report


def uninstall_hooks(repo: Repo) -> InstallReport:
    report = InstallReport(repo.hooks_dir)
    for name in HOOKS:
        path = os.path.join(repo.hooks_dir, name)
        legacy = path + LEGACY_SUFFIX
        if os.path.lexists(path) and is_ours(path):
            os.unlink(path)
            report.removed.append(name)
            if os.path.lexists(legacy):
                os.replace(legacy, path)
                report.restored.append(name)
        else:
            report.unchanged.append(name)
    return report


def hooks_installed(repo: Repo) -> dict[str, bool]:
    return {name: is_ours(os.path.join(repo.hooks_dir, name)) for name in HOOKS}


def _write_executable(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as handle:
        handle.write(data)
    os.chmod(tmp, 0o755)
    os.replace(tmp, path)


# --- merge driver and attribute ------------------------------------------------------------


def configure_driver(repo: Repo) -> bool:
    """Write merge.taskstore.name/driver into this clone's config; True if anything changed."""
    changed = repo.config_set(f"merge.{DRIVER_NAME}.name", DRIVER_DESCRIPTION)
    changed |= repo.config_set(f"merge.{DRIVER_NAME}.driver", driver_command())
    return changed


def driver_configured(repo: Repo) -> bool:
    """Configured by some install of ours (`init` rewrites it for the current one)."""
    return DRIVER_SCRIPT in (repo.config_get(f"merge.{DRIVER_NAME}.driver") or "")


def attribute_pattern(repo: Repo, store_dir: str) -> str:
    rel = os.path.relpath(store_dir, repo.top).replace(os.sep, "/")
    return f"{rel}/*.jsonl"


def ensure_attribute(repo: Repo, store_dir: str) -> bool:
    """Declare the driver for the store's JSONL files in .gitattributes (once)."""
    return ensure_attribute_for(repo, attribute_pattern(repo, store_dir))


def ensure_attribute_for(repo: Repo, pattern: str) -> bool:
    """Declare the driver for the files ``pattern`` matches in .gitattributes (once)."""
    line = f"{pattern} {ATTRIBUTE}"
    path = os.path.join(repo.top, ".gitattributes")
    if os.path.islink(path):
        # git does not follow it either; read through, its target would be copied into
        # the file written here, and into the next commit.
        raise TaskstoreError(
            f"{path} is a symbolic link: replace it with a file (git ignores a linked "
            ".gitattributes), then run this again"
        )
    try:
        with open(path, "rb") as handle:
            text = handle.read().decode("utf-8", "surrogateescape")
    except FileNotFoundError:
        text = ""
    if any(existing.split() == line.split() for existing in text.splitlines()):
        return False
    if text and not text.endswith("\n"):
        text += "\n"
    from .files import atomic_write

    atomic_write(path, (text + line + "\n").encode("utf-8", "surrogateescape"))
    return True


def declare_tasks_md(repo: Repo, top: str, roots: list[str]) -> list[str]:
    """Send each OpenSpec root's tasks.md files to the driver in .gitattributes, which
    merges them line by line (two branches ticking adjacent tasks do not conflict);
    return the patterns added. ``top``: the folder the roots are relative to."""
    added = []
    for root in roots:
        rel = os.path.relpath(os.path.join(top, root), repo.top).replace(os.sep, "/")
        pattern = f"{rel}/changes/**/tasks.md"
        if ensure_attribute_for(repo, pattern):
            added.append(pattern)
    return added


def attribute_applies(repo: Repo, store_dir: str) -> bool:
    """Whether git would use the driver for a JSONL file of this store."""
    probe = os.path.relpath(os.path.join(store_dir, "probe.jsonl"), repo.top)
    return repo.attribute(probe, "merge") == DRIVER_NAME


# --- the whole integration of a clone --------------------------------------------------------


@dataclass
class Integration:
    """What `init` did, or what `status` found, for one clone."""

    driver: bool  # merge.taskstore.driver configured in this clone
    attribute: bool  # .gitattributes sends the store's JSONL files to the driver
    hooks: dict[str, bool]  # hook name -> ours installed
    hooks_dir: str
    hooks_path: str | None  # core.hooksPath, when set
    changed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def integrate(
    repo: Repo, store_dir: str, *, hooks: bool = True, allow_hooks_path: bool = False
) -> Integration:
    """Configure the driver, declare the attribute and install the hooks: idempotent."""
    changed = []
    if configure_driver(repo):
        changed.append("merge driver configured in .git/config")
    if ensure_attribute(repo, store_dir):
        changed.append(".gitattributes declares the merge driver")
    warnings = []
    if hooks:
        try:
            report = install_hooks(
                repo, allow_hooks_path=allow_hooks_path, stores=[store_relpath(repo, store_dir)]
            )
        except TaskstoreError as exc:
            warnings.append(f"hooks not installed: {exc}")
        else:
            if report.written:
                changed.append(f"hooks installed: {', '.join(report.written)}")
            if report.kept_aside:
                changed.append(
                    f"existing hooks kept as <name>{LEGACY_SUFFIX}: {', '.join(report.kept_aside)}"
                )
    status = integration_status(repo, store_dir)
    status.changed, status.warnings = changed, warnings
    return status


def integration_status(repo: Repo, store_dir: str) -> Integration:
    status = Integration(
        driver=driver_configured(repo),
        attribute=attribute_applies(repo, store_dir),
        hooks=hooks_installed(repo),
        hooks_dir=repo.hooks_dir,
        hooks_path=repo.hooks_path,
    )
    if status.attribute and not status.driver:
        status.warnings.append(
            ".gitattributes names the taskstore merge driver but this clone does not define "
            "it (a fresh clone?): git would merge the JSONL as plain text; run "
            "`git taskstore init`"
        )
    elif not status.driver:
        status.warnings.append("the merge driver is not configured: run `git taskstore init`")
    elif not status.attribute:
        status.warnings.append(
            "no .gitattributes line sends the store's JSONL files to the merge driver: "
            "run `git taskstore init`"
        )
    broken = [name for name, ok in status.hooks.items() if ok and not hook_can_run(repo, name)]
    if broken:
        status.warnings.append(
            f"hooks installed but unable to run: {', '.join(broken)} (the installation they "
            "point at is gone, or another one replaced it): run `git taskstore install-hooks`"
        )
    missing = [name for name, ok in status.hooks.items() if not ok]
    if missing and not repo.hooks_path and not uses_precommit_framework(repo):
        status.warnings.append(
            f"hooks not installed: {', '.join(missing)} (`git taskstore install-hooks`)"
        )
    return status


def hook_can_run(repo: Repo, name: str) -> bool:
    """Whether an installed hook of ours reaches a git-taskstore: the interpreter and
    hookrun.py it names exist, and the interpreter imports hookrun from there."""
    values = templated(os.path.join(repo.hooks_dir, name))
    python, hookrun = values.get("INSTALL_PYTHON", ""), values.get("HOOKRUN", "")
    if not (os.access(python, os.X_OK) and os.path.isfile(hookrun)):
        return False
    same = os.path.realpath(python) == os.path.realpath(sys.executable)
    if same and os.path.realpath(hookrun) == os.path.realpath(HOOKRUN):
        return True  # this very interpreter imported hookrun from there
    import subprocess

    found = subprocess.run(
        [python, "-c", "import git_taskstore.hookrun as h; print(h.__file__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    return found.returncode == 0 and os.path.realpath(found.stdout.strip()) == os.path.realpath(
        hookrun
    )


def uses_precommit_framework(repo: Repo) -> bool:
    """Whether the repository runs our entries through the pre-commit framework instead."""
    try:
        with open(os.path.join(repo.top, ".pre-commit-config.yaml"), encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError):
        return False
    return "taskstore-check" in text or "taskstore-sync" in text
